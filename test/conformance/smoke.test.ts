import assert from 'node:assert/strict'
import { test } from 'node:test'
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
