import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { runCodegenCommand } from '@shardines/codegen'
import { createShardines, type MigrationSource } from '@shardines/core'
import { tempDir } from '../helpers/temp-dir.js'
import { addColorMigration, apexMigrations, tenantMigrations } from './codegen-migrations.js'

function appShard(tenant: MigrationSource) {
  return createShardines({
    storage: sqliteStorage({ dir: path.join(tempDir(), 'data') }),
    migrations: { apex: apexMigrations, tenant },
  })
}

test('shardines codegen writes db/ under cwd; --verify passes, then fails naming the stale file after a migration', async () => {
  const cwd = tempDir()
  const lines: string[] = []
  const log = (line: string) => lines.push(line)
  const shard = appShard(tenantMigrations)

  assert.equal(await runCodegenCommand({ shard, cwd, verify: true, log }), 1, 'missing files are stale')
  assert.deepEqual(lines.splice(0), [
    `${path.join('db', 'apex.ts')} is stale: run \`shardines codegen\` to regenerate it.`,
    `${path.join('db', 'tenant.ts')} is stale: run \`shardines codegen\` to regenerate it.`,
  ])

  assert.equal(await runCodegenCommand({ shard, cwd, verify: false, log }), 0)
  assert.deepEqual(lines.splice(0), [
    `wrote ${path.join('db', 'apex.ts')} (1 table)`,
    `wrote ${path.join('db', 'tenant.ts')} (1 table)`,
  ])
  assert.match(fs.readFileSync(path.join(cwd, 'db', 'tenant.ts'), 'utf8'), /export interface TenantDB/)
  assert.equal(await runCodegenCommand({ shard, cwd, verify: true, log }), 0)
  assert.match(lines.splice(0)[0] ?? '', /up to date/)
  await shard.close()

  const next = appShard({ ...tenantMigrations, ...addColorMigration })
  assert.equal(await runCodegenCommand({ shard: next, cwd, verify: true, log }), 1)
  assert.deepEqual(lines.splice(0), [
    `${path.join('db', 'tenant.ts')} is stale: run \`shardines codegen\` to regenerate it.`,
  ])
  assert.equal(await runCodegenCommand({ shard: next, cwd, verify: false, log }), 0)
  assert.deepEqual(lines.splice(0), [
    `unchanged ${path.join('db', 'apex.ts')} (1 table)`,
    `wrote ${path.join('db', 'tenant.ts')} (1 table)`,
  ])
  assert.equal(await runCodegenCommand({ shard: next, cwd, verify: true, log }), 0)
  // The app's own databases were never created: codegen works on scratch copies.
  assert.equal(fs.existsSync(path.join(cwd, 'data')), false)
  await next.close()
})

test('--out picks the folder; a failure is exit code 2 with the reason, never a throw', async () => {
  const cwd = tempDir()
  const lines: string[] = []
  const shard = appShard(tenantMigrations)
  const log = (line: string) => lines.push(line)
  assert.equal(await runCodegenCommand({ shard, cwd, out: 'src/generated', verify: false, log }), 0)
  assert.ok(fs.existsSync(path.join(cwd, 'src', 'generated', 'apex.ts')))
  assert.equal(
    await runCodegenCommand({ shard, cwd, verify: false, log, options: { tenantTypeName: 'not a name' } }),
    2,
  )
  assert.match(lines.at(-1) ?? '', /^codegen failed: options\.tenantTypeName must be a TypeScript identifier/)
  await shard.close()

  const broken = appShard({
    '001_bad': {
      async up() {
        throw new Error('boom')
      },
    },
  })
  assert.equal(await runCodegenCommand({ shard: broken, cwd, verify: true, log }), 2)
  assert.match(
    lines.at(-1) ?? '',
    /^codegen failed: the tenant migrations fail on a fresh scratch database: Migration "001_bad" failed .*boom/,
  )
  await broken.close()
})
