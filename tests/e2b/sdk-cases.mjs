// SPDX-License-Identifier: MIT
// The unmodified `e2b` SDK (pinned in package-lock.json) against sandpoold's
// E2B-compatible listener. Run by tests/integration/test_e2b.py, which
// starts the daemon and sets:
//   E2B_API_URL, E2B_SANDBOX_URL  http://127.0.0.1:PORT (the listener)
//   E2B_API_KEY                   key A (uid 0)
//   E2B_KEY_B, E2B_UID_B          key B and the uid it maps to
//   SANDPOOL_SOCKET               sandpool's own API, to check what the SDK cannot see
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { Sandbox, CommandExitError, NotFoundError, SandboxNotFoundError } from 'e2b'

const API = process.env.E2B_API_URL
const KEY_B = process.env.E2B_KEY_B
const UID_B = Number(process.env.E2B_UID_B)

// sandpool's own API over its Unix socket
function sandpool (method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: process.env.SANDPOOL_SOCKET, method, path }, res => {
      let data = ''
      res.on('data', d => { data += d })
      res.on('end', () => resolve({ status: res.statusCode, body: data ? JSON.parse(data) : null }))
    })
    req.on('error', reject)
    if (body) req.end(JSON.stringify(body)); else req.end()
  })
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

test('create, then python3 prints 42; the sandbox is a sandpool session of the key\'s uid', async () => {
  const sbx = await Sandbox.create({ metadata: { purpose: 'e2b-test' } })
  try {
    const r = await sbx.commands.run("python3 -c 'print(6*7)'")
    assert.equal(r.exitCode, 0)
    assert.equal(r.stdout, '42\n')
    const s = await sandpool('GET', `/v1/sessions/${sbx.sandboxId}`)
    assert.equal(s.status, 200)
    assert.equal(s.body.owner_uid ?? s.body.owner, 0)
    const info = await sbx.getInfo()
    assert.equal(info.sandboxId, sbx.sandboxId)
    assert.equal(info.templateId, 'base')
    assert.deepEqual(info.metadata, { purpose: 'e2b-test' })
    assert.ok(info.endAt > info.startedAt)
    const found = await Sandbox.list({ query: { metadata: { purpose: 'e2b-test' } } }).nextItems()
    assert.deepEqual(found.map(x => x.sandboxId), [sbx.sandboxId])
    assert.deepEqual(await Sandbox.list({ query: { metadata: { purpose: 'other' } } }).nextItems(), [])
    assert.deepEqual(await Sandbox.list({ query: { state: ['paused'] } }).nextItems(), [])
  } finally {
    await sbx.kill()
  }
})

test('node runs; a non-zero exit is CommandExitError with its code and stderr', async () => {
  const sbx = await Sandbox.create()
  try {
    const r = await sbx.commands.run("node -e 'console.log(process.version)'")
    assert.match(r.stdout, /^v22\./)
    await assert.rejects(sbx.commands.run('echo oops >&2; exit 3'), err => {
      assert.ok(err instanceof CommandExitError, String(err))
      assert.equal(err.exitCode, 3)
      assert.equal(err.stderr, 'oops\n')
      return true
    })
  } finally {
    await sbx.kill()
  }
})

