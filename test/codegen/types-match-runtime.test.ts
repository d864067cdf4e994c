// The generated types describe what the databases really return: each golden
// set under test/typings is used on a real instance migrated with the same
// migrations, and the values read back have the types the files declare.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { CamelCasePlugin, ParseJSONResultsPlugin } from 'kysely'
import { tempDir } from '../helpers/temp-dir.js'
import type { ApexDB } from '../typings/generated/apex.js'
import type { TenantDB } from '../typings/generated/tenant.js'
import type { ApexDB as CamelApexDB } from '../typings/generated-options/apex.js'
import type { TenantDB as CamelTenantDB } from '../typings/generated-options/tenant.js'
import { apexMigrations, tenantMigrations } from '../typings/schema-migrations.js'

test('default types: rowid ids are numbers, defaults filled, dates are ISO strings, blobs are Buffers', async () => {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir: path.join(tempDir(), 'data') }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  await shard.apex.insertInto('plans').values({ id: 'free', name: 'Free', price_cents: 0 }).execute()
  const account = await shard.apex
    .insertInto('accounts')
    .values({ email: 'a@example.com' })
    .returningAll()
    .executeTakeFirstOrThrow()
  assert.equal(typeof account.id, 'number')
  assert.equal(account.plan_id, 'free')
  assert.match(account.created_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/)

  await shard.tenants.create('acme')
  const [doc, comment] = await shard.withTenant('acme', async (t) => {
    const doc = await t.db
      .insertInto('documents')
      .values({ title: 'Plan', owner_id: account.id })
      .returningAll()
      .executeTakeFirstOrThrow()
    const comment = await t.db
      .insertInto('comments')
      .values({ document_id: doc.id, body: 'ok', attachment: Buffer.from([1, 2]) })
      .returningAll()
      .executeTakeFirstOrThrow()
    return [doc, comment] as const
  })
  assert.deepEqual(
    { ...doc, created_at: typeof doc.created_at },
    { id: 1, title: 'Plan', owner_id: account.id, status: 'open', archived: 0, meta: null, created_at: 'string' },
  )
  assert.equal(typeof comment.id, 'number')
  assert.ok(Buffer.isBuffer(comment.attachment))
  await shard.close()
})

test("camelCase and json: 'parsed' types hold with CamelCasePlugin and ParseJSONResultsPlugin", async () => {
  const shard = createShardines<CamelApexDB, CamelTenantDB>({
    storage: sqliteStorage({ dir: path.join(tempDir(), 'data') }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    plugins: [new CamelCasePlugin(), new ParseJSONResultsPlugin()],
  })
  await shard.migrate.apex()
  const account = await shard.apex
    .insertInto('accounts')
    .values({ email: 'b@example.com' })
    .returning(['id', 'planId'])
    .executeTakeFirstOrThrow()
  assert.deepEqual(account, { id: 1, planId: 'free' })
  await shard.tenants.create('acme')
  const rows = await shard.withTenant('acme', async (t) => {
    await t.db
      .insertInto('documents')
      .values({ title: 'Plan', ownerId: account.id, meta: JSON.stringify({ tags: ['q3'] }) })
      .execute()
    return t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.ownerId')
      .select(['d.meta', 'd.status', 'a.planId'])
      .execute()
  })
  assert.deepEqual(rows, [{ meta: { tags: ['q3'] }, status: 'open', planId: 'free' }])
  await shard.close()
})
