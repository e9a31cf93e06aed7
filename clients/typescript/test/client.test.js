// SPDX-License-Identifier: MIT
// The TypeScript client against the real daemon (test/daemon.js starts it).
// The test rootfs has busybox only, so commands are busybox sh.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as sp from '../sandpool.js';
import { Client, Sandbox } from '../sandpool.js';
import { Daemon, missingPrerequisite } from './daemon.js';

const why = missingPrerequisite();
if (why) throw new Error(`cannot run: ${why} (run through test/run.js, which skips)`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(pred, ms = 5000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await sleep(20);
  }
  return pred();
}

let daemon;
let client;
before(async () => {
  daemon = await new Daemon().start();
  client = new Client({ socketPath: daemon.socket, timeoutMs: 10000 });
});
after(async () => {
  client.close();
  await daemon.cleanup();
});

const ids = async () => new Set((await client.sessions()).map((s) => s.id));
async function withSb(fn, opts = {}) {
  return Sandbox.use(fn, { client, ...opts });
}

describe('daemon calls', () => {
  test('health and metrics', async () => {
    const h = await client.health();
    assert.equal(h.status, 'ok');
    assert.ok(['v1', 'v2'].includes(h.cgroup.mode));
    assert.equal(await client.commandTimeoutMs(), h.limits.command_timeout_ms);
    assert.match(await client.metrics(), /sandpool_http_requests_total/);
  });

  test('socket from SANDPOOL_SOCKET', async () => {
    process.env.SANDPOOL_SOCKET = daemon.socket;
    try {
      assert.equal(new Client().socketPath, daemon.socket);
      assert.equal((await sp.run('echo $((6*7))')).stdout, '42\n');
    } finally {
      delete process.env.SANDPOOL_SOCKET;
    }
  });
});

describe('sessions', () => {
  test('lifecycle', async () => {
    const sb = await Sandbox.create({ client, labels: { agent: 't1' }, timeoutS: 60, idleTimeoutS: 30 });
    assert.equal(sb.id.length, 32);
    assert.deepEqual(sb.info.labels, { agent: 't1' });
    assert.equal(sb.info.raw.timeout_s, 60);
    assert.equal(sb.info.raw.idle_timeout_s, 30);
    assert.ok((await ids()).has(sb.id));
    const info = await sb.refresh();
    assert.equal(info.state, 'ready');
    assert.ok(info.usage.pids_current >= 1);
    assert.equal((await client.session(sb.id)).id, sb.id);
    await sb.close();
    assert.ok(!(await ids()).has(sb.id));
    await assert.rejects(client.session(sb.id), sp.NotFoundError);
    await sb.close(); // idempotent
  });

  test('Sandbox.use ends the session after an exception', async () => {
    const before = (await client.health()).active_sessions;
    let id;
    await assert.rejects(Sandbox.use(async (sb) => {
      id = sb.id;
      await sb.run('sleep 30 &');
      throw new RangeError('boom');
    }, { socketPath: daemon.socket }), RangeError);
    assert.ok(!(await ids()).has(id));
    assert.equal((await client.health()).active_sessions, before);
    await assert.rejects(client.session(id), sp.NotFoundError);
  });

  test('Sandbox.use ends the session after a client timeout', async () => {
    let id;
    await assert.rejects(withSb(async (sb) => {
      id = sb.id;
      await sb.run('sleep 5', { socketTimeoutMs: 300 });
    }), sp.SandpoolTimeoutError);
    assert.ok(!(await ids()).has(id));
  });

  test('await using ends the session', async () => {
    const sb = await Sandbox.create({ client });
    assert.equal(typeof sb[Symbol.asyncDispose], 'function');
    await sb[Symbol.asyncDispose]();
    assert.ok(!(await ids()).has(sb.id));
  });

  test('session env and connect', () => withSb(async (sb) => {
    const other = await Sandbox.connect(sb.id, { client });
    assert.equal((await other.run('echo $GREETING')).stdout, 'hello\n');
    assert.equal((await other.run('echo $GREETING $X', { env: { X: 'world' } })).stdout, 'hello world\n');
  }, { env: { GREETING: 'hello' } }));

  test('session ended elsewhere', async () => {
    const sb = await client.createSandbox();
    await client.endSession(sb.id);
    const e = await sb.run('true').catch((x) => x);
    assert.ok(e instanceof sp.NotFoundError);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'not_found');
    await sb.close();
  });

  test('connect to an unknown session', async () => {
    await assert.rejects(Sandbox.connect('0'.repeat(32), { client }), sp.NotFoundError);
  });
});

