import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { MigrationError } from '@shardines/core'
import Database from 'better-sqlite3'
import { tempDir } from '../helpers/temp-dir.js'
import { inspect, seedTenants, shardAt, tenantFile, tenantIds, writeMigrations } from './migration-fixtures.js'

test('migrate.all: 1,000 tenants on worker threads; one failing tenant keeps its rows and old schema', async () => {
  const dir = tempDir()
  const v1 = writeMigrations(dir, 'v1', 1)
  const v2 = writeMigrations(dir, 'v2', 2)
  const ids = tenantIds(1000)
  await seedTenants(dir, v1, ids)
  // Duplicate titles make 002's unique index fail for this tenant only.
  const bad = ids[500]!
  const raw = new Database(tenantFile(dir, bad))
  raw.prepare('insert into documents (title) values (?)').run('alpha')
  raw.close()
  const before = inspect(dir, bad)

  const shard = shardAt(dir, v2)
  const progress: number[] = []
  const report = await shard.migrate.all({ onProgress: ({ done }) => progress.push(done) })
  assert.deepEqual(report.runner, { kind: 'workers', workers: 2 })
  assert.equal(report.tenants.length, 1000)
  assert.equal(report.migrated, 999)
  assert.equal(report.failed, 1)
  assert.equal(report.upToDate, 0)
  assert.deepEqual(
    report.tenants.map((t) => t.id),
    ids,
  )
  assert.equal(progress.length, 1000)
  assert.equal(progress.at(-1), 1000)

  const failed = report.tenants.find((t) => t.status === 'failed')!
  assert.equal(failed.id, bad)
  assert.equal(failed.from, '001_documents')
  assert.equal(failed.to, '001_documents')
  assert.ok(failed.error instanceof MigrationError, 'the error is rebuilt as a MigrationError on the main thread')
  assert.equal(failed.error.code, 'MIGRATION_FAILED')
  assert.equal(failed.error.tenantId, bad)
  assert.equal(failed.error.migration, '002_unique_titles')
  assert.match(String((failed.error.cause as Error).message), /UNIQUE constraint failed/)
  assert.equal((failed.error.cause as { code?: string }).code, 'SQLITE_CONSTRAINT_UNIQUE')
  assert.match(failed.error.message, new RegExp(`tenant "${bad}"`))

  const after = inspect(dir, bad)
  assert.deepEqual(after, before, 'the failed tenant is byte-for-byte at its old schema, rows and version')
  assert.equal(after.integrity, 'ok')
  assert.deepEqual(after.documents, ['alpha', 'beta', 'alpha'])
  assert.deepEqual(after.documentColumns, ['id', 'title'])

  for (const id of [ids[0]!, ids[499]!, ids[501]!, ids[999]!]) {
    const t = inspect(dir, id)
    assert.deepEqual(t.applied, ['001_documents', '002_unique_titles'])
    assert.deepEqual(t.log, ['001_documents', '002_unique_titles'])
    assert.deepEqual(t.documentColumns, ['id', 'title', 'slug'])
  }

  // Re-running is idempotent: nothing is applied twice, the failing tenant fails again, alone.
  const again = await shard.migrate.all({ concurrency: 1 })
  assert.deepEqual(again.runner, { kind: 'workers', workers: 1 })
  assert.equal(again.upToDate, 999)
  assert.equal(again.failed, 1)
  assert.deepEqual(inspect(dir, ids[0]!).log, ['001_documents', '002_unique_titles'])
  await shard.close()
})

test('migrate.all with migrations given as objects runs on the main thread and says why', async () => {
  const dir = tempDir()
  const v2 = writeMigrations(dir, 'v2', 2)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), tenantIds(5))
  const objects: Record<string, any> = {}
  for (const file of fs.readdirSync(v2).sort()) objects[file.replace(/\.mjs$/, '')] = await import(path.join(v2, file))
  const shard = shardAt(dir, objects as any)
  const report = await shard.migrate.all()
  assert.equal(report.runner.kind, 'main-thread')
  assert.match((report.runner as { reason: string }).reason, /functions cannot cross to worker threads/)
  assert.equal(report.migrated, 5)
  await shard.close()

  // migrations.tenantModule lets workers import the same objects.
  const module = path.join(dir, 'tenant-migrations.mjs')
  fs.writeFileSync(
    module,
    fs
      .readdirSync(writeMigrations(dir, 'v3', 3))
      .sort()
      .map((f, i) => `import * as m${i} from ${JSON.stringify(path.join(dir, 'v3', f))}`)
      .concat([`export default { '001_documents': m0, '002_unique_titles': m1, '003_notes': m2 }`])
      .join('\n'),
  )
  const three: Record<string, any> = (await import(module)).default
  const withModule = shardAt(dir, three as any, {
    migrations: { tenant: three as any, tenantModule: module },
  })
  const next = await withModule.migrate.all({ concurrency: 2 })
  assert.deepEqual(next.runner, { kind: 'workers', workers: 2 })
  assert.equal(next.migrated, 5)
  assert.deepEqual(inspect(dir, 't00003').log, ['001_documents', '002_unique_titles', '003_notes'])
  await withModule.close()
})

