import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tempDir } from '../helpers/temp-dir.js'
import { inspect, seedTenants, shardAt, tenantIds, writeMigrations } from './migration-fixtures.js'

test('migrate.all on workers while the app writes to the same tenants (and migrates them lazily): no failure, no double apply', async (t) => {
  const dir = tempDir()
  const ids = tenantIds(150)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const v2 = writeMigrations(dir, 'v2', 2)
  const shard = shardAt(dir, v2, { storageOptions: { maxOpen: 16 } })
  const writes = new Map<string, number>()
  let stop = false
  let served = 0
  // The "application": three request loops writing to random tenants, in scopes, until the migration ends.
  const app = async (seed: number): Promise<void> => {
    let i = seed
    while (!stop) {
      const id = ids[(i * 7919) % ids.length]!
      i++
      await shard.withTenant(id, async (t) => {
        await t.transaction(async (trx) => {
          await (trx.db as any)
            .insertInto('documents')
            .values({ title: `req-${seed}-${i}` })
            .execute()
        })
      })
      writes.set(id, (writes.get(id) ?? 0) + 1)
      served++
      if (i % 10 === 0) await new Promise((r) => setImmediate(r))
    }
  }
  const loops = [1, 2, 3].map(app)
  const report = await shard.migrate.all({ concurrency: 2 })
  stop = true
  await Promise.all(loops)
  t.diagnostic(
    `${served} requests served during the run; workers migrated ${report.migrated}, found ${report.upToDate} done`,
  )
  assert.equal(report.runner.kind, 'workers')
  assert.equal(report.failed, 0, JSON.stringify(report.tenants.filter((t) => t.error).map((t) => t.error?.message)))
  assert.equal(
    report.migrated + report.upToDate,
    150,
    'lazy opens migrated some tenants first; the workers found them done',
  )
  assert.ok(served > 0)
  for (const id of ids) {
    const tenant = inspect(dir, id)
    assert.equal(tenant.integrity, 'ok')
    assert.deepEqual(tenant.log, ['001_documents', '002_unique_titles'], id)
    assert.equal(tenant.documents.length, 2 + (writes.get(id) ?? 0), id)
  }
  await shard.close()
})
