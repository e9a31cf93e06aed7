// Write a file into a sandbox, run it, read the file it produced.
//   node examples/write-run-read.js
import { Sandbox } from 'sandpool';

const script = `
import json
with open("/home/sandbox/input.json") as f:
    numbers = json.load(f)["numbers"]
with open("/home/sandbox/output.json", "w") as f:
    json.dump({"sum": sum(numbers), "max": max(numbers)}, f)
print("processed", len(numbers), "numbers")
`;

// Sandbox.use ends the session (and its sandbox) when the function
// settles, also when it throws.
await Sandbox.use(async (sb) => {
  await sb.writeFiles([
    { path: '/home/sandbox/job.py', content: script },
    { path: '/home/sandbox/input.json', content: JSON.stringify({ numbers: [3, 1, 4, 1, 5, 9, 2, 6] }) },
  ]);
  const r = await sb.run(['python3', 'job.py'], { cwd: '/home/sandbox', check: true });
  process.stdout.write(r.stdout);
  console.log(JSON.parse(await sb.readText('/home/sandbox/output.json')));
  console.log((await sb.listDir('/home/sandbox')).map((e) => e.name));
});
