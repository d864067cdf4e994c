import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidOptionsError } from '@shardines/core'
import { makeShard } from '../helpers/fixtures.js'

test('create a tenant, write and read in its scope, join apex', async () => {
  const { shard } = await makeShard()
  const [account] = await shard.apex.insertInto('accounts').values({ email: 'a@x.test' }).returningAll().execute()
  await shard.tenants.create('acme')
  const rows = await shard.withTenant('acme', async (t) => {
    assert.equal(t.id, 'acme')
    assert.equal(shard.currentTenant(), 'acme')
    await t.db.insertInto('documents').values({ title: 'hello', owner_id: account!.id }).execute()
    return t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .execute()
  })
  assert.deepEqual(rows, [{ title: 'hello', email: 'a@x.test' }])
  assert.equal(shard.currentTenant(), undefined)
  await shard.close()
})

test('destroying a tenant from inside its own scope is refused at once instead of waiting for itself', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  await shard.tenants.create('globex')
  await shard.withTenant('acme', async () => {
    await assert.rejects(shard.tenants.destroy('acme'), /inside a scope of tenant "acme"/)
    // Nested inside another tenant's scope it is still refused.
    await shard.withTenant('globex', () => assert.rejects(shard.tenants.destroy('acme'), InvalidOptionsError))
    // Another tenant can be destroyed from here.
    assert.equal(await shard.tenants.destroy('globex'), true)
  })
  assert.equal(await shard.tenants.exists('acme'), true)
  await shard.close()
})

test('migrate.tenant inside a scope of the same tenant is refused at once', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  await shard.withTenant('acme', (t) =>
    t.transaction(() => assert.rejects(shard.migrate.tenant('acme'), /inside a scope of tenant "acme"/)),
  )
  assert.equal((await shard.migrate.tenant('acme')).status, 'up-to-date')
  await shard.close()
})
