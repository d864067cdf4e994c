import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { NoTenantError, TenantScopeClosedError } from '@shardines/core'
import Database from 'better-sqlite3'
import { makeModelShard, seed } from './model-fixtures.js'

test('a tenanted model outside a scope throws NoTenantError; inside, shard.models resolves to the current scope', async () => {
  const { shard } = await makeModelShard()
  await seed(shard, 'acme')
  await shard.tenants.create('beta')
  // Outside a scope every call of a tenanted model rejects (query(), which builds synchronously, throws).
  await assert.rejects(shard.models.Document.find(1), (e: unknown) => {
    assert.ok(e instanceof NoTenantError)
    assert.equal(e.code, 'NO_TENANT')
    assert.match(e.message, /the tenanted model Document/)
    return true
  })
  await assert.rejects(() => shard.models.Comment.count(), NoTenantError)
  await assert.rejects(() => shard.models.Document.where('id', '=', 1).include('owner').all(), NoTenantError)
  await assert.rejects(() => shard.models.Document.create({ title: 'x' }), NoTenantError)
  await assert.rejects(() => shard.models.Document.findOrThrow(1), NoTenantError)
  assert.throws(() => shard.models.Document.query(), NoTenantError)
  await shard.withTenant('acme', async (t) => {
    assert.equal(t.models, t.models, 'one models object per scope')
    assert.equal(shard.models.Document, shard.models.Document)
    assert.equal(await shard.models.Document.count(), 3)
    assert.equal((await shard.models.Document.findOrThrow(1)).title, 'plan')
    await assert.rejects(shard.models.Document.findOrThrow(99), /Document 99 was not found in tenant "acme"/)
    // Nested scope for another tenant: the inner one wins, leaving it restores the outer.
    await shard.withTenant('beta', async () => {
      assert.equal(await shard.models.Document.count(), 0)
    })
    assert.equal(await shard.models.Document.count(), 3)
    // Apex models are the same objects everywhere.
    assert.equal(t.models.Account, shard.models.Account)
  })
  await shard.close()
})

test('an apex model used and written inside a tenant scope reads and writes the apex file', async () => {
  const { shard, dir, log } = await makeModelShard()
  await shard.tenants.create('acme')
  log.reset()
  const id = await shard.withTenant('acme', async (t) => {
    const a = await t.models.Account.create({ email: 'in-scope@x.test' })
    await shard.models.Account.update(a.id, { plan: 'pro' })
    await t
      .transaction(async (trx) => {
        await trx.models.Account.create({ email: 'in-trx@x.test' })
        await trx.models.Document.create({ title: 'rolled back' })
        throw new Error('roll back the tenant only')
      })
      .catch(() => undefined)
    assert.equal(await t.models.Account.count(), 2)
    assert.equal(await t.models.Document.count(), 0)
    return a.id
  })
  const writes = log.events.filter((e) => /^(insert|update)/.test(e.query.sql))
  assert.deepEqual(
    writes.map((e) => [e.tenantId, e.query.sql.split(' ')[0]]),
    [
      ['apex', 'insert'],
      ['apex', 'update'],
      ['apex', 'insert'],
      ['acme', 'insert'],
    ],
  )
  await shard.close()
  const apexFile = new Database(path.join(dir, 'apex.sqlite3'), { readonly: true })
  assert.deepEqual(apexFile.prepare('select id, email, plan from accounts order by id').all(), [
    { id, email: 'in-scope@x.test', plan: 'pro' },
    { id: id + 1, email: 'in-trx@x.test', plan: 'free' },
  ])
  apexFile.close()
  const tenantFile = new Database(path.join(dir, 'tenants', 'acme.sqlite3'), { readonly: true })
  const found = tenantFile.prepare("select count(*) as n from sqlite_master where name = 'accounts'").get() as {
    n: number
  }
  assert.equal(found.n, 0)
  tenantFile.close()
  assert.ok(fs.existsSync(path.join(dir, 'apex.sqlite3')))
})

test("under concurrency, one tenant's models never see another's rows", async () => {
  const { shard } = await makeModelShard()
  const tenants = ['t1', 't2', 't3', 't4']
  for (const id of tenants) await shard.tenants.create(id)
  const tick = () => new Promise((resolve) => setImmediate(resolve))
  await Promise.all(
    tenants.flatMap((id) =>
      [0, 1, 2].map((worker) =>
        shard.withTenant(id, async (t) => {
          for (let i = 0; i < 15; i++) {
            await t.models.Document.create({ title: `${id}:${worker}:${i}` })
            await tick()
            const mine = await shard.models.Document.where('title', 'like', `${id}:%`).count()
            const all = await t.models.Document.count()
            assert.equal(mine, all, `tenant ${id} saw rows of another tenant`)
            const last = await shard.models.Document.orderBy('id', 'desc').include('comments').first()
            assert.ok(last?.title.startsWith(`${id}:`))
          }
        }),
      ),
    ),
  )
  const counts = await shard.mapTenants((t) => t.models.Document.where('title', 'like', `${t.id}:%`).count())
  assert.deepEqual(
    counts.map((r) => [r.id, r.error ?? r.value]),
    tenants.map((id) => [id, 45]),
  )
  await shard.close()
})

test('a model kept after its scope ended is refused with TenantScopeClosedError', async () => {
  const { shard } = await makeModelShard()
  await shard.tenants.create('acme')
  const kept = await shard.withTenant('acme', (t) => t.models.Document)
  await assert.rejects(kept.find(1), TenantScopeClosedError)
  await assert.rejects(kept.all(), TenantScopeClosedError)
  await assert.rejects(kept.create({ title: 'late' }), TenantScopeClosedError)
  await shard.close()
})
