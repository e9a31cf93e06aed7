// Stream a long command's output line by line, as it is written.
//   node examples/stream-lines.js
import { Sandbox } from 'sandpool';

const cmd = 'for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done; echo done >&2';
const t0 = Date.now();

const sb = await Sandbox.create();
try {
  // Events come as the command writes; chunks are not lines, so join them.
  const partial = { stdout: '', stderr: '' };
  const stream = sb.stream(cmd, { timeoutMs: 30000 });
  for await (const ev of stream) {
    if (ev.type !== 'stdout' && ev.type !== 'stderr') continue;
    const lines = (partial[ev.type] + ev.data).split('\n');
    partial[ev.type] = lines.pop();
    for (const line of lines) console.log(`${((Date.now() - t0) / 1000).toFixed(2)}s ${ev.type}: ${line}`);
  }
  console.log('exit code', stream.result.exitCode);

  // The same with callbacks: run() resolves with the whole result at the end.
  const r = await sb.run(cmd, { onStdout: (d) => console.log('got', JSON.stringify(d)) });
  console.log('again:', r.exitCode, r.stdout.split('\n').filter(Boolean).length, 'lines');
} finally {
  await sb.close();
}