describe('commands', () => {
  test('shell and argv', () => withSb(async (sb) => {
    let r = await sb.run('echo out; echo err >&2; exit 3');
    assert.deepEqual([r.exitCode, r.stdout, r.stderr, r.ok], [3, 'out\n', 'err\n', false]);
    assert.equal(r.signal, null);
    assert.equal(r.timedOut, false);
    r = await sb.run(['printf', '%s|', 'a b', '$HOME', "'q'"]);
    assert.equal(r.stdout, "a b|$HOME|'q'|");
    r = await sb.runCommand('sh', ['-c', 'echo $0', 'zero']);
    assert.equal(r.stdout, 'zero\n');
  }));

  test('stdin, cwd, shared files', () => withSb(async (sb) => {
    assert.equal((await sb.run('cat', { stdin: 'from stdin\n' })).stdout, 'from stdin\n');
    assert.equal((await sb.run('pwd')).stdout, '/home/sandbox\n');
    await sb.run('mkdir -p /tmp/w && echo kept > /tmp/w/f', { check: true });
    assert.equal((await sb.run(['cat', 'f'], { cwd: '/tmp/w' })).stdout, 'kept\n');
  }));

  test('check rejects with CommandError', () => withSb(async (sb) => {
    const e = await sb.run('echo bad >&2; exit 2', { check: true }).catch((x) => x);
    assert.ok(e instanceof sp.CommandError);
    assert.equal(e.result.exitCode, 2);
    assert.match(e.message, /bad/);
  }));

  test('command not found is data', () => withSb(async (sb) => {
    const r = await sb.run(['no-such-command']);
    assert.equal(r.exitCode, 127);
    assert.ok(r.error);
  }));

  test('command timeout kills', () => withSb(async (sb) => {
    const t0 = Date.now();
    const r = await sb.run('echo started; sleep 10', { timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 9);
    assert.equal(r.exitCode, null);
    assert.equal(r.stdout, 'started\n');
  }));

  test('output cap and unicode', () => withSb(async (sb) => {
    const r = await sb.run('yes x | head -c 100000', { maxOutputBytes: 1000 });
    assert.equal(r.truncated, true);
    assert.equal(r.stdout.length, 1000);
    const u = await sb.run(['printf', 'h\u00e9llo \u2603 \u{1f600}']);
    assert.equal(u.stdout, 'h\u00e9llo \u2603 \u{1f600}');
  }));

  test('one shot', async () => {
    assert.equal((await client.run(['sh', '-c', 'echo $((2+3))'])).stdout, '5\n');
    assert.equal((await sp.run('exit 4', { socketPath: daemon.socket })).exitCode, 4);
    assert.equal((await sp.run('sleep 5', { socketPath: daemon.socket, timeoutMs: 200 })).timedOut, true);
  });

  test('concurrent commands on one sandbox', () => withSb(async (sb) => {
    const rs = await Promise.all([...Array(8).keys()].map((i) => sb.run(`echo ${i}`)));
    assert.deepEqual(rs.map((r) => r.stdout), [...Array(8).keys()].map((i) => `${i}\n`));
  }));

  test('AbortSignal cancels and the command is killed', () => withSb(async (sb) => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(sb.run('sleep 20', { signal: ac.signal }), sp.AbortError);
    assert.ok(await waitUntil(async () => (await sb.refresh()).raw.running_commands === 0));
  }));
});

