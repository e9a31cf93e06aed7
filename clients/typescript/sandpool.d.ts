// SPDX-License-Identifier: MIT
// Types of sandpool.js: the client of the sandpool daemon over its Unix socket.

/// <reference types="node" />
import type { Agent, IncomingHttpHeaders, IncomingMessage, ClientRequest } from 'node:http';

export declare const DEFAULT_SOCKET: string;
export declare const DEFAULT_TIMEOUT_MS: number;
export declare const VERSION: string;

/** The daemon's error codes (docs/api.md), plus the client's own. */
export type ErrorCode =
  | 'bad_request' | 'forbidden' | 'not_found' | 'method_not_allowed' | 'conflict'
  | 'too_large' | 'no_capacity' | 'internal' | 'shutting_down' | 'command_failed' | '';

export declare class SandpoolError extends Error {
  constructor(message: string, opts?: { status?: number; code?: string; retryAfter?: number | null; cause?: unknown });
  /** HTTP status; 0 when no answer was received. */
  readonly status: number;
  readonly code: ErrorCode | string;
  /** Seconds, from Retry-After (429). */
  readonly retryAfter: number | null;
}
/** 400 */ export declare class BadRequestError extends SandpoolError {}
/** 403: the sandbox user may not do that. */ export declare class ForbiddenError extends SandpoolError {}
/** 404: unknown session (or another uid's), missing file, unknown endpoint. */
export declare class NotFoundError extends SandpoolError {}
/** 405 */ export declare class MethodNotAllowedError extends SandpoolError {}
/** 409: wrong state. */ export declare class ConflictError extends SandpoolError {}
/** 413: body over the limit, disk quota full. */ export declare class TooLargeError extends SandpoolError {}
/** 429: no capacity; see retryAfter. */ export declare class NoCapacityError extends SandpoolError {}
/** 500 */ export declare class InternalError extends SandpoolError {}
/** 503: the daemon is draining. */ export declare class ShuttingDownError extends SandpoolError {}
/** A socket operation took longer than its timeout. */
export declare class SandpoolTimeoutError extends SandpoolError {}
/** The daemon could not be reached or closed the connection. */
export declare class SandpoolConnectionError extends SandpoolError {}
/** The daemon answered something this client does not understand. */
export declare class ProtocolError extends SandpoolError {}
/** The caller's AbortSignal fired. */
export declare class AbortError extends SandpoolError {}
/** run(..., { check: true }) and the command did not exit with 0. */
export declare class CommandError extends SandpoolError {
  constructor(result: CommandResult);
  readonly result: CommandResult;
}

export declare function errorFromResponse(status: number, body: Uint8Array | string,
  headers?: IncomingHttpHeaders): SandpoolError;

/** A shell line (run by /bin/sh -c) or an argv array. */
export type Command = string | readonly string[];

export interface CommandResult {
  /** null when the command was killed (then `signal` says by what). */
  exitCode: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  oomKilled: boolean;
  /** Output beyond maxOutputBytes (per stream) was dropped. */
  truncated: boolean;
  /** Why the command could not be executed (then exitCode is 127 or 126). */
  error: string | null;
  /** The session ended while the command ran. */
  sessionEnded: boolean;
  /** exitCode === 0 */
  readonly ok: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  /** The command's timeout (default: the daemon's command_timeout). */
  timeoutMs?: number;
  maxOutputBytes?: number;
  /** Stream output to these as it comes (it is also collected in the result). */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Reject with CommandError unless the command exits with 0. */
  check?: boolean;
  /** Read timeout of the request (default: timeoutMs + the client's timeoutMs). */
  socketTimeoutMs?: number;
  signal?: AbortSignal;
}
export type StreamOptions = Omit<RunOptions, 'onStdout' | 'onStderr' | 'check'>;

export interface StartEvent { type: 'start'; data: ''; result: null; raw: Record<string, unknown> }
export interface OutputEvent { type: 'stdout' | 'stderr'; data: string; result: null; raw: Record<string, unknown> }
export interface ExitEvent { type: 'exit'; data: ''; result: CommandResult; raw: Record<string, unknown> }
export type CommandEvent = StartEvent | OutputEvent | ExitEvent;

