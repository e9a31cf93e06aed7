// Run a Python snippet in a fresh sandbox and print its output.
//   node examples/run-python-snippet.js
import { run } from 'sandpool';

const snippet = `
import platform, sys
print("hello from", platform.python_implementation(), sys.version.split()[0])
print(sum(i * i for i in range(10)))
`;

// One shot: a sandbox from the pool, one command, destroyed afterwards.
const result = await run(['python3', '-c', snippet], { timeoutMs: 10000 });
if (result.ok) process.stdout.write(result.stdout);
else console.error(`failed (exit ${result.exitCode}, signal ${result.signal}):\n${result.stderr}`);