describe('streaming', () => {
  test('async iterator, in order, as it comes', () => withSb(async (sb) => {
    const t0 = Date.now();
    const seen = [];
    const s = sb.stream('echo one; sleep 0.6; echo two >&2; echo three');
    for await (const ev of s) seen.push([ev.type, ev.data, Date.now() - t0]);
    assert.equal(seen[0][0], 'start');
    assert.equal(seen.at(-1)[0], 'exit');
    assert.deepEqual(seen.filter(([t]) => t === 'stdout' || t === 'stderr').map(([t, d]) => [t, d]),
      [['stdout', 'one\n'], ['stderr', 'two\n'], ['stdout', 'three\n']]);
    // "one" came while the command still slept, not at its end.
    assert.ok(seen.at(-1)[2] - seen[1][2] >= 500);
    assert.equal(s.result.exitCode, 0);
    assert.equal(s.result.stdout, 'one\nthree\n');
    assert.equal(s.result.stderr, 'two\n');
    assert.notEqual(s.commandId, null);
  }));

  test('callbacks', () => withSb(async (sb) => {
    const out = [];
    const err = [];
    const r = await sb.run('for i in 1 2 3; do echo $i; sleep 0.1; done; echo e >&2; exit 5',
      { onStdout: (d) => out.push(d), onStderr: (d) => err.push(d) });
    assert.equal(out.join(''), '1\n2\n3\n');
    assert.equal(err.join(''), 'e\n');
    assert.equal(r.exitCode, 5);
    assert.equal(r.stdout, '1\n2\n3\n');
  }));

  test('wait() and the command timeout', () => withSb(async (sb) => {
    const r = await sb.stream('echo a; sleep 10', { timeoutMs: 300 }).wait();
    assert.equal(r.timedOut, true);
    assert.equal(r.stdout, 'a\n');
  }));

  test('break closes the stream and the command is killed', () => withSb(async (sb) => {
    for await (const ev of sb.stream('echo ready; sleep 30')) if (ev.type === 'stdout') break;
    assert.ok(await waitUntil(async () => (await sb.refresh()).raw.running_commands === 0));
    assert.ok(await waitUntil(async () => (await sb.refresh()).usage.pids_current === 1));
  }));

  test('a socket timeout while streaming kills the command', () => withSb(async (sb) => {
    const t0 = Date.now();
    await assert.rejects((async () => {
      for await (const ev of sb.stream('echo x; sleep 30', { socketTimeoutMs: 400 })) void ev;
    })(), sp.SandpoolTimeoutError);
    assert.ok(Date.now() - t0 < 3000);
    assert.ok(await waitUntil(async () => (await sb.refresh()).raw.running_commands === 0));
  }));

  test('one-shot stream', async () => {
    const evs = [];
    for await (const ev of client.stream(['sh', '-c', 'echo hi'])) evs.push(ev);
    assert.deepEqual(evs.map((e) => e.type), ['start', 'stdout', 'exit']);
    assert.equal(evs[0].raw.session_id, '');
    assert.equal(evs.at(-1).result.stdout, 'hi\n');
  });

  test('keep-alive connection reused after streams', () => withSb(async (sb) => {
    for (let i = 0; i < 3; i++) assert.equal((await sb.stream('echo k').wait()).stdout, 'k\n');
    await sleep(10);
    const free = Object.values(client.agent.freeSockets).flat();
    assert.ok(free.length >= 1, 'a free kept-alive socket');
    assert.equal((await sb.run('echo after')).stdout, 'after\n');
  }));
});