test('files: write, read, list, makeDir, rename, getInfo, exists, remove', async () => {
  const sbx = await Sandbox.create()
  try {
    const w = await sbx.files.write('/tmp/e2b/deep/hello.txt', 'hello from the SDK\n')
    assert.equal(w.path, '/tmp/e2b/deep/hello.txt')
    assert.equal(await sbx.files.read('/tmp/e2b/deep/hello.txt'), 'hello from the SDK\n')
    // the same bytes through a command, and owned by the sandbox user
    const cat = await sbx.commands.run('cat /tmp/e2b/deep/hello.txt; stat -c %U /tmp/e2b/deep/hello.txt')
    assert.equal(cat.stdout, 'hello from the SDK\nsandbox\n')
    const many = await sbx.files.write([{ path: '/tmp/m/a.txt', data: 'A' }, { path: '/tmp/m/b.txt', data: 'BB' }])
    assert.deepEqual(many.map(f => f.path), ['/tmp/m/a.txt', '/tmp/m/b.txt'])
    assert.equal((await sbx.commands.run('cat /tmp/m/a.txt /tmp/m/b.txt')).stdout, 'ABB')
    const bin = new Uint8Array([0, 1, 2, 250, 255])
    await sbx.files.write('rel.bin', bin.buffer)
    assert.deepEqual(await sbx.files.read('/home/sandbox/rel.bin', { format: 'bytes' }), bin)
    assert.equal(await sbx.files.makeDir('/tmp/e2b/newdir'), true)
    assert.equal(await sbx.files.makeDir('/tmp/e2b/newdir'), false)
    const names = (await sbx.files.list('/tmp/e2b')).map(e => `${e.name}:${e.type}`).sort()
    assert.deepEqual(names, ['deep:dir', 'newdir:dir'])
    const deep = (await sbx.files.list('/tmp/e2b', { depth: 2 })).map(e => e.path).sort()
    assert.deepEqual(deep, ['/tmp/e2b/deep', '/tmp/e2b/deep/hello.txt', '/tmp/e2b/newdir'])
    const moved = await sbx.files.rename('/tmp/e2b/deep/hello.txt', '/tmp/e2b/newdir/moved.txt')
    assert.equal(moved.path, '/tmp/e2b/newdir/moved.txt')
    const st = await sbx.files.getInfo('/tmp/e2b/newdir/moved.txt')
    assert.equal(st.type, 'file')
    assert.equal(st.size, 19)
    assert.equal(await sbx.files.exists('/tmp/e2b/deep/hello.txt'), false)
    await sbx.files.remove('/tmp/e2b')
    assert.equal(await sbx.files.exists('/tmp/e2b'), false)
    await assert.rejects(sbx.files.read('/tmp/nope'), err => err.name === 'FileNotFoundError')
    // the root of the sandbox is the root: no way out of it
    await assert.rejects(sbx.files.read('/../../../../etc/sandpool-host-only'))
    const host = await sbx.files.read('/etc/hostname')
    assert.notEqual(host.trim(), (await import('node:os')).hostname())
  } finally {
    await sbx.kill()
  }
})

test('watchDir: create, write, rename and remove in a directory reach the SDK', async () => {
  const sbx = await Sandbox.create()
  try {
    await sbx.files.makeDir('/tmp/w')
    const events = []
    const handle = await sbx.files.watchDir('/tmp/w', e => events.push(`${e.type}:${e.name}`))
    await sbx.files.write('/tmp/w/a.txt', 'one')
    await sbx.commands.run('echo more >> /tmp/w/a.txt; mv /tmp/w/a.txt /tmp/w/b.txt; rm /tmp/w/b.txt')
    const t0 = Date.now()
    while (!events.includes('remove:b.txt') && Date.now() - t0 < 5000) await sleep(20)
    await handle.stop()
    for (const e of ['create:a.txt', 'write:a.txt', 'rename:a.txt', 'create:b.txt', 'remove:b.txt']) {
      assert.ok(events.includes(e), `${e} not in ${JSON.stringify(events)}`)
    }
    await assert.rejects(sbx.files.watchDir('/tmp/not-there', () => {}))
  } finally {
    await sbx.kill()
  }
})

test('a background command: onStdout streams, list shows it, connect(pid) gets the rest and the exit', async () => {
  const sbx = await Sandbox.create()
  try {
    const seen = []
    const t0 = Date.now()
    const h = await sbx.commands.run('echo first; sleep 1.5; for i in $(seq 2 20); do echo $i; done', {
      background: true, onStdout: d => seen.push([Date.now() - t0, d])
    })
    while (seen.length === 0 && Date.now() - t0 < 10000) await sleep(20)
    // streamed: the first line came well before the command ended
    assert.equal(seen[0][1], 'first\n')
    assert.ok(seen[0][0] < 1200, `first output after ${seen[0][0]} ms`)
    const listed = await sbx.commands.list()
    assert.ok(listed.some(p => p.pid === h.pid && p.cmd === '/bin/bash'), JSON.stringify(listed))
    await h.disconnect()
    const again = await sbx.commands.connect(h.pid)
    const r = await again.wait()
    assert.equal(r.exitCode, 0)
    assert.match(r.stdout, /(^|\n)20\n$/)
    assert.ok(!r.stdout.includes('first'), 'connect gives what comes after it, as envd does')
    assert.ok(Date.now() - t0 >= 1400)
  } finally {
    await sbx.kill()
  }
})

