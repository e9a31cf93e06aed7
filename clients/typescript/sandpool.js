// SPDX-License-Identifier: MIT
// Client for the sandpool daemon (sandpoold): node:http over its Unix
// socket, no dependencies. Types: sandpool.d.ts. API: docs/api.md.
//
//   import { Sandbox, run } from './sandpool.js';
//   const sb = await Sandbox.create();
//   try {
//     const r = await sb.run('echo hello; exit 3');   // { exitCode: 3, stdout: 'hello\n', ... }
//     for await (const ev of sb.stream(['sh', '-c', 'for i in 1 2 3; do echo $i; sleep 1; done']))
//       if (ev.type === 'stdout') process.stdout.write(ev.data);
//   } finally {
//     await sb.close();
//   }
//
// Every socket operation has a timeout. The daemon answers an exec when the
// command has ended, so an exec's read timeout is the command's timeout
// plus the client's; a client that gives up closes the connection, and the
// daemon then kills the command.

import http from 'node:http';

export const DEFAULT_SOCKET = '/run/sandpool/sandpool.sock';
export const DEFAULT_TIMEOUT_MS = 30000;
export const VERSION = '0.1.0';

// ---------------------------------------------------------------- errors

export class SandpoolError extends Error {
  constructor(message, { status = 0, code = '', retryAfter = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}
export class BadRequestError extends SandpoolError {}
export class ForbiddenError extends SandpoolError {}
export class NotFoundError extends SandpoolError {}
export class MethodNotAllowedError extends SandpoolError {}
export class ConflictError extends SandpoolError {}
export class TooLargeError extends SandpoolError {}
export class NoCapacityError extends SandpoolError {}
export class InternalError extends SandpoolError {}
export class ShuttingDownError extends SandpoolError {}
export class SandpoolTimeoutError extends SandpoolError {}
export class SandpoolConnectionError extends SandpoolError {}
export class ProtocolError extends SandpoolError {}
export class AbortError extends SandpoolError {}

export class CommandError extends SandpoolError {
  constructor(result) {
    const what = result.timedOut ? 'timed out'
      : result.signal !== null ? `was killed by signal ${result.signal}`
        : `exited with ${result.exitCode}`;
    super(`command ${what}: ${result.stderr.slice(-500).trim()}`, { code: 'command_failed' });
    this.result = result;
  }
}

const ERRORS_BY_CODE = {
  bad_request: BadRequestError, forbidden: ForbiddenError, not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError, conflict: ConflictError, too_large: TooLargeError,
  no_capacity: NoCapacityError, internal: InternalError, shutting_down: ShuttingDownError,
};
const ERRORS_BY_STATUS = {
  400: BadRequestError, 403: ForbiddenError, 404: NotFoundError, 405: MethodNotAllowedError,
  409: ConflictError, 413: TooLargeError, 429: NoCapacityError, 500: InternalError,
  503: ShuttingDownError,
};

/** The typed error for an error answer: the JSON code decides, the status
 *  is the fallback (431 from libmicrohttpd itself has no JSON body). */
export function errorFromResponse(status, body, headers = {}) {
  let code = '';
  let message = '';
  try {
    const err = JSON.parse(Buffer.from(body).toString('utf8')).error;
    code = String(err.code ?? '');
    message = String(err.message ?? '');
  } catch {
    message = Buffer.from(body).subarray(0, 200).toString('utf8').trim();
  }
  const Cls = ERRORS_BY_CODE[code] ?? ERRORS_BY_STATUS[status]
    ?? (status >= 400 && status < 500 ? BadRequestError : SandpoolError);
  const ra = headers['retry-after'];
  const retryAfter = ra === undefined || Number.isNaN(Number(ra)) ? null : Number(ra);
  return new Cls(message || `HTTP ${status}`, { status, code, retryAfter });
}

function wrapError(err) {
  if (err instanceof SandpoolError) return err;
  if (err?.code === 'ECONNREFUSED' || err?.code === 'ENOENT' || err?.code === 'EACCES')
    return new SandpoolConnectionError(`cannot connect to sandpoold: ${err.message}`, { cause: err });
  if (err?.code === 'ECONNRESET' || err?.code === 'EPIPE' || err?.message === 'aborted')
    return new SandpoolConnectionError(`sandpoold closed the connection: ${err.message}`, { cause: err });
  if (err?.name === 'AbortError')
    return new AbortError('the request was aborted', { cause: err });
  if (err instanceof Error && err.code?.startsWith?.('HPE_'))
    return new ProtocolError(`bad answer from sandpoold: ${err.message}`, { cause: err });
  if (err instanceof Error)
    return new SandpoolConnectionError(`cannot talk to sandpoold: ${err.message}`, { cause: err });
  return err;
}

// ---------------------------------------------------------------- results

function commandResult(d, stdout, stderr) {
  const r = {
    exitCode: d.exit_code ?? null,
    signal: d.signal ?? null,
    stdout: stdout ?? d.stdout ?? '',
    stderr: stderr ?? d.stderr ?? '',
    durationMs: d.duration_ms ?? 0,
    timedOut: Boolean(d.timed_out),
    oomKilled: Boolean(d.oom_killed),
    truncated: Boolean(d.truncated),
    error: d.error ?? null,
    sessionEnded: Boolean(d.session_ended),
  };
  Object.defineProperty(r, 'ok', { get() { return this.exitCode === 0; }, enumerable: false });
  return r;
}

function sessionInfo(d) {
  return {
    id: d.id, state: d.state, ownerUid: d.owner_uid, createdAt: d.created_at,
    expiresAt: d.expires_at, labels: d.labels ?? {}, usage: d.usage ?? null, raw: d,
  };
}

function commandBody(cmd, opts, stream) {
  const body = {};
  if (typeof cmd === 'string') body.shell = cmd;
  else if (Array.isArray(cmd)) body.argv = cmd.map(String);
  else throw new TypeError('cmd must be a string (shell line) or an array of strings (argv)');
  if (opts.cwd !== undefined) body.cwd = opts.cwd;
  if (opts.env !== undefined) body.env = { ...opts.env };
  if (opts.stdin !== undefined) body.stdin = opts.stdin;
  if (opts.timeoutMs !== undefined) body.timeout_ms = Math.max(1, Math.round(opts.timeoutMs));
  if (opts.maxOutputBytes !== undefined) body.max_output_bytes = opts.maxOutputBytes;
  if (stream) body.stream = true;
  return body;
}

const spath = (id, suffix = '') => `/v1/sessions/${encodeURIComponent(id)}${suffix}`;
const IDEMPOTENT = new Set(['GET', 'PUT', 'DELETE', 'HEAD']);
const EXPECT_CONTINUE_BYTES = 64 * 1024;

// ---------------------------------------------------------------- client

/** A duration given as fooMs or fooS (not both), in milliseconds. */
function durationMs(name, ms, s) {
  if (ms !== undefined && s !== undefined) throw new TypeError(`give ${name}Ms or ${name}S, not both`);
  return s !== undefined ? Math.round(s * 1000) : ms;
}

export class Client {
  /** @param {{socketPath?: string, timeoutMs?: number}} [opts] */
  constructor({ socketPath, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    this.socketPath = socketPath || process.env.SANDPOOL_SOCKET || DEFAULT_SOCKET;
    this.timeoutMs = timeoutMs;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 8 });
    this._commandTimeoutMs = null;
  }

  /** Close the kept-alive connections. */
  close() {
    this.agent.destroy();
  }

  /** One request; resolves with the response (body unread) for statuses
   *  below 400 and rejects with the typed error otherwise. */
  async request(method, path, { body, headers = {}, timeoutMs, signal } = {}) {
    const hdrs = { ...headers };
    if (body !== undefined && body !== null) {
      if (!hdrs['Content-Type']) hdrs['Content-Type'] = 'application/json';
      hdrs['Content-Length'] = Buffer.byteLength(body);
    }
    const attempts = IDEMPOTENT.has(method) ? 2 : 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once(method, path, body, hdrs, timeoutMs ?? this.timeoutMs, signal);
      } catch (e) {
        // A kept-alive connection the daemon closed at the same moment (it
        // closes idle ones after 60 s): the request never reached it, and
        // Node says so with reusedSocket. Only safe calls are repeated.
        if (e.reusedSocket && e.code === 'ECONNRESET' && attempt + 1 < attempts) continue;
        throw wrapError(e);
      }
    }
  }

  #once(method, path, body, headers, timeoutMs, signal) {
    return new Promise((resolve, reject) => {
      // A large body is sent only once the daemon said 100 Continue: it
      // refuses one over its limit before reading it and closes, and Node
      // then reports EPIPE from the write instead of the daemon's 413.
      const expect = body != null && Buffer.byteLength(body) >= EXPECT_CONTINUE_BYTES;
      if (expect) headers = { ...headers, Expect: '100-continue' };
      const req = http.request({
        socketPath: this.socketPath, path, method, headers, agent: this.agent, signal,
      });
      // Why the request was destroyed: after the answer has begun, Node
      // reports any destroy to the reader of the body as 'aborted'.
      const state = { error: null };
      let answered = false;
      // setTimeout on the request is the socket's idle timeout: it covers
      // connecting, sending, waiting for the answer and each read of it.
      req.setTimeout(timeoutMs, () => {
        state.error = new SandpoolTimeoutError(`no answer from sandpoold within ${timeoutMs} ms`);
        req.destroy(state.error);
      });
      signal?.addEventListener('abort', () => {
        state.error ??= new AbortError('the request was aborted');
      }, { once: true });
      req.on('error', (e) => {
        if (answered) return;
        e.reusedSocket = req.reusedSocket;
        reject(state.error ?? e);
      });
      req.on('response', (res) => {
        answered = true;
        clearTimeout(fallback);
        if (res.statusCode >= 400) {
          readAll(res, state).then((data) => reject(errorFromResponse(res.statusCode, data, res.headers)),
            (e) => reject(wrapError(e)));
          return;
        }
        resolve({ status: res.statusCode, headers: res.headers, res, req, state });
      });
      let fallback;
      if (expect) {
        const send = () => { clearTimeout(fallback); if (!req.writableEnded) req.end(body); };
        req.on('continue', send);
        // A server that never says 100 Continue gets the body after 1 s
        // anyway, as curl does.
        fallback = setTimeout(send, 1000);
        req.flushHeaders();
      } else {
        req.end(body ?? undefined);
      }
    });
  }

  async #call(method, path, obj, opts = {}) {
    const body = obj === undefined ? undefined : JSON.stringify(obj);
    const r = await this.request(method, path, { ...opts, body });
    const data = await readAll(r.res, r.state).catch((e) => { throw wrapError(e); });
    if (r.status === 204 || data.length === 0) return null;
    if ((r.headers['content-type'] ?? '').startsWith('application/json')) {
      try {
        return JSON.parse(data.toString('utf8'));
      } catch (e) {
        throw new ProtocolError(`invalid JSON from sandpoold: ${e.message}`, { status: r.status });
      }
    }
    return data;
  }

  /** GET /v1/health */
  health() { return this.#call('GET', '/v1/health'); }

  /** GET /metrics: the Prometheus text. */
  async metrics() { return String(await this.#call('GET', '/metrics') ?? ''); }

  /** The daemon's default command timeout (asked once). */
  async commandTimeoutMs() {
    if (this._commandTimeoutMs === null)
      this._commandTimeoutMs = (await this.health()).limits?.command_timeout_ms ?? 30000;
    return this._commandTimeoutMs;
  }

  /** POST /v1/sessions; each value is capped by the daemon's config. */
  async createSession(opts = {}) {
    const body = {};
    for (const [k, v] of [['env', opts.env], ['timeout_ms', durationMs('timeout', opts.timeoutMs, opts.timeoutS)],
      ['idle_timeout_ms', durationMs('idleTimeout', opts.idleTimeoutMs, opts.idleTimeoutS)], ['memory_mb', opts.memoryMb],
      ['cpu_pct', opts.cpuPct], ['labels', opts.labels], ['template', opts.template]])
      if (v !== undefined) body[k] = v;
    return sessionInfo(await retryCapacity(opts.capacityWaitMs, () => this.#call('POST', '/v1/sessions',
      Object.keys(body).length ? body : undefined, { signal: opts.signal })));
  }

  /** GET /v1/sessions: the caller's (all for an admin). */
  async sessions() { return (await this.#call('GET', '/v1/sessions')).sessions.map(sessionInfo); }

  /** GET /v1/sessions/{id}, with usage. */
  async session(id) { return sessionInfo(await this.#call('GET', spath(id))); }

  /** DELETE /v1/sessions/{id}: the sandbox is destroyed. */
  async endSession(id) { await this.#call('DELETE', spath(id)); }

  /** POST /v1/sessions/{id}/fork: a copy of the session's files (not its processes). */
  async forkSession(id) { return sessionInfo(await this.#call('POST', spath(id) + '/fork')); }

  /** POST /v1/templates: the session's files as a read-only template. */
  async createTemplate(name, fromSession) {
    return this.#call('POST', '/v1/templates', { name, from_session: fromSession });
  }

  /** GET /v1/templates: the templates the caller may use. */
  async templates() { return (await this.#call('GET', '/v1/templates')).templates; }

  /** GET /v1/templates/{name}. */
  async template(name) { return this.#call('GET', '/v1/templates/' + encodeURIComponent(name)); }

  /** DELETE /v1/templates/{name}: a ConflictError while in use. */
  async deleteTemplate(name) { await this.#call('DELETE', '/v1/templates/' + encodeURIComponent(name)); }

  /** A new session as a Sandbox. */
  createSandbox(opts = {}) { return Sandbox.create({ ...opts, client: this }); }

  async #execTimeout(opts) {
    if (opts.socketTimeoutMs !== undefined) return opts.socketTimeoutMs;
    return (opts.timeoutMs ?? await this.commandTimeoutMs()) + this.timeoutMs;
  }

  async _exec(path, cmd, opts = {}) {
    let result;
    if (opts.onStdout || opts.onStderr) {
      const s = this._stream(path, cmd, opts);
      for await (const ev of s) {
        if (ev.type === 'stdout') opts.onStdout?.(ev.data);
        else if (ev.type === 'stderr') opts.onStderr?.(ev.data);
      }
      result = s.result;
    } else {
      const body = commandBody(cmd, opts, false);
      const d = await this.#call('POST', path, body,
        { timeoutMs: await this.#execTimeout(opts), signal: opts.signal });
      if (d === null || typeof d !== 'object' || Buffer.isBuffer(d))
        throw new ProtocolError('exec answered no JSON object');
      result = commandResult(d);
    }
    if (opts.check && !result.ok) throw new CommandError(result);
    return result;
  }

  _stream(path, cmd, opts = {}) {
    const body = JSON.stringify(commandBody(cmd, opts, true));
    // Between two events there may be no output for the whole command
    // timeout: that (plus the margin) is each read's timeout.
    const send = async () => this.request('POST', path,
      { body, timeoutMs: await this.#execTimeout(opts), signal: opts.signal });
    // A 429 comes before the command starts: safe to ask again.
    const start = () => retryCapacity(opts.capacityWaitMs, send);
    return new CommandStream(start);
  }

  /** POST /v1/run: one command in a fresh sandbox, destroyed afterwards. */
  run(cmd, opts = {}) {
    return retryCapacity(opts.capacityWaitMs, () => this._exec('/v1/run', cmd, opts));
  }

  /** POST /v1/run, streamed. */
  stream(cmd, opts = {}) {
    return this._stream('/v1/run', cmd, opts);
  }
}

/** Call fn; while it rejects with NoCapacityError (429), try again after
 *  its Retry-After until waitMs have passed. */
async function retryCapacity(waitMs = 0, fn) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      const left = deadline - Date.now();
      if (!(e instanceof NoCapacityError) || left <= 0) throw e;
      await new Promise((r) => setTimeout(r, Math.min(left, (e.retryAfter ?? 1) * 1000)));
    }
  }
}

function readAll(res, state = null) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const fail = (e) => reject(wrapError(state?.error ?? e));
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', fail);
    res.on('aborted', () => fail(new SandpoolConnectionError('sandpoold closed the connection')));
  });
}

/** The next chunk of the body, or null at its end. Not `for await` over
 *  the response: leaving such a loop destroys the stream, and with it the
 *  kept-alive connection. */
async function nextChunk(res, state) {
  for (;;) {
    const c = res.read();
    if (c !== null) return c;
    if (res.readableEnded) return null;
    if (res.destroyed)
      throw state.error ?? new SandpoolConnectionError('sandpoold closed the connection');
    await new Promise((resolve, reject) => {
      const done = () => { off(); resolve(); };
      const fail = (e) => { off(); reject(state.error ?? e); };
      const off = () => {
        res.off('readable', done); res.off('end', done); res.off('close', done); res.off('error', fail);
      };
      res.on('readable', done); res.on('end', done); res.on('close', done); res.on('error', fail);
    });
  }
}

// ---------------------------------------------------------------- streaming

/** The events of a streamed command, as an async iterable:
 *  `for await (const ev of stream)`; `start` first, `exit` last, then
 *  `stream.result`. Leaving the loop early (break, throw) or close()
 *  closes the connection, and the daemon kills the command. */
export class CommandStream {
  #start;
  #response = null;
  #done = false;
  #iterating = false;

  constructor(start) {
    this.#start = start;
    this.result = null;
    this.commandId = null;
  }

  async *[Symbol.asyncIterator]() {
    if (this.#iterating) throw new Error('a CommandStream can be iterated once');
    this.#iterating = true;
    const stdout = [];
    const stderr = [];
    try {
      this.#response = await this.#start();
      const { res, state } = this.#response;
      let pending = Buffer.alloc(0);
      for (let chunk; (chunk = await nextChunk(res, state)) !== null;) {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        let nl;
        // Split on the newline byte: it never occurs inside a UTF-8
        // multi-byte sequence, so each line decodes on its own.
        while ((nl = pending.indexOf(10)) >= 0) {
          const line = pending.subarray(0, nl).toString('utf8').trim();
          pending = pending.subarray(nl + 1);
          if (!line) continue;
          let d;
          try {
            d = JSON.parse(line);
          } catch {
            throw new ProtocolError(`invalid event from sandpoold: ${line.slice(0, 200)}`);
          }
          const ev = { type: d.type, data: '', result: null, raw: d };
          if (d.type === 'stdout' || d.type === 'stderr') {
            ev.data = d.data ?? '';
            (d.type === 'stdout' ? stdout : stderr).push(ev.data);
          } else if (d.type === 'start') {
            this.commandId = d.command_id ?? null;
          } else if (d.type === 'exit') {
            this.result = ev.result = commandResult(d, stdout.join(''), stderr.join(''));
            this.#done = true;
          }
          yield ev;
          if (this.#done) return;
        }
      }
      throw new SandpoolConnectionError('the stream ended before the exit event');
    } catch (e) {
      throw wrapError(e);
    } finally {
      if (this.#done) {
        // Drain the end of the chunked body so the connection is reused.
        this.#response?.res.resume();
      } else {
        this.close();
      }
    }
  }

  /** Read every remaining event; resolve with the result. */
  async wait() {
    if (!this.#iterating) {
      // eslint-disable-next-line no-unused-vars
      for await (const _ of this);
    }
    if (!this.result) throw new SandpoolConnectionError('the stream ended before the exit event');
    return this.result;
  }

  /** Close the connection: the daemon kills the command if it still runs. */
  close() {
    if (!this.#done) this.#response?.req.destroy();
  }
}

// ---------------------------------------------------------------- sandbox

// timeoutMs means a command's (or timeoutS a session's) timeout in the
// options of run and create: the client's own is clientTimeoutMs there.
const clientFor = (opts) => new Client({ socketPath: opts.socketPath, timeoutMs: opts.clientTimeoutMs });

/** A session: one sandbox whose files and background processes persist
 *  between commands. End it with close(), or use Sandbox.use(fn) /
 *  `await using sb = await Sandbox.create()` to end it whatever happens. */
export class Sandbox {
  #ownClient;
  #closed = false;

  constructor(client, info, ownClient) {
    this.client = client;
    this.info = info;
    this.id = info.id;
    this.#ownClient = ownClient;
    // The same calls under the names E2B's SDK uses.
    this.commands = {
      run: (cmd, opts = {}) => (opts.background ? this.#startBackground(cmd, opts) : this.run(cmd, opts)),
      stream: (cmd, opts) => this.stream(cmd, opts),
      list: async () => (await this.#json('GET', '/commands')).commands,
      connect: async (cid) => new CommandHandle(this, await this.#json('GET', `/commands/${Number(cid)}`)),
      sendStdin: async (cid, data, opts = {}) => (await this.commands.connect(cid)).sendStdin(data, opts),
      kill: async (cid, sig = 'KILL') => (await this.commands.connect(cid)).signal(sig),
    };
    this.files = {
      write: (path, data) => this.writeFile(path, data),
      read: (path, opts = {}) => (opts.format === 'bytes' ? this.readFile(path) : this.readText(path)),
      list: (path) => this.listDir(path),
      remove: (path) => this.remove(path),
    };
  }

  /** POST /v1/sessions. */
  static async create(opts = {}) {
    const own = !opts.client;
    const client = opts.client ?? clientFor(opts);
    try {
      return new Sandbox(client, await client.createSession(opts), own);
    } catch (e) {
      if (own) client.close();
      throw e;
    }
  }

  /** Attach to an existing session of the caller's. */
  static async connect(id, opts = {}) {
    const own = !opts.client;
    const client = opts.client ?? clientFor(opts);
    try {
      return new Sandbox(client, await client.session(id), own);
    } catch (e) {
      if (own) client.close();
      throw e;
    }
  }

  /** Create a sandbox, give it to fn, end it when fn settles (the
   *  context manager of the Python client). */
  static async use(fn, opts = {}) {
    const sb = await Sandbox.create(opts);
    try {
      return await fn(sb);
    } finally {
      await sb.close();
    }
  }

  /** A call on this session's path with a JSON body; the parsed answer. */
  async #json(method, suffix, obj) {
    const body = obj === undefined ? undefined : JSON.stringify(obj);
    const r = await this.client.request(method, spath(this.id, suffix), { body });
    const data = await readAll(r.res, r.state);
    return data.length ? JSON.parse(data.toString('utf8')) : null;
  }

  async #startBackground(cmd, opts) {
    const body = commandBody(cmd, opts, false);
    if (opts.pty) body.pty = { rows: opts.pty.rows, cols: opts.pty.cols };
    return new CommandHandle(this, await this.#json('POST', '/commands', body));
  }

  /** End the session; idempotent; one that already ended is no error. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.client.endSession(this.id);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    } finally {
      if (this.#ownClient) this.client.close();
    }
  }

  kill() { return this.close(); }

  async [Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')]() { await this.close(); }

  /** GET the session now: state, times, usage. */
  async refresh() {
    this.info = await this.client.session(this.id);
    return this.info;
  }

  /** Run a command and wait for it: a shell line (/bin/sh -c) or an argv
   *  array. With onStdout/onStderr the output is streamed to them. */
  run(cmd, opts = {}) { return this.client._exec(spath(this.id, '/exec'), cmd, opts); }

  /** Vercel-style: runCommand('ls', ['-l', '/']). */
  runCommand(cmd, args = [], opts = {}) { return this.run([cmd, ...args], opts); }

  /** Start a command; iterate over its events with for await. */
  stream(cmd, opts = {}) { return this.client._stream(spath(this.id, '/exec'), cmd, opts); }

  #fpath(path) {
    return spath(this.id, `/files?path=${encodeURIComponent(path).replace(/%2F/g, '/')}`);
  }

  /** Write (create or replace) a file; its directory must exist. Resolves
   *  with the size written. */
  async writeFile(path, data) {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    const r = await this.client.request('PUT', this.#fpath(path),
      { body: buf, headers: { 'Content-Type': 'application/octet-stream' } });
    const d = JSON.parse((await readAll(r.res, r.state)).toString('utf8') || '{}');
    return d.size ?? buf.length;
  }

  /** Write several files: [{path, content}] or {path: content}. */
  async writeFiles(files) {
    const list = Array.isArray(files) ? files
      : Object.entries(files).map(([path, content]) => ({ path, content }));
    for (const f of list) await this.writeFile(f.path, f.content);
  }

  /** The bytes of a regular file (a directory: ConflictError). */
  async readFile(path) {
    const r = await this.client.request('GET', this.#fpath(path));
    const data = await readAll(r.res, r.state);
    if ((r.headers['content-type'] ?? '').startsWith('application/json'))
      throw new ConflictError(`${path} is a directory`, { status: 409, code: 'conflict' });
    return data;
  }

  async readText(path) { return (await this.readFile(path)).toString('utf8'); }

  /** The entries of a directory. */
  async listDir(path) {
    const r = await this.client.request('GET', this.#fpath(path));
    const data = await readAll(r.res, r.state);
    if (!(r.headers['content-type'] ?? '').startsWith('application/json'))
      throw new ConflictError(`${path} is not a directory`, { status: 409, code: 'conflict' });
    return JSON.parse(data.toString('utf8')).entries.map((e) => ({
      name: e.name, type: e.type, size: e.size ?? 0, mode: e.mode ?? 0, mtime: e.mtime ?? 0,
    }));
  }

  /** Remove a file, a symlink or an empty directory. */
  async remove(path) {
    const r = await this.client.request('DELETE', this.#fpath(path));
    await readAll(r.res, r.state);
  }
}

/** One shot: run cmd in a fresh sandbox that is destroyed afterwards. */
// ---------------------------------------------------------------- background commands

/** A background command (POST /v1/sessions/{id}/commands): it outlives the
 *  connection that started it. output() reads what it wrote from the last
 *  offsets this handle has seen, so a dropped connection resumes without a
 *  byte lost or repeated (while the daemon's ring still holds it). */
export class CommandHandle {
  constructor(sandbox, info) {
    this.sandbox = sandbox;
    this.id = info.id;
    this.info = info;
    this.offsets = { stdout: 0, stderr: 0 };
    this.dropped = 0;
  }

  get pid() { return this.info.pid ?? 0; }

  #path(suffix = '') { return spath(this.sandbox.id, `/commands/${this.id}${suffix}`); }

  async #post(suffix, body, contentType = 'application/json') {
    const r = await this.sandbox.client.request('POST', this.#path(suffix),
      { body, headers: { 'Content-Type': contentType } });
    await readAll(r.res, r.state);
  }

  /** GET the command: state, pid, exit. */
  async refresh() {
    const r = await this.sandbox.client.request('GET', this.#path());
    this.info = JSON.parse((await readAll(r.res, r.state)).toString('utf8'));
    return this.info;
  }

  /** Write to its stdin; {eof: true} closes it after (^D on a terminal). */
  sendStdin(data, { eof = false } = {}) {
    return this.#post(`/stdin${eof ? '?eof=true' : ''}`, Buffer.from(data), 'application/octet-stream');
  }

  /** A signal ('INT', 'TERM', 'KILL'... or its number) to its process group. */
  signal(sig) { return this.#post('/signal', JSON.stringify({ signal: sig })); }

  kill() { return this.signal('KILL'); }

  /** A terminal's new size (a command started with pty). */
  resize(rows, cols) { return this.#post('/resize', JSON.stringify({ rows, cols })); }

  /** Its events from the last offsets seen ({type: 'stdout'|'stderr', data},
   *  {type: 'dropped'}, then {type: 'exit', result}); with follow (the
   *  default) until it exits; a broken connection is resumed. */
  async *output({ follow = true, retries = 20 } = {}) {
    for (let attempt = 0; attempt <= retries; attempt++) {
      const q = `?stdout_offset=${this.offsets.stdout}&stderr_offset=${this.offsets.stderr}${follow ? '&follow=true' : ''}`;
      const r = await this.sandbox.client.request('GET', this.#path(`/output${q}`), { timeoutMs: follow ? 0 : undefined });
      let buf = '';
      try {
        for (;;) {
          let chunk;
          try {
            chunk = await nextChunk(r.res, r.state);
          } catch {
            break; // the connection broke: resume from the offsets reached
          }
          if (chunk === null) break;
          buf += chunk.toString('utf8');
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const ev = JSON.parse(buf.slice(0, nl));
            buf = buf.slice(nl + 1);
            if (ev.type === 'stdout' || ev.type === 'stderr') {
              this.offsets[ev.type] = ev.offset + ev.length;
              yield { type: ev.type, data: ev.data, result: null, raw: ev };
            } else if (ev.type === 'dropped') {
              this.dropped += ev.bytes;
              this.offsets[ev.stream] = ev.offset + ev.bytes;
              yield { type: 'dropped', data: '', result: null, raw: ev };
            } else if (ev.type === 'exit') {
              this.info = ev;
              yield { type: 'exit', data: '', result: commandResult(ev, '', ''), raw: ev };
              return;
            } else if (ev.type === 'caught_up' || ev.type === 'gone') {
              return;
            }
          }
        }
      } finally {
        r.req.destroy();
      }
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new SandpoolConnectionError(`the output stream of command ${this.id} keeps breaking`);
  }

  /** Follow it to its end: the result, with the output read meanwhile. */
  async wait() {
    const out = { stdout: [], stderr: [] };
    for await (const ev of this.output()) {
      if (ev.type === 'stdout' || ev.type === 'stderr') out[ev.type].push(ev.data);
      else if (ev.type === 'exit') return commandResult(ev.raw, out.stdout.join(''), out.stderr.join(''));
    }
    return commandResult(await this.refresh(), out.stdout.join(''), out.stderr.join(''));
  }
}

export async function run(cmd, opts = {}) {
  const client = clientFor(opts);
  try {
    return await client.run(cmd, opts);
  } finally {
    client.close();
  }
}