describe('files', () => {
  test('roundtrip', () => withSb(async (sb) => {
    const blob = Buffer.alloc(2560);
    for (let i = 0; i < blob.length; i++) blob[i] = i % 256;
    assert.equal(await sb.writeFile('/home/sandbox/blob.bin', blob), blob.length);
    assert.deepEqual(await sb.readFile('/home/sandbox/blob.bin'), blob);
    await sb.writeFile('/home/sandbox/t.txt', 'h\u00e9 \u2603\n');
    assert.equal(await sb.readText('/home/sandbox/t.txt'), 'h\u00e9 \u2603\n');
    assert.equal((await sb.run('wc -c < /home/sandbox/blob.bin')).stdout.trim(), '2560');
    assert.equal((await sb.run('stat -c %U /home/sandbox/t.txt')).stdout, 'sandbox\n');
  }));

  test('odd names', () => withSb(async (sb) => {
    await sb.run("mkdir -p '/tmp/a dir'", { check: true });
    const p = '/tmp/a dir/x&y=1?#%.txt';
    await sb.writeFile(p, new Uint8Array([111, 100, 100]));
    assert.equal((await sb.run(['cat', p])).stdout, 'odd');
    assert.deepEqual((await sb.listDir('/tmp/a dir')).map((e) => e.name), ['x&y=1?#%.txt']);
  }));

  test('write, run, read', () => withSb(async (sb) => {
    await sb.writeFiles([
      { path: '/home/sandbox/job.sh', content: 'read n; echo $((n*n)) > /home/sandbox/out.txt\n' },
      { path: '/home/sandbox/in.txt', content: Buffer.from('12\n') },
    ]);
    await sb.writeFiles({ '/home/sandbox/extra': 'x' });
    await sb.run('sh job.sh < in.txt', { check: true });
    assert.equal(await sb.readText('/home/sandbox/out.txt'), '144\n');
    assert.equal(await sb.readText('/home/sandbox/extra'), 'x');
  }));

  test('listDir and remove', () => withSb(async (sb) => {
    await sb.run('mkdir /home/sandbox/d && ln -s /etc /home/sandbox/lnk', { check: true });
    await sb.writeFile('/home/sandbox/f', 'abc');
    const ents = Object.fromEntries((await sb.listDir('/home/sandbox')).map((e) => [e.name, e]));
    assert.equal(ents.f.type, 'file');
    assert.equal(ents.f.size, 3);
    assert.equal(ents.d.type, 'dir');
    assert.equal(ents.lnk.type, 'symlink');
    for (const n of ['f', 'd', 'lnk']) await sb.remove(`/home/sandbox/${n}`);
    const left = (await sb.listDir('/home/sandbox')).map((e) => e.name);
    assert.ok(!left.some((n) => ['f', 'd', 'lnk'].includes(n)));
    await assert.rejects(sb.remove('/home/sandbox/f'), sp.NotFoundError);
  }));

  test('errors', () => withSb(async (sb) => {
    await assert.rejects(sb.readFile('/home/sandbox/missing'), sp.NotFoundError);
    await assert.rejects(sb.writeFile('/etc/passwd', 'x'), sp.ForbiddenError);
    await assert.rejects(sb.readFile('relative/path'), sp.BadRequestError);
    await sb.run('mkdir -p /tmp/full && touch /tmp/full/x', { check: true });
    await assert.rejects(sb.remove('/tmp/full'), sp.ConflictError);
    await assert.rejects(sb.readFile('/tmp/full'), sp.ConflictError);
    await assert.rejects(sb.listDir('/tmp/full/x'), sp.ConflictError);
    // The daemon here has max_upload = 1M.
    const e = await sb.writeFile('/tmp/big', Buffer.alloc(1024 * 1024 + 1)).catch((x) => x);
    assert.ok(e instanceof sp.TooLargeError, String(e));
    assert.equal(e.status, 413);
    await assert.rejects(sb.listDir('/tmp/big'), sp.NotFoundError);
    assert.equal((await sb.run('echo ok')).stdout, 'ok\n');
  }));
});