/** Iterate once with `for await`; leaving the loop early closes the
 *  connection and the daemon kills the command. */
export declare class CommandStream implements AsyncIterable<CommandEvent> {
  [Symbol.asyncIterator](): AsyncGenerator<CommandEvent, void, undefined>;
  /** Set when the exit event has been read. */
  result: CommandResult | null;
  commandId: number | null;
  wait(): Promise<CommandResult>;
  close(): void;
}

export interface SessionOptions {
  env?: Record<string, string>;
  /** Lifetime in ms, capped by session_timeout (sent as timeout_ms). */
  timeoutMs?: number;
  idleTimeoutMs?: number;
  /** The same in seconds (give one of timeoutMs and timeoutS). */
  timeoutS?: number;
  idleTimeoutS?: number;
  memoryMb?: number;
  cpuPct?: number;
  labels?: Record<string, string>;
  /** Start with this template's files (createTemplate). */
  template?: string;
  signal?: AbortSignal;
  /** Keep retrying while the daemon answers 429 (no capacity), each time
   *  after its Retry-After, for up to this long. Default 0. */
  capacityWaitMs?: number;
}

export interface SessionUsage {
  memory_current: number; memory_peak: number; cpu_usec: number;
  pids_current: number; oom_kills: number; nr_throttled: number;
}

export interface SessionInfo {
  id: string;
  state: 'ready' | 'busy' | string;
  ownerUid: number;
  createdAt: string;
  expiresAt: string;
  labels: Record<string, string>;
  /** From GET on one session only. */
  usage: SessionUsage | null;
  /** Every field as the daemon sent it. */
  raw: Record<string, any>;
}

export interface DirEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtime: number;
}

export interface Health {
  status: 'ok' | 'draining';
  version: string;
  cgroup: { mode: 'v1' | 'v2' };
  pool: { available: number; allocated: number; warming: number; total: number; max_capacity: number };
  active_sessions: number;
  limits: Record<string, number>;
}

export interface ClientOptions {
  /** Default: $SANDPOOL_SOCKET, then /run/sandpool/sandpool.sock. */
  socketPath?: string;
  /** Every socket operation's timeout, and the margin added to a command's. */
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  res: IncomingMessage;
  req: ClientRequest;
}

export declare class Client {
  constructor(opts?: ClientOptions);
  readonly socketPath: string;
  readonly timeoutMs: number;
  readonly agent: Agent;
  close(): void;
  /** Low level: one request; rejects with the typed error for status >= 400. */
  request(method: string, path: string, opts?: {
    body?: string | Uint8Array; headers?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal;
  }): Promise<RawResponse>;
  health(): Promise<Health>;
  metrics(): Promise<string>;
  commandTimeoutMs(): Promise<number>;
  createSession(opts?: SessionOptions): Promise<SessionInfo>;
  sessions(): Promise<SessionInfo[]>;
  session(id: string): Promise<SessionInfo>;
  endSession(id: string): Promise<void>;
  forkSession(id: string): Promise<SessionInfo>;
  createTemplate(name: string, fromSession: string): Promise<Record<string, unknown>>;
  templates(): Promise<Record<string, unknown>[]>;
  template(name: string): Promise<Record<string, unknown>>;
  deleteTemplate(name: string): Promise<void>;
  createSandbox(opts?: SessionOptions): Promise<Sandbox>;
  /** One shot: POST /v1/run. */
  run(cmd: Command, opts?: RunOptions & { capacityWaitMs?: number }): Promise<CommandResult>;
  stream(cmd: Command, opts?: StreamOptions & { capacityWaitMs?: number }): CommandStream;
}

export interface SandboxOptions extends SessionOptions {
  client?: Client;
  socketPath?: string;
  /** The client's timeoutMs, when no client is given. */
  clientTimeoutMs?: number;
}

