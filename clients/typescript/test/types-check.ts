// SPDX-License-Identifier: MIT
// Compile-only check of sandpool.d.ts (never run): `tsc -p .` in
// clients/typescript, with typescript and @types/node as dev tools only.
import { Client, Sandbox, run, CommandEvent, CommandResult, DirEntry,
  NoCapacityError, SandpoolError, SessionInfo } from './../sandpool.js';

async function main(): Promise<void> {
  const client = new Client({ socketPath: '/tmp/x.sock', timeoutMs: 5000 });
  const h = await client.health();
  const mode: 'v1' | 'v2' = h.cgroup.mode;
  void mode;
  const sb: Sandbox = await Sandbox.create({ client, env: { A: 'b' }, timeoutS: 60, labels: { k: 'v' } });
  const r: CommandResult = await sb.run(['python3', '-c', 'print(1)'], { timeoutMs: 1000, check: true });
  const code: number | null = r.exitCode;
  void code;
  const ok: boolean = r.ok;
  void ok;
  await sb.runCommand('ls', ['-l'], { cwd: '/' });
  await sb.run('make', { onStdout: (d: string) => process.stdout.write(d) });
  for await (const ev of sb.stream('make')) {
    const e: CommandEvent = ev;
    if (e.type === 'exit') console.log(e.result.exitCode);
    else if (e.type === 'stdout' || e.type === 'stderr') console.log(e.data.length);
  }
  await sb.writeFile('/a', new Uint8Array([1]));
  await sb.writeFiles([{ path: '/b', content: 'x' }]);
  await sb.writeFiles({ '/c': 'y' });
  const buf: Buffer = await sb.readFile('/a');
  void buf;
  const ents: DirEntry[] = await sb.listDir('/');
  void ents;
  const info: SessionInfo = await sb.refresh();
  console.log(info.usage?.memory_peak);
  await sb.remove('/a');
  const txt: string = await sb.files.read('/a');
  const bytes: Buffer = await sb.files.read('/a', { format: 'bytes' });
  void txt; void bytes;
  await sb.commands.run('true');
  await sb.close();
  const n: number = await Sandbox.use(async (s) => (await s.run('true')).durationMs, { socketPath: '/x' });
  void n;
  try {
    await run('true', { socketPath: '/x', timeoutMs: 10 });
  } catch (e) {
    if (e instanceof NoCapacityError) console.log(e.retryAfter);
    else if (e instanceof SandpoolError) console.log(e.status, e.code);
  }
  {
    await using s2 = await Sandbox.create();
    await s2.run('true');
  }
  client.close();
}
void main;