describe('errors', () => {
  test('bad requests', () => withSb(async (sb) => {
    const e = await sb.run([]).catch((x) => x);
    assert.ok(e instanceof sp.BadRequestError);
    assert.equal(e.code, 'bad_request');
    assert.match(e.message, /argv/);
    await assert.rejects(sb.run('true', { cwd: 'relative' }), sp.BadRequestError);
    await assert.rejects(sb.run('true', { env: { 'A=B': 'c' } }), sp.BadRequestError);
    await assert.rejects(client.createSession({ memoryMb: -1 }), sp.BadRequestError);
  }));

  test('method not allowed, unknown endpoint', async () => {
    const e = await client.request('PUT', '/v1/health', { body: '' }).catch((x) => x);
    assert.ok(e instanceof sp.MethodNotAllowedError);
    assert.equal(e.status, 405);
    await assert.rejects(client.request('GET', '/v1/nope'), sp.NotFoundError);
  });

  test('no capacity, with Retry-After', async () => {
    const d = await new Daemon({ pool: { max_pool_size: '1', pool_size: '1', min_pool_size: '0' } }).start();
    const c = new Client({ socketPath: d.socket, timeoutMs: 10000 });
    try {
      await Sandbox.use(async (sb) => {
        const e = await c.createSandbox().catch((x) => x);
        assert.ok(e instanceof sp.NoCapacityError, String(e));
        assert.equal(e.status, 429);
        assert.equal(e.retryAfter, 1);
        await assert.rejects(c.run('true'), sp.NoCapacityError);
        assert.equal((await sb.run('echo still')).stdout, 'still\n');
        // capacityWaitMs retries after each Retry-After, up to its limit.
        let t0 = Date.now();
        await assert.rejects(c.createSandbox({ capacityWaitMs: 300 }), sp.NoCapacityError);
        assert.ok(Date.now() - t0 >= 300 && Date.now() - t0 < 6000); // the daemon queues up to 2 s itself
        setTimeout(() => sb.close(), 500);
        t0 = Date.now();
        await Sandbox.use(async (sb2) => {
          assert.equal((await sb2.run('echo waited')).stdout, 'waited\n');
        }, { client: c, capacityWaitMs: 10000 });
        assert.ok(Date.now() - t0 >= 500 && Date.now() - t0 < 5000);
      }, { client: c });
      assert.equal((await c.run('echo freed')).stdout, 'freed\n');
    } finally {
      c.close();
      await d.cleanup();
    }
  });

  test('error table', () => {
    const cases = [
      [400, 'bad_request', sp.BadRequestError], [403, 'forbidden', sp.ForbiddenError],
      [404, 'not_found', sp.NotFoundError], [405, 'method_not_allowed', sp.MethodNotAllowedError],
      [409, 'conflict', sp.ConflictError], [413, 'too_large', sp.TooLargeError],
      [429, 'no_capacity', sp.NoCapacityError], [500, 'internal', sp.InternalError],
      [503, 'shutting_down', sp.ShuttingDownError], [431, '', sp.BadRequestError],
    ];
    for (const [status, code, Cls] of cases) {
      const body = code ? JSON.stringify({ error: { code, message: 'm' } }) : '<html>big</html>';
      const e = sp.errorFromResponse(status, body, { 'retry-after': '2' });
      assert.equal(e.constructor, Cls);
      assert.ok(e instanceof sp.SandpoolError && e instanceof Error);
      assert.equal(e.status, status);
      assert.equal(e.code, code);
      assert.equal(e.retryAfter, 2);
      assert.equal(e.name, Cls.name);
    }
  });

  test('shutting down: 503 or the socket gone; the streaming client gets its exit', async () => {
    const d = await new Daemon().start();
    const c = new Client({ socketPath: d.socket, timeoutMs: 5000 });
    try {
      const sb = await c.createSandbox();
      const s = sb.stream('sleep 20');
      const it = s[Symbol.asyncIterator]();
      assert.equal((await it.next()).value.type, 'start');
      d.proc.kill('SIGTERM');
      let err;
      for (let i = 0; i < 500 && !err; i++) {
        err = await c.health().then(() => null, (x) => x);
        await sleep(5);
      }
      assert.ok(err instanceof sp.ShuttingDownError || err instanceof sp.SandpoolConnectionError, String(err));
      let last;
      for (let r = await it.next(); !r.done; r = await it.next()) last = r.value;
      assert.equal(last.type, 'exit');
      assert.equal(last.result.signal, 9);
      assert.equal((await d.exited).code, 0);
    } finally {
      c.close();
      await d.cleanup();
    }
  });
});