test('stdin: sendStdin and closeStdin reach the command', async () => {
  const sbx = await Sandbox.create()
  try {
    const h = await sbx.commands.run('tr a-z A-Z', { background: true, stdin: true })
    await sbx.commands.sendStdin(h.pid, 'hello stdin\n')
    await sbx.commands.closeStdin(h.pid)
    const r = await h.wait()
    assert.equal(r.stdout, 'HELLO STDIN\n')
  } finally {
    await sbx.kill()
  }
})

test('kill a command, then the sandbox: both are gone, in sandpool too', async () => {
  const sbx = await Sandbox.create()
  const h = await sbx.commands.run('sleep 100', { background: true })
  assert.equal(await sbx.commands.kill(h.pid), true)
  await assert.rejects(h.wait(), err => err instanceof CommandExitError && err.exitCode === -1)
  assert.equal(await sbx.commands.kill(9999), false)
  assert.equal(await sbx.isRunning(), true)
  await sbx.kill()
  assert.equal((await sandpool('GET', `/v1/sessions/${sbx.sandboxId}`)).status, 404)
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), err => err instanceof SandboxNotFoundError || err instanceof NotFoundError)
  await assert.rejects(sbx.commands.run('true'))
  assert.equal(await Sandbox.kill(sbx.sandboxId), false)
})

test('timeout: a sandbox ends when its timeout passes; setTimeout extends it', async () => {
  const short = await Sandbox.create({ timeoutMs: 2000 })
  const extended = await Sandbox.create({ timeoutMs: 2000 })
  await extended.setTimeout(60000)
  await sleep(3500)
  assert.equal((await sandpool('GET', `/v1/sessions/${short.sandboxId}`)).status, 404)
  await assert.rejects(Sandbox.getInfo(short.sandboxId))
  assert.equal((await extended.commands.run('echo alive')).stdout, 'alive\n')
  const info = await extended.getInfo()
  assert.ok(info.endAt.getTime() - Date.now() > 50000, String(info.endAt))
  await extended.kill()
})

test('two keys: neither sees nor touches the other\'s sandboxes', async () => {
  const a = await Sandbox.create()
  const b = await Sandbox.create({ apiKey: KEY_B })
  try {
    const listA = (await Sandbox.list().nextItems()).map(s => s.sandboxId)
    const listB = (await Sandbox.list({ apiKey: KEY_B }).nextItems()).map(s => s.sandboxId)
    assert.ok(listA.includes(a.sandboxId) && !listA.includes(b.sandboxId), JSON.stringify(listA))
    assert.deepEqual(listB, [b.sandboxId])
    await assert.rejects(Sandbox.getInfo(a.sandboxId, { apiKey: KEY_B }))
    await assert.rejects(Sandbox.connect(a.sandboxId, { apiKey: KEY_B }))
    assert.equal(await Sandbox.kill(a.sandboxId, { apiKey: KEY_B }), false)
    assert.equal((await a.commands.run('echo still here')).stdout, 'still here\n')
    // B's sandbox is a session of B's uid
    const s = await sandpool('GET', `/v1/sessions/${b.sandboxId}`)
    assert.equal(s.body.owner_uid ?? s.body.owner, UID_B)
    // connect with the right key: a working handle
    const again = await Sandbox.connect(b.sandboxId, { apiKey: KEY_B })
    assert.equal((await again.commands.run('echo b')).stdout, 'b\n')
  } finally {
    await a.kill()
    await Sandbox.kill(b.sandboxId, { apiKey: KEY_B })
  }
})

