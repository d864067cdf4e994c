import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, InvalidOptionsError, tenanted } from '@shardines/core'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

function create(models: unknown) {
  return createShardines({ storage: sqliteStorage({ dir: tempDir() }), models })
}

function refused(models: unknown, message: RegExp): void {
  assert.throws(
    () => create(models),
    (e: unknown) => {
      assert.ok(e instanceof InvalidOptionsError, String(e))
      assert.equal(e.code, 'INVALID_OPTIONS')
      assert.match(e.message, message)
      return true
    },
  )
}

test('createShardines refuses a relation to an unknown model, naming the model and the relation', () => {
  refused(
    { Account: apex('accounts'), Document: tenanted('documents', { belongsTo: { owner: ['Acount', 'owner_id'] } }) },
    /Model Document, belongsTo relation "owner" points at unknown model "Acount"; the models are Account, Document/,
  )
})

test('createShardines refuses an apex model that has tenanted rows, and says why', () => {
  refused(
    {
      Account: apex('accounts', { hasMany: { documents: ['Document', 'owner_id'] } }),
      Document: tenanted('documents'),
    },
    /Model Account, hasMany relation "documents" points at the tenanted model Document: an apex row is shared by every tenant.*no single query.*Declare the relation on the tenanted side/,
  )
  refused(
    { Account: apex('accounts', { hasOne: { doc: ['Document', 'owner_id'] } }), Document: tenanted('documents') },
    /Model Account, hasOne relation "doc" points at the tenanted model Document/,
  )
  // Nor may an apex row point into a tenant: which tenant's file would hold the row?
  refused(
    { Account: apex('accounts', { belongsTo: { doc: ['Document', 'doc_id'] } }), Document: tenanted('documents') },
    /Model Account, belongsTo relation "doc" points at the tenanted model Document/,
  )
})

test('createShardines refuses two models on one table, and malformed declarations', () => {
  refused(
    { A: tenanted('documents'), B: tenanted('documents') },
    /Models A and B both use the tenanted table "documents"/,
  )
  refused(
    { A: { table: 'documents' } },
    /models\.A is not a model declaration: declare it with apex\('table'\) or tenanted/,
  )
  refused(
    { A: tenanted('documents', { belongsTo: { owner: ['A'] as never } }) },
    /Model A, belongsTo relation "owner": expected \['Model', 'foreign_key'\]/,
  )
  refused(
    { A: tenanted('documents', { belongsTo: { x: ['A', 'a_id'] }, hasMany: { x: ['A', 'a_id'] } }) },
    /Model A, hasMany relation "x": the name is already used by its belongsTo/,
  )
  refused({ 'A.B': tenanted('documents') }, /may not contain "\."/)
  refused([tenanted('documents')], /options\.models must be an object/)
  assert.throws(() => apex(''), /apex\(table, options\?\) needs a table name/)
  assert.throws(() => tenanted('documents', { belongsto: {} } as never), /unknown option "belongsto"/)
  assert.throws(() => tenanted('documents', { primaryKey: '' }), /primaryKey must be a column name/)
})

test('apex and tenanted models may share a table name (different databases); declarations are frozen', async () => {
  const shard = create({ A: apex('documents'), B: tenanted('documents') })
  await shard.close()
  const decl = tenanted('documents', { belongsTo: { owner: ['A', 'owner_id'] } })
  assert.ok(Object.isFrozen(decl))
  assert.ok(Object.isFrozen(decl.belongsTo))
  assert.ok(Object.isFrozen(decl.belongsTo.owner))
  assert.equal(decl.primaryKey, 'id')
})

test('the DESIGN.md call shape: explicit <ApexDB, TenantDB> with an inline models object works', async () => {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir: tempDir() }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    models: {
      Account: apex('accounts'),
      Plan: apex('plans'),
      Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
      Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
    },
  })
  await shard.migrate.apex()
  const account = await shard.models.Account.create({ email: 'a@x.test' })
  await shard.tenants.create('acme')
  await shard.withTenant('acme', async (t) => {
    const doc = await t.models.Document.create({ title: 'hello', owner_id: account.id })
    assert.deepEqual(await t.models.Document.find(doc.id), {
      id: doc.id,
      title: 'hello',
      owner_id: account.id,
      status: 'open',
    })
    const rows = await t.models.Document.where('status', '=', 'open').include('owner').all()
    assert.equal(rows[0].owner.email, 'a@x.test')
    await t.transaction(async (trx) => {
      await trx.models.Comment.create({ document_id: doc.id, body: 'hi' })
    })
  })
  const n = await shard.withTenant('acme', (t) => t.models.Document.count())
  assert.equal(n, 1)
  assert.equal(await shard.withTenant('acme', () => shard.models.Comment.count()), 1)
  await shard.close()
})

test('without models, t.models and shard.models are empty objects', async () => {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir: tempDir() }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.tenants.create('acme')
  assert.deepEqual(Object.keys(shard.models), [])
  await shard.withTenant('acme', (t) => assert.deepEqual(Object.keys(t.models), []))
  await shard.close()
})