describe('socket timeouts and connection errors', () => {
  test('a socket that never answers', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sp-silent-'));
    const p = path.join(dir, 'silent.sock');
    const held = [];
    const srv = net.createServer((s) => held.push(s));
    await new Promise((r) => srv.listen(p, r));
    const c = new Client({ socketPath: p, timeoutMs: 300 });
    try {
      for (const call of [() => c.health(), () => c.createSandbox(), () => c.run('true', { timeoutMs: 100 })]) {
        const t0 = Date.now();
        await assert.rejects(call(), sp.SandpoolTimeoutError);
        const dt = Date.now() - t0;
        assert.ok(dt >= 250 && dt < 2000, `gave up after ${dt} ms`);
      }
    } finally {
      c.close();
      held.forEach((s) => s.destroy());
      await new Promise((r) => srv.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no daemon', async () => {
    const c = new Client({ socketPath: '/nonexistent/sandpool.sock', timeoutMs: 1000 });
    await assert.rejects(c.health(), sp.SandpoolConnectionError);
    await assert.rejects(Sandbox.create({ socketPath: '/nonexistent/sandpool.sock' }), sp.SandpoolConnectionError);
    c.close();
  });
});

describe('examples, run as a developer would', () => {
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'examples');
  const runExample = (name) => {
    const p = spawnSync(process.execPath, [path.join(dir, name)],
      { env: { ...process.env, SANDPOOL_SOCKET: daemon.socket }, encoding: 'utf8', timeout: 60000 });
    assert.equal(p.status, 0, p.stderr);
    return p.stdout;
  };

  test('stream-lines.js', () => {
    const out = runExample('stream-lines.js').split('\n');
    const lines = out.filter((l) => l.includes(': line '));
    assert.deepEqual(lines.map((l) => l.split(': ')[1]), [1, 2, 3, 4, 5].map((i) => `line ${i}`));
    // Printed as they came, about 0.2 s apart.
    const times = lines.map((l) => parseFloat(l));
    assert.ok(times.at(-1) - times[0] >= 0.6, String(times));
    assert.ok(out.includes('exit code 0'));
    assert.ok(out.some((l) => l.endsWith('stderr: done')));
    assert.ok(out.includes('again: 0 5 lines'));
  });

  for (const [name, expect] of [
    ['run-python-snippet.js', ['hello from CPython', '285']],
    ['write-run-read.js', ['processed 8 numbers', "{ sum: 31, max: 9 }", 'output.json']],
  ]) {
    test(name, async (t) => {
      if (!(await client.run('command -v python3')).ok) {
        t.skip(`the rootfs has no python3 (the busybox test image): set SANDPOOL_TEST_ROOTFS to the full image to run ${name}`);
        return;
      }
      const out = runExample(name);
      for (const e of expect) assert.ok(out.includes(e), out);
    });
  }
});

