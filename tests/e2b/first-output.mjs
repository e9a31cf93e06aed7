// SPDX-License-Identifier: MIT
// Sandbox.create() to the first byte of a command's output, N times, through
// the unmodified e2b SDK (E2B_API_URL/E2B_SANDBOX_URL/E2B_API_KEY set) and
// through sandpool's own TypeScript client (SANDPOOL_SOCKET), the same argv
// both ways (the SDK always runs /bin/bash -l -c CMD). Prints JSON. Run by
// bench/e2b-first-output.
import { Sandbox as E2BSandbox } from 'e2b'
import { Sandbox as SpSandbox } from '../../clients/typescript/sandpool.js'

const N = Number(process.argv[2] ?? 100)
const CMD = 'echo hi'

function pct (xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]
}

async function e2bOnce () {
  const t0 = performance.now()
  let first = 0
  const sbx = await E2BSandbox.create()
  const created = performance.now()
  await sbx.commands.run(CMD, { onStdout: () => { if (!first) first = performance.now() } })
  await sbx.kill()
  return [first - t0, created - t0]
}

async function sandpoolOnce () {
  const t0 = performance.now()
  let first = 0
  const sbx = await SpSandbox.create({ socketPath: process.env.SANDPOOL_SOCKET })
  const created = performance.now()
  await sbx.run(['/bin/bash', '-l', '-c', CMD], { onStdout: () => { if (!first) first = performance.now() } })
  await sbx.kill()
  return [first - t0, created - t0]
}

const out = {}
for (const [name, once] of [['e2b_sdk', e2bOnce], ['sandpool_ts', sandpoolOnce], ['e2b_sdk_again', e2bOnce]]) {
  for (let i = 0; i < 5; i++) await once() // warm up: JIT, keep-alive, the pool
  const first = []; const create = []
  for (let i = 0; i < N; i++) {
    const [f, c] = await once()
    first.push(f); create.push(c)
    await new Promise(resolve => setTimeout(resolve, 20)) // let the pool refill
  }
  out[name] = {
    n: N,
    first_output_p50_ms: +pct(first, 50).toFixed(2),
    first_output_p90_ms: +pct(first, 90).toFixed(2),
    create_p50_ms: +pct(create, 50).toFixed(2)
  }
}
out.ratio_p50 = +(out.e2b_sdk.first_output_p50_ms / out.sandpool_ts.first_output_p50_ms).toFixed(2)
console.log(JSON.stringify(out, null, 2))
