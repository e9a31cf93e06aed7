// SPDX-License-Identifier: MIT
// 'sandpoolctl mcp' driven by the official MCP TypeScript SDK's Client over
// StdioClientTransport (tests/mcp/package-lock.json pins it), against the
// real sandpoold of tests/integration/test_mcp.py: every tool is listed and
// called, and what the client sees is checked. Run by that test, which
// gives the environment:
//   SANDPOOLCTL       the sandpoolctl binary
//   SANDPOOL_SOCKET   the daemon's socket
//   ATTACH_SESSION    a session made by the test, for --session
//   HAVE_IMAGE        1 when the daemon runs the Node.js/Python image
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const CTL = process.env.SANDPOOLCTL;
const HAVE_IMAGE = process.env.HAVE_IMAGE === '1';
const TOOLS = ['list_files', 'read_file', 'reset', 'run_command', 'run_node', 'run_python', 'write_file'];

async function connect(args = [], env = {}) {
  const transport = new StdioClientTransport({
    command: CTL,
    args: ['mcp', ...args],
    env: { ...process.env, ...env },
    stderr: 'inherit',
  });
  const client = new Client({ name: 'sandpool-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

const text = (res) => res.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');

test('initialize, ping and the tool list', async () => {
  const client = await connect();
  try {
    assert.equal(client.getServerVersion().name, 'sandpool');
    assert.ok(client.getServerCapabilities().tools, 'tools capability declared');
    await client.ping();
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), TOOLS);
    for (const t of tools) {
      assert.equal(t.inputSchema.type, 'object', t.name);
      assert.ok(t.description.length > 10, t.name);
    }
  } finally {
    await client.close();
  }
});

test('every tool against the real daemon', async () => {
  const client = await connect(['--max-output', '4K']);
  try {
    let r = await client.callTool({
      name: 'run_command',
      arguments: { command: 'echo "hello $WHO"; echo oops >&2; pwd; exit 3', env: { WHO: 'mcp' } },
    });
    assert.equal(r.isError, false, text(r));
    assert.equal(r.structuredContent.exit_code, 3);
    assert.equal(r.structuredContent.stdout, 'hello mcp\n/home/sandbox\n');
    assert.equal(r.structuredContent.stderr, 'oops\n');
    assert.match(text(r), /\[exit code 3 after/);

    r = await client.callTool({ name: 'run_command', arguments: { command: 'cat; pwd', stdin: 'in\n', cwd: '/tmp' } });
    assert.equal(r.structuredContent.stdout, 'in\n/tmp\n');

    // the same sandbox from call to call
    r = await client.callTool({ name: 'write_file', arguments: { path: 'notes/a.txt', content: 'héllo\n' } });
    assert.equal(r.isError, true, 'no such directory yet: the daemon refuses');
    await client.callTool({ name: 'run_command', arguments: { command: 'mkdir notes' } });
    r = await client.callTool({ name: 'write_file', arguments: { path: 'notes/a.txt', content: 'héllo\n' } });
    assert.equal(r.isError, false, text(r));
    r = await client.callTool({ name: 'read_file', arguments: { path: '/home/sandbox/notes/a.txt' } });
    assert.equal(text(r), 'héllo\n');
    r = await client.callTool({ name: 'run_command', arguments: { command: 'wc -c < notes/a.txt' } });
    assert.equal(r.structuredContent.stdout.trim(), '7');

    // bytes that are not text: base64 in, an embedded resource out
    const bin = Buffer.from([0, 1, 2, 255, 254, 10]);
    r = await client.callTool({
      name: 'write_file', arguments: { path: 'notes/b.bin', content: bin.toString('base64'), encoding: 'base64' },
    });
    assert.equal(r.isError, false, text(r));
    r = await client.callTool({ name: 'read_file', arguments: { path: 'notes/b.bin' } });
    assert.equal(r.content[0].type, 'resource');
    assert.equal(r.content[0].resource.uri, 'file:///home/sandbox/notes/b.bin');
    assert.deepEqual(Buffer.from(r.content[0].resource.blob, 'base64'), bin);

    r = await client.callTool({ name: 'list_files', arguments: { path: 'notes' } });
    assert.deepEqual(r.structuredContent.entries.map((e) => e.name).sort(), ['a.txt', 'b.bin']);
    assert.match(text(r), /a\.txt/);

    // the output cap: kept, dropped, said
    r = await client.callTool({ name: 'run_command', arguments: { command: 'yes abcdefgh | head -c 100000' } });
    assert.equal(r.structuredContent.truncated, true);
    assert.equal(r.structuredContent.stdout.length, 4096);
    assert.match(text(r), /\[output truncated: at most 4096 bytes/);
    await client.callTool({ name: 'run_command', arguments: { command: 'yes 0123456789 | head -c 10000 > big.txt' } });
    r = await client.callTool({ name: 'read_file', arguments: { path: 'big.txt' } });
    assert.equal(r.content[0].text.length, 4096);
    assert.match(text(r), /\[file truncated: the first 4096 of its 10000 bytes/);

    // timeouts are data, not errors
    r = await client.callTool({ name: 'run_command', arguments: { command: 'sleep 20', timeout_s: 1 } });
    assert.equal(r.structuredContent.timed_out, true);
    assert.match(text(r), /timed out after/);

    // the daemon's errors are tool errors with its message
    r = await client.callTool({ name: 'read_file', arguments: { path: '/no/such/file' } });
    assert.equal(r.isError, true);
    assert.match(text(r), /no such file|not found/i);
    r = await client.callTool({ name: 'list_files', arguments: { path: '/etc/passwd' } });
    assert.equal(r.isError, true);
    r = await client.callTool({ name: 'run_command', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(text(r), /missing argument 'command'/);
    await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), /Unknown tool/);

    if (HAVE_IMAGE) {
      r = await client.callTool({ name: 'run_python', arguments: { code: 'import sys; print(6*7, sys.version_info[:2])' } });
      assert.equal(r.structuredContent.stdout, '42 (3, 13)\n', text(r));
      r = await client.callTool({ name: 'run_node', arguments: { code: 'console.log(process.version.split(".")[0])' } });
      assert.equal(r.structuredContent.stdout, 'v22\n', text(r));
      r = await client.callTool({ name: 'run_python', arguments: { code: 'raise SystemExit(5)' } });
      assert.equal(r.structuredContent.exit_code, 5);
    }

    // reset: a fresh sandbox, the files of before are gone
    r = await client.callTool({ name: 'reset', arguments: {} });
    assert.equal(r.isError, false, text(r));
    assert.match(text(r), /fresh sandbox/);
    r = await client.callTool({ name: 'read_file', arguments: { path: 'notes/a.txt' } });
    assert.equal(r.isError, true, 'the file must be gone after reset');
  } finally {
    await client.close();
  }
});

test('progress notifications while a long command runs', async () => {
  const client = await connect();
  try {
    const seen = [];
    const r = await client.callTool(
      { name: 'run_command', arguments: { command: 'for i in 1 2 3; do echo tick $i; sleep 1; done' } },
      undefined,
      { onprogress: (p) => seen.push(p) },
    );
    assert.equal(r.structuredContent.stdout, 'tick 1\ntick 2\ntick 3\n');
    assert.ok(seen.length >= 2, `progress notifications: ${JSON.stringify(seen)}`);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress);
    assert.ok(seen.some((p) => /tick \d/.test(p.message)), JSON.stringify(seen));
  } finally {
    await client.close();
  }
});

test('a cancelled call kills its command; the server goes on', async () => {
  const client = await connect();
  try {
    await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
    const ac = new AbortController();
    const call = client.callTool({ name: 'run_command', arguments: { command: 'sleep 41; echo done' } }, undefined,
      { signal: ac.signal });
    setTimeout(() => ac.abort('enough'), 1500);
    await assert.rejects(call);
    const t0 = Date.now();
    // the command is gone from the sandbox (its process group was killed)
    let left = '';
    for (let i = 0; i < 20; i++) {
      const r = await client.callTool({ name: 'run_command', arguments: { command: 'pgrep -f "[s]leep 41" || true' } });
      left = r.structuredContent.stdout;
      if (left === '') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(left, '', 'the cancelled command still runs');
    // at once, not after the daemon's command_timeout ended it
    assert.ok(Date.now() - t0 < 10000, `the server was busy with the cancelled call for ${Date.now() - t0} ms`);
  } finally {
    await client.close();
  }
});

test('--session attaches and never ends the session; reset is refused', async () => {
  const sid = process.env.ATTACH_SESSION;
  const client = await connect(['--session', sid]);
  try {
    let r = await client.callTool({ name: 'run_command', arguments: { command: 'cat /tmp/marker' } });
    assert.equal(r.structuredContent.stdout, 'made by the test\n', text(r));
    r = await client.callTool({ name: 'reset', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(text(r), /--session/);
  } finally {
    await client.close();
  }
});

test('--template goes to the daemon, whose answer is the tool error', async () => {
  const client = await connect(['--template', 'python-data']);
  try {
    const r = await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
    assert.equal(r.isError, true);
    assert.match(text(r), /create a session: .*template/);
  } finally {
    await client.close();
  }
});

test('a daemon that cannot be reached is a tool error, not a crash', async () => {
  const client = await connect([], { SANDPOOL_SOCKET: '/nonexistent/sandpool.sock' });
  try {
    const r = await client.callTool({ name: 'run_command', arguments: { command: 'true' } });
    assert.equal(r.isError, true);
    assert.match(text(r), /no socket at \/nonexistent\/sandpool.sock/);
    const { tools } = await client.listTools(); // still serving
    assert.equal(tools.length, TOOLS.length);
  } finally {
    await client.close();
  }
});
