// SPDX-License-Identifier: MIT
// Runs `node --test` on the client's tests, or exits 77 (meson: skipped)
// with the reason when this machine cannot run the real daemon: a skipped
// suite must not look like a passed one.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingPrerequisite } from './daemon.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const why = missingPrerequisite();
if (why) {
  console.log(`SKIP: ${why}`);
  process.exit(77);
}
const files = fs.readdirSync(HERE).filter((f) => f.endsWith('.test.js')).sort().map((f) => path.join(HERE, f));
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
