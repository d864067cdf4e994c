// The packages are ESM; a CommonJS app on Node >= 20.19 can still require() them (Node's
// require(esm)): each package's exports has a "default" condition next to "import", and no
// module in them uses top-level await.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const testRoot = fileURLToPath(new URL('..', import.meta.url))

test('a CommonJS module can require() @shardines/core (and /otel), @shardines/adapter-sqlite, @shardines/codegen and @shardines/cli', () => {
  // Inside test/, whose node_modules link the workspace packages, as an app's would.
  const file = path.join(testRoot, `.require-check-${process.pid}.cjs`)
  fs.writeFileSync(
    file,
    `const core = require('@shardines/core')
const adapter = require('@shardines/adapter-sqlite')
const codegen = require('@shardines/codegen')
const cli = require('@shardines/cli')
const otel = require('@shardines/core/otel')
console.log(JSON.stringify([typeof core.createShardines, typeof core.defineConfig, typeof adapter.sqliteStorage, Object.keys(codegen).length > 0, typeof cli.runCli, typeof otel.instrumentOpenTelemetry]))
`,
  )
  try {
    const result = spawnSync(process.execPath, [file], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    })
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').at(-1) ?? 'null'), [
      'function',
      'function',
      'function',
      true,
      'function',
      'function',
    ])
  } finally {
    fs.rmSync(file, { force: true })
  }
})
