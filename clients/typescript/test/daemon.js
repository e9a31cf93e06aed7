// SPDX-License-Identifier: MIT
// Starts the real sandpoold for the tests, as tests/integration/conftest.py
// does: a temporary socket and state dir, the busybox test rootfs, its own
// cgroup subdirectory; stop() sends SIGTERM and checks that the daemon
// exits 0 and leaves no cgroup, mount or socket behind.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../sandpool.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_ROOT = path.resolve(HERE, '..', '..', '..');
export const BUILD_DIR = path.resolve(process.env.SANDPOOL_BUILD_DIR || path.join(SOURCE_ROOT, 'build'));
export const SANDPOOLD = path.join(BUILD_DIR, 'supervisor', 'sandpoold');
export const ROOTFS = process.env.SANDPOOL_TEST_ROOTFS || path.join(BUILD_DIR, 'test-rootfs');
export const POLICY = process.env.SANDPOOL_TEST_POLICY || path.join(SOURCE_ROOT, 'policies', 'default.policy');

/** Why these tests cannot run here, or null. */
export function missingPrerequisite() {
  if (process.getuid() !== 0) return 'the daemon needs root (namespaces, cgroups, mounts)';
  try { fs.accessSync(SANDPOOLD, fs.constants.X_OK); } catch { return `${SANDPOOLD} is not built`; }
  if (!fs.existsSync(path.join(ROOTFS, 'bin'))) return `no test rootfs at ${ROOTFS}`;
  return null;
}

let counter = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  constructor(conf = {}) {
    counter += 1;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandpoold-node-'));
    fs.chmodSync(this.dir, 0o755);
    this.socket = path.join(this.dir, 'api.sock');
    this.logPath = path.join(this.dir, 'sandpoold.log');
    this.confPath = path.join(this.dir, 'sandpool.conf');
    this.subdir = `sp-node-test-${process.pid}-${counter}`;
    const sections = {
      server: { socket: this.socket, socket_mode: '0666', state_dir: path.join(this.dir, 'state') },
      images: { rootfs: ROOTFS, seccomp_policy: POLICY },
      limits: { cpu_limit: '100', max_upload: '1M' },
    };
    for (const [sec, kv] of Object.entries(conf)) sections[sec] = { ...(sections[sec] ?? {}), ...kv };
    fs.writeFileSync(this.confPath, Object.entries(sections).map(([sec, kv]) =>
      `[${sec}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${v}\n`).join('')}`).join(''));
    this.proc = null;
    this.cgroupPaths = [];
  }

  log() { return fs.readFileSync(this.logPath, 'utf8'); }

  async start(timeoutMs = 10000) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SANDPOOL_')));
    const logFd = fs.openSync(this.logPath, 'w');
    this.proc = spawn(SANDPOOLD, ['--config', this.confPath, '--cgroup-subdir', this.subdir],
      { stdio: ['ignore', logFd, logFd], env });
    fs.closeSync(logFd);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    const client = new Client({ socketPath: this.socket, timeoutMs: 2000 });
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (this.proc.exitCode !== null) throw new Error(`sandpoold exited with ${this.proc.exitCode}:\n${this.log()}`);
        try {
          await client.health();
          break;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`sandpoold did not answer in time:\n${this.log()}`);
          await sleep(20);
        }
      }
    } finally {
      client.close();
    }
    const m = /cgroup v\d: (.*)/.exec(this.log());
    if (m) this.cgroupPaths = [...m[1].matchAll(/ at (\/sys\/fs\/cgroup\/\S+?)(?:;|$| )/g)].map((x) => x[1]);
    return this;
  }

  /** SIGTERM; exit 0 within 5 s; nothing left behind. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const r = await Promise.race([this.exited, sleep(5000).then(() => null)]);
    if (r === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`sandpoold did not exit within 5 s of SIGTERM:\n${this.log()}`);
    }
    if (r.code !== 0) throw new Error(`sandpoold exited with ${r.code}/${r.sig}:\n${this.log()}`);
    for (const p of this.cgroupPaths)
      if (fs.existsSync(p)) throw new Error(`cgroup ${p} left behind`);
    if (fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(this.dir))
      throw new Error(`a mount below ${this.dir} is left`);
    if (fs.existsSync(this.socket)) throw new Error('socket file left behind');
  }

  async cleanup() {
    try {
      await this.stop();
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