export declare class Sandbox implements AsyncDisposable {
  private constructor();
  readonly client: Client;
  readonly id: string;
  info: SessionInfo;
  /** The command calls under E2B's names. */
  readonly commands: {
    run(cmd: Command, opts: BackgroundOptions & { background: true }): Promise<CommandHandle>;
    run(cmd: Command, opts?: RunOptions & { background?: false }): Promise<CommandResult>;
    stream(cmd: Command, opts?: StreamOptions): CommandStream;
    /** Every background command of the session, oldest first. */
    list(): Promise<CommandInfo[]>;
    /** A handle on a background command started earlier. */
    connect(cid: number): Promise<CommandHandle>;
    sendStdin(cid: number, data: string | Uint8Array, opts?: { eof?: boolean }): Promise<void>;
    kill(cid: number, sig?: string | number): Promise<void>;
  };
  /** The file calls under E2B's names. */
  readonly files: {
    write(path: string, data: string | Uint8Array): Promise<number>;
    read(path: string, opts?: { format?: 'text' }): Promise<string>;
    read(path: string, opts: { format: 'bytes' }): Promise<Buffer>;
    list(path: string): Promise<DirEntry[]>;
    remove(path: string): Promise<void>;
  };
  static create(opts?: SandboxOptions): Promise<Sandbox>;
  static connect(id: string, opts?: Omit<SandboxOptions, keyof SessionOptions>): Promise<Sandbox>;
  /** Create, hand to fn, end when fn settles. */
  static use<T>(fn: (sb: Sandbox) => Promise<T> | T, opts?: SandboxOptions): Promise<T>;
  close(): Promise<void>;
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  refresh(): Promise<SessionInfo>;
  run(cmd: Command, opts?: RunOptions): Promise<CommandResult>;
  runCommand(cmd: string, args?: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  stream(cmd: Command, opts?: StreamOptions): CommandStream;
  writeFile(path: string, data: string | Uint8Array): Promise<number>;
  writeFiles(files: { path: string; content: string | Uint8Array }[] | Record<string, string | Uint8Array>): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  readText(path: string): Promise<string>;
  listDir(path: string): Promise<DirEntry[]>;
  remove(path: string): Promise<void>;
}

export interface OneShotOptions extends RunOptions {
  socketPath?: string;
  capacityWaitMs?: number;
  clientTimeoutMs?: number;
}
/** One shot: a fresh sandbox, one command, destroyed afterwards. */
export declare function run(cmd: Command, opts?: OneShotOptions): Promise<CommandResult>;

export interface BackgroundOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  /** Its own timeout; none by default. */
  timeoutMs?: number;
  /** The ring kept per stream (default and cap: command_buffer). */
  maxOutputBytes?: number;
  /** On a terminal of this size. */
  pty?: { rows: number; cols: number };
  background: true;
}

/** A background command as GET /v1/sessions/{id}/commands lists it. */
export interface CommandInfo {
  id: number;
  argv: string[];
  state: 'running' | 'exited';
  pid: number;
  pty: boolean;
  started_at: string;
  stdout: { bytes: number; first_offset: number };
  stderr: { bytes: number; first_offset: number };
  exit_code?: number | null;
  signal?: number | null;
  [key: string]: unknown;
}

export interface DroppedEvent { type: 'dropped'; data: ''; result: null; raw: Record<string, unknown> }

/** A background command: outlives the connection that started it. */
export declare class CommandHandle {
  readonly sandbox: Sandbox;
  readonly id: number;
  info: CommandInfo;
  /** The next byte to read of each stream. */
  offsets: { stdout: number; stderr: number };
  /** Bytes the daemon no longer held when asked for. */
  dropped: number;
  readonly pid: number;
  refresh(): Promise<CommandInfo>;
  sendStdin(data: string | Uint8Array, opts?: { eof?: boolean }): Promise<void>;
  signal(sig: string | number): Promise<void>;
  kill(): Promise<void>;
  resize(rows: number, cols: number): Promise<void>;
  output(opts?: { follow?: boolean; retries?: number }): AsyncGenerator<OutputEvent | DroppedEvent | ExitEvent>;
  wait(): Promise<CommandResult>;
}
