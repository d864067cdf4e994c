#!/usr/bin/env node
// Lints each published package as npm would ship it: publint (package.json, exports, files)
// and Are the Types Wrong (`attw --profile esm-only`: the types resolve for ESM consumers
// under node16 and bundler resolution). Exit 1 on any problem.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const bin = (name) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url))

const PACKAGES = [
  'packages/core',
  'packages/adapter-sqlite',
  'packages/adapter-libsql',
  'packages/codegen',
  'packages/cli',
]
let failed = false
for (const dir of PACKAGES) {
  for (const [name, args] of [
    ['publint', ['--pack', 'npm', '--strict']],
    ['attw', ['--pack', '.', '--profile', 'esm-only', '--format', 'ascii']],
  ]) {
    const result = spawnSync(bin(name), args, { cwd: dir, encoding: 'utf8' })
    const output = `${result.stdout}${result.stderr}`.trim()
    if (result.status !== 0) {
      failed = true
      console.error(`${dir}: ${name} failed\n${output}\n`)
    } else {
      console.log(`${dir}: ${name} ok`)
    }
  }
}
process.exit(failed ? 1 : 0)
