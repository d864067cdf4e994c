#!/usr/bin/env node
// Runs the benchmarks: every bench/*.bench.ts, one after another, each in its own
// node process (TypeScript through tsx, --expose-gc so rounds start from a clean heap).
// Usage: node scripts/run-bench.mjs [substring filter…]   (pnpm bench [filter…] builds first)
// Environment knobs are documented in docs/benchmarks.md (BENCH_ROUNDS, BENCH_TENANTS, …).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const filters = process.argv.slice(2).filter((a) => a !== '--')
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error(`no benchmark matched ${filters.join(', ')}`)
  process.exit(1)
}
let failed = 0
for (const file of files) {
  console.log(`\n=== bench/${file} ===`)
  const started = Date.now()
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join('bench', file)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })
  console.log(
    `=== bench/${file}: ${result.status === 0 ? 'done' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s ===`,
  )
  if (result.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
