// A worker of parallel-workers.test.ts: a node:test suite of N tests, each in its own tenant
// made by withTestTenant, on a data folder other workers use at the same time.
// Usage: tenant-tests-child.ts <dir> <fork|create> <tests> <concurrency>
// Prints `RESULT {json}` when its tests are done: the tenant of each test and the suite's time.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import {
  disposeTestTenants,
  expectOnlyTenant,
  recordTenantAccess,
  type TestTenantsOptions,
  withTestTenant,
} from '@shardines/core/testing'
import { type ApexDB, type TenantDB, tenantMigrations } from '../ten-table-schema.js'

const [dir, strategy, count, concurrency] = process.argv.slice(2)
if (dir === undefined || (strategy !== 'fork' && strategy !== 'create')) {
  throw new Error('usage: tenant-tests-child.ts <dir> <fork|create> <tests> <concurrency>')
}
// A worker never outlives a stuck parent.
setTimeout(() => process.exit(3), 120_000).unref()

const access = recordTenantAccess()
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir, maxOpen: 64 }),
  migrations: { tenant: tenantMigrations },
  log: access.log,
})
// Every worker uses the same prefix: the ids must still never collide.
const options: TestTenantsOptions<ApexDB, TenantDB> = {
  prefix: 'par',
  strategy,
  seed: (t) => t.db.insertInto('items').values({ label: 'seed', n: 0 }).execute(),
}
/** Each test's tenant and how long the test took. */
const timings: { id: string; ms: number }[] = []
let started = 0
let wallMs = 0

describe(`worker ${process.pid} (${strategy})`, { concurrency: Number(concurrency) }, () => {
  before(() => {
    started = performance.now()
  })
  after(() => {
    wallMs = performance.now() - started
  })
  for (let i = 0; i < Number(count); i++) {
    test(`test ${i} sees only its own rows`, async () => {
      const t0 = performance.now()
      const id = await withTestTenant(
        shard,
        async (t) => {
          const seen = await access.capture(async () => {
            await t.db
              .insertInto('items')
              .values([1, 2, 3].map((n) => ({ label: t.id, n })))
              .execute()
            // Give other tests' statements a chance to interleave with this one's.
            await new Promise((resolve) => setTimeout(resolve, i % 3))
            return t.db.selectFrom('items').select(['label', 'n']).orderBy('n').execute()
          })
          assert.deepEqual(seen.result, [
            { label: 'seed', n: 0 },
            { label: t.id, n: 1 },
            { label: t.id, n: 2 },
            { label: t.id, n: 3 },
          ])
          expectOnlyTenant(seen, t.id)
          return t.id
        },
        options,
      )
      timings.push({ id, ms: performance.now() - t0 })
    })
  }
})

after(async () => {
  await disposeTestTenants(shard)
  await shard.close()
  console.log(`RESULT ${JSON.stringify({ pid: process.pid, strategy, wallMs, timings })}`)
})
