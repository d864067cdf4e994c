import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, tenanted } from '@shardines/core'
import { CamelCasePlugin } from 'kysely'
import { tempDir } from '../helpers/temp-dir.js'
import { apexMigrations, tenantMigrations } from './model-fixtures.js'

// With CamelCasePlugin the models speak camelCase, as the generated types would.
test('models work with a result plugin (CamelCasePlugin): rows, where, includes', async () => {
  const statements: { tenantId: string; sql: string }[] = []
  // Untyped DBs (any): this test is about runtime behaviour with the plugin.
  const shard = createShardines<any, any>({
    storage: sqliteStorage({ dir: tempDir() }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    plugins: [new CamelCasePlugin()],
    log: (e) => {
      if (e.level === 'query') statements.push({ tenantId: e.tenantId, sql: e.query.sql })
    },
    models: {
      Account: apex('accounts'),
      Document: tenanted('documents', {
        belongsTo: { owner: ['Account', 'ownerId'] },
        hasMany: { comments: ['Comment', 'documentId'] },
      }),
      Comment: tenanted('comments', { belongsTo: { author: ['Account', 'authorId'] } }),
    },
  })
  await shard.migrate.apex()
  const ada = await shard.models.Account.create({ email: 'ada@x.test' })
  await shard.tenants.create('acme')
  await shard.withTenant('acme', async (t) => {
    const doc = await t.models.Document.create({ title: 'plan', ownerId: ada.id })
    assert.deepEqual(doc, { id: 1, title: 'plan', ownerId: ada.id, status: 'open' })
    await t.models.Comment.create({ documentId: doc.id, body: 'hi', authorId: ada.id })
    assert.deepEqual(await t.models.Document.find(doc.id), doc)
    assert.equal((await t.models.Document.findBy({ ownerId: ada.id }))?.title, 'plan')
    statements.length = 0
    const rows = await t.models.Document.where('ownerId', '=', ada.id).include('owner', 'comments.author').all()
    assert.deepEqual(rows, [
      {
        ...doc,
        owner: { id: ada.id, email: 'ada@x.test', plan: 'free' },
        comments: [
          {
            id: 1,
            documentId: 1,
            body: 'hi',
            authorId: ada.id,
            author: { id: ada.id, email: 'ada@x.test', plan: 'free' },
          },
        ],
      },
    ])
    // Batched through ATTACH (no joined aliases, which the plugin would rename): all on the tenant's handle.
    assert.ok(statements.every((s) => s.tenantId === 'acme'))
    assert.ok(statements.some((s) => s.sql.includes('from "apex"."accounts" as "__m" where "__m"."id" in')))
    assert.equal(await t.models.Document.where('ownerId', 'is not', null).count(), 1)
  })
  await shard.close()
})