describe('ownership and session ends', () => {
  test('another uid is told 404, as for no session', () => withSb(async (sb) => {
    // Somewhere uid 65534 can read the module.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandpool-client-'));
    fs.chmodSync(dir, 0o755);
    const here = path.dirname(new URL(import.meta.url).pathname);
    for (const f of ['sandpool.js', 'package.json']) fs.copyFileSync(path.join(here, '..', f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'probe.js'), `
      import * as sp from './sandpool.js';
      const [sock, id] = process.argv.slice(2);
      const c = new sp.Client({ socketPath: sock, timeoutMs: 10000 });
      console.log((await c.sessions()).length);
      for (const call of [() => c.session(id), () => sp.Sandbox.connect(id, { client: c }), () => c.endSession(id)]) {
        try { await call(); console.log('no error'); } catch (e) { console.log(e instanceof sp.NotFoundError, e.status, e.code); }
      }
      await sp.Sandbox.use(async (own) => console.log((await own.run('id -u')).stdout.trim(), own.info.ownerUid), { client: c });
      c.close();`);
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    try {
      const p = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups',
        process.execPath, path.join(dir, 'probe.js'), daemon.socket, sb.id], { encoding: 'utf8', timeout: 60000 });
      assert.equal(p.status, 0, p.stderr);
      assert.deepEqual(p.stdout.trim().split('\n'),
        ['0', 'true 404 not_found', 'true 404 not_found', 'true 404 not_found', '1000 65534']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.equal((await sb.run('echo mine')).stdout, 'mine\n');
  }));

  test('the session lifetime ends a running command', async () => {
    let id;
    await Sandbox.use(async (sb) => {
      id = sb.id;
      const r = await sb.run('sleep 10', { timeoutMs: 8000 });
      assert.equal(r.sessionEnded, true);
      assert.equal(r.signal, 9);
      assert.equal(r.timedOut, false);
      await assert.rejects(sb.run('true'), sp.NotFoundError);
    }, { client, timeoutS: 1 });
    assert.ok(!(await ids()).has(id));
  });
});

test('E2B-style names', () => withSb(async (sb) => {
  assert.equal((await sb.commands.run('echo $((1+1))')).stdout, '2\n');
  assert.equal((await sb.commands.stream(['echo', 's']).wait()).stdout, 's\n');
  assert.equal(await sb.files.write('/home/sandbox/n.txt', 'caf\u00e9'), 5);
  assert.equal(await sb.files.read('/home/sandbox/n.txt'), 'caf\u00e9');
  assert.deepEqual(await sb.files.read('/home/sandbox/n.txt', { format: 'bytes' }), Buffer.from('caf\u00e9'));
  assert.ok((await sb.files.list('/home/sandbox')).some((e) => e.name === 'n.txt'));
  await sb.files.remove('/home/sandbox/n.txt');
  await assert.rejects(sb.files.read('/home/sandbox/n.txt'), sp.NotFoundError);
}));

describe('background commands', () => {
  test('resume after a dropped connection, exactly once', async () => {
    await Sandbox.use(async (sb) => {
      const h = await sb.commands.run('for i in $(seq 1 300); do echo $i; usleep 2000; done', { background: true });
      assert.equal(h.info.state, 'running');
      const got = [];
      for await (const ev of h.output()) {
        if (ev.type === 'stdout') got.push(ev.data);
        if (got.length === 3) break; // drops the connection
      }
      await sleep(200);
      const h2 = await sb.commands.connect(h.id);
      h2.offsets = { ...h.offsets };
      const res = await h2.wait();
      assert.equal(res.exitCode, 0);
      const want = Array.from({ length: 300 }, (_, i) => `${i + 1}\n`).join('');
      assert.equal(got.join('') + res.stdout, want);
      assert.deepEqual((await sb.commands.list()).map((c) => c.id), [h.id]);
    }, { client });
  });

  test('stdin, kill, terminal', async () => {
    await Sandbox.use(async (sb) => {
      const h = await sb.commands.run('while read l; do echo "<$l>"; done', { background: true });
      await h.sendStdin('a\n');
      await h.sendStdin('b\n', { eof: true });
      assert.equal((await h.wait()).stdout, '<a>\n<b>\n');
      const k = await sb.commands.run(['sleep', '100'], { background: true });
      await sb.commands.kill(k.id);
      assert.equal((await k.wait()).signal, 9);
      const t = await sb.commands.run('tty; stty size', { background: true, pty: { rows: 40, cols: 120 } });
      assert.equal((await t.wait()).stdout, '/dev/pts/0\r\n40 120\r\n');
    }, { client });
  });
});