test('a bad key, no key: 401 in E2B\'s shape', async () => {
  await assert.rejects(Sandbox.create({ apiKey: 'not-a-key' }), err => /401/.test(String(err)) || err.name === 'AuthenticationError')
  const r = await fetch(`${API}/v2/sandboxes`)
  assert.equal(r.status, 401)
  const body = await r.json()
  assert.equal(body.code, 401)
  assert.equal(typeof body.message, 'string')
})

test('the in-sandbox API wants the sandbox\'s access token', async () => {
  const sbx = await Sandbox.create()
  try {
    const call = headers => fetch(`${API}/process.Process/List`, {
      method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json', 'E2b-Sandbox-Id': sbx.sandboxId, ...headers }
    })
    const none = await call({})
    assert.equal(none.status, 401)
    assert.equal((await none.json()).code, 'unauthenticated')
    assert.equal((await call({ 'X-Access-Token': 'wrong' })).status, 401)
    // the SDK's own calls carry it
    assert.ok(Array.isArray(await sbx.commands.list()))
  } finally {
    await sbx.kill()
  }
})

test('a terminal: pty.create, sendInput, resize, on a devpts of the sandbox', async () => {
  const sbx = await Sandbox.create()
  try {
    let out = ''
    const dec = new TextDecoder()
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: d => { out += dec.decode(d) } })
    const enc = new TextEncoder()
    await sbx.pty.sendInput(term.pid, enc.encode('tty; stty size\n'))
    const t0 = Date.now()
    while (!/24 80/.test(out) && Date.now() - t0 < 10000) await sleep(20)
    assert.match(out, /\/dev\/pts\/\d+/)
    assert.match(out, /24 80/)
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sbx.pty.sendInput(term.pid, enc.encode('stty size; exit 7\n'))
    await assert.rejects(term.wait(), err => err instanceof CommandExitError && err.exitCode === 7)
    assert.match(out, /30 100/)
  } finally {
    await sbx.kill()
  }
})

test('a templateID is a sandpool template of the key\'s uid', async () => {
  // made through sandpool's own API by uid 0, the uid of key A
  const src = await sandpool('POST', '/v1/sessions', {})
  assert.equal(src.status, 201)
  const put = await new Promise((resolve, reject) => {
    const req = http.request({ socketPath: process.env.SANDPOOL_SOCKET, method: 'PUT', path: `/v1/sessions/${src.body.id}/files?path=/home/sandbox/from-template.txt` }, res => { res.resume(); res.on('end', () => resolve(res.statusCode)) })
    req.on('error', reject)
    req.end('made before the template\n')
  })
  assert.equal(put, 201)
  const t = await sandpool('POST', '/v1/templates', { name: 'e2b-test-tmpl', from_session: src.body.id })
  assert.equal(t.status, 201, JSON.stringify(t.body))
  await sandpool('DELETE', `/v1/sessions/${src.body.id}`)
  try {
    const sbx = await Sandbox.create('e2b-test-tmpl')
    try {
      assert.equal((await sbx.files.read('from-template.txt')), 'made before the template\n')
      assert.equal((await sbx.getInfo()).templateId, 'e2b-test-tmpl')
    } finally {
      await sbx.kill()
    }
    // another uid does not see it
    await assert.rejects(Sandbox.create('e2b-test-tmpl', { apiKey: KEY_B }), err => /404|no template/.test(String(err)))
  } finally {
    assert.equal((await sandpool('DELETE', '/v1/templates/e2b-test-tmpl')).status, 204)
  }
})

test('what sandpool does not do says so', async () => {
  await assert.rejects(Sandbox.create('some-other-template'), err => /no template 'some-other-template'/.test(String(err)))
  const sbx = await Sandbox.create()
  try {
    await assert.rejects(sbx.files.watchDir('/tmp', () => {}, { recursive: true }), err => /sandpool does not/.test(String(err)))
    await assert.rejects(sbx.pause(), err => /sandpool does not/.test(String(err)))
  } finally {
    await sbx.kill()
  }
})
