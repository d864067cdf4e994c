import assert from 'node:assert/strict'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { tempDir } from '../helpers/temp-dir.js'
import { seedTenants, shardAt, tenantFile, tenantIds, writeMigrations } from './migration-fixtures.js'

function alter(dir: string, id: string, sql: string): void {
  const db = new Database(tenantFile(dir, id))
  db.exec(sql)
  db.close()
}

test('status: versions, pending, rollout counts; tenants altered behind the library are flagged, clean ones not', async () => {
  const dir = tempDir()
  const v1 = writeMigrations(dir, 'v1', 1)
  const v3 = writeMigrations(dir, 'v3', 3)
  const ids = tenantIds(12)
  await seedTenants(dir, v1, ids)
  const shard = shardAt(dir, v3, { migrateOnOpen: 'off' })
  // Bring 8 tenants to the latest, 2 to the middle version; 2 stay at v1.
  for (const id of ids.slice(0, 8)) await shard.migrate.tenant(id)
  const v2Shard = shardAt(dir, writeMigrations(dir, 'v2', 2), { migrateOnOpen: 'off' })
  for (const id of ids.slice(8, 10)) await v2Shard.migrate.tenant(id)
  await v2Shard.close()

  // Behind the library's back: an extra column, a dropped index, a new trigger, a changed default via rebuild.
  alter(dir, ids[1]!, 'alter table documents add column secret text')
  alter(dir, ids[2]!, 'drop index documents_title_unique')
  alter(dir, ids[3]!, 'create trigger audit after insert on documents begin select 1; end')
  alter(dir, ids[10]!, 'create index documents_title on documents (title)') // a v1 tenant drifts too
  // Harmless differences are not drift: data, and the spelling of equivalent DDL is not compared as text.
  alter(dir, ids[4]!, "insert into documents (title) values ('gamma'); insert into tags (name) values ('x')")

  const started = performance.now()
  const report = await shard.migrate.status()
  const elapsed = performance.now() - started
  assert.equal(report.latest, '003_notes')
  assert.equal(report.tenants.length, 12)
  const byId = new Map(report.tenants.map((t) => [t.id, t]))
  assert.deepEqual(
    report.tenants.filter((t) => t.drift).map((t) => t.id),
    [ids[1], ids[2], ids[3], ids[10]],
  )
  assert.equal(report.drifted, 4)
  assert.deepEqual(byId.get(ids[0]!), { id: ids[0], version: '003_notes', pending: [], drift: false })
  assert.deepEqual(byId.get(ids[8]!), {
    id: ids[8],
    version: '002_unique_titles',
    pending: ['003_notes'],
    drift: false,
  })
  assert.deepEqual(byId.get(ids[11]!), {
    id: ids[11],
    version: '001_documents',
    pending: ['002_unique_titles', '003_notes'],
    drift: false,
  })
  assert.deepEqual(report.rollout, [
    { version: '001_documents', tenants: 2 },
    { version: '002_unique_titles', tenants: 2 },
    { version: '003_notes', tenants: 8 },
  ])
  assert.ok(elapsed < 5000, `status of 12 tenants took ${elapsed} ms`)

  // Drift is against the template at the tenant's own version: a migrated drifted tenant stays flagged.
  const all = await shard.migrate.all()
  assert.equal(all.failed, 0)
  const after = await shard.migrate.status()
  assert.deepEqual(after.rollout, [{ version: '003_notes', tenants: 12 }])
  assert.deepEqual(
    after.tenants.filter((t) => t.drift).map((t) => t.id),
    [ids[1], ids[2], ids[3], ids[10]],
  )
  await shard.close()
})

test('status: a tenant whose migration history differs from the code is drift; a newer release is not', async () => {
  const dir = tempDir()
  const v2 = writeMigrations(dir, 'v2', 2)
  const ids = tenantIds(3)
  await seedTenants(dir, v2, ids)
  alter(
    dir,
    ids[0]!,
    "update kysely_migration set name = '002_renamed' where name = '002_unique_titles'; pragma user_version = 7",
  )
  const v3Shard = shardAt(dir, writeMigrations(dir, 'v3', 3))
  await v3Shard.migrate.tenant(ids[1]!)
  await v3Shard.close()
  const shard = shardAt(dir, v2, { migrateOnOpen: 'off' })
  const report = await shard.migrate.status()
  const [renamed, ahead, current] = report.tenants
  assert.equal(renamed!.drift, true, 'history diverges from the code')
  assert.equal(renamed!.version, '002_renamed')
  assert.deepEqual(ahead, { id: ids[1], version: '003_notes', pending: [], drift: false })
  assert.deepEqual(current, { id: ids[2], version: '002_unique_titles', pending: [], drift: false })
  assert.deepEqual(report.rollout, [
    { version: '002_unique_titles', tenants: 1 },
    { version: '002_renamed', tenants: 1 },
    { version: '003_notes', tenants: 1 },
  ])
  await shard.close()
})

test('status: an unreadable tenant is reported with an error, not thrown', async () => {
  const dir = tempDir()
  const v1 = writeMigrations(dir, 'v1', 1)
  await seedTenants(dir, v1, tenantIds(2))
  const { writeFileSync } = await import('node:fs')
  writeFileSync(
    tenantFile(dir, 't00001'),
    'this is not a database, just some text that is long enough to look like one',
  )
  const shard = shardAt(dir, v1, { migrateOnOpen: 'off' })
  const report = await shard.migrate.status()
  assert.equal(report.tenants[0]!.error, undefined)
  assert.match(report.tenants[1]!.error ?? '', /not a database/)
  assert.deepEqual(report.rollout, [{ version: '001_documents', tenants: 1 }])
  await shard.close()
})