test('migrate.all: a worker that loads different migrations refuses, and every tenant is reported failed', async () => {
  const dir = tempDir()
  const v1 = writeMigrations(dir, 'v1', 1)
  await seedTenants(dir, v1, tenantIds(3))
  const module = path.join(dir, 'other.mjs')
  fs.writeFileSync(module, `export const tenant = { '009_other': { async up() {} } }`)
  const objects = { '001_documents': { async up() {} }, '002_x': { async up() {} } }
  const shard = shardAt(dir, objects as any, { migrations: { tenant: objects, tenantModule: module } })
  const report = await shard.migrate.all()
  assert.equal(report.failed, 3)
  for (const t of report.tenants) {
    assert.ok(t.error instanceof MigrationError)
    assert.match(t.error.message, /009_other/)
  }
  assert.deepEqual(inspect(dir, 't00000').applied, ['001_documents'])
  await shard.close()
})

test('migrate.all stops handing out tenants once its signal aborts', async () => {
  const dir = tempDir()
  const ids = tenantIds(200)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const shard = shardAt(dir, writeMigrations(dir, 'v2', 2))
  const controller = new AbortController()
  const report = await shard.migrate.all({
    concurrency: 1,
    signal: controller.signal,
    onProgress: ({ done }) => {
      if (done === 20) controller.abort()
    },
  })
  assert.ok(report.tenants.length >= 20 && report.tenants.length < 200, `ran ${report.tenants.length}`)
  assert.equal(report.failed, 0)
  const rest = await shard.migrate.all()
  assert.equal(rest.migrated, 200 - report.tenants.length)
  await shard.close()
})

test('migrate.all: a throwing onProgress does not stop or half-report the run', async () => {
  const dir = tempDir()
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), tenantIds(20))
  const shard = shardAt(dir, writeMigrations(dir, 'v2', 2))
  for (const runner of ['auto', 'main-thread'] as const) {
    const report = await shard.migrate.all({
      runner,
      onProgress: () => {
        throw new Error('progress display broke')
      },
    })
    assert.equal(report.tenants.length, 20)
    assert.equal(report.failed, 0)
  }
  await shard.close()
})

test('migrate.all: a worker that dies mid-tenant fails only the tenants it held; a new worker takes the rest', async () => {
  const dir = tempDir()
  const ids = tenantIds(30)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const raw = new Database(tenantFile(dir, ids[10]!))
  raw.prepare('insert into documents (title) values (?)').run('crash')
  raw.close()
  const v2 = writeMigrations(dir, 'v2', 1)
  fs.writeFileSync(
    path.join(v2, '002_may_crash.mjs'),
    `export async function up(db) {
  await db.schema.alterTable('documents').addColumn('slug', 'text').execute()
  const rows = await db.selectFrom('documents').select('title').execute()
  if (rows.some((r) => r.title === 'crash')) process.exit(3) // ends this worker thread mid-transaction
}`,
  )
  const shard = shardAt(dir, v2)
  const report = await shard.migrate.all({ concurrency: 1 })
  const failed = report.tenants.filter((t) => t.status === 'failed')
  assert.equal(report.tenants.length, 30)
  assert.ok(failed.some((t) => t.id === ids[10]))
  assert.ok(failed.length <= 2, `only the tenants the dead worker held: ${failed.map((t) => t.id)}`)
  for (const t of failed) {
    assert.ok(t.error instanceof MigrationError)
    assert.match(t.error.message, /the migration worker exited with code 3/)
  }
  assert.equal(report.migrated, 30 - failed.length)
  const crashed = inspect(dir, ids[10]!)
  assert.equal(crashed.integrity, 'ok')
  assert.deepEqual(crashed.applied, ['001_documents'])
  assert.deepEqual(crashed.documentColumns, ['id', 'title'])
  await shard.close()
})
