import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidOptionsError, RecordNotFoundError } from '@shardines/core'
import { makeModelShard, seed } from './model-fixtures.js'

test('find, findOrThrow, findBy: rows or undefined, RecordNotFoundError naming model, key and tenant', async () => {
  const { shard } = await makeModelShard()
  const { plan, ada } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await t.models.Document.find(plan), { id: plan, title: 'plan', owner_id: ada.id, status: 'open' })
    assert.equal(await t.models.Document.find(12345), undefined)
    assert.equal((await t.models.Document.findOrThrow(plan)).title, 'plan')
    await assert.rejects(t.models.Document.findOrThrow(12345), (e: unknown) => {
      assert.ok(e instanceof RecordNotFoundError)
      assert.equal(e.code, 'RECORD_NOT_FOUND')
      assert.equal(e.model, 'Document')
      assert.equal(e.key, 12345)
      assert.equal(e.tenantId, 'acme')
      assert.match(e.message, /Document 12345 was not found in tenant "acme"/)
      return true
    })
    assert.equal((await t.models.Document.findBy({ title: 'orphan' }))?.status, 'done')
    assert.equal((await t.models.Document.findBy({ title: 'loose', owner_id: null }))?.title, 'loose')
    assert.equal((await t.models.Document.findBy({ title: ['nope', 'plan'] }))?.id, plan)
    assert.equal(await t.models.Document.findBy({ title: 'plan', status: 'done' }), undefined)
    await assert.rejects(t.models.Document.find(undefined as never), InvalidOptionsError)
  })
  // Apex models work outside any scope.
  assert.equal((await shard.models.Account.find(ada.id))?.email, 'ada@x.test')
  assert.equal((await shard.models.Plan.findOrThrow('pro')).name, 'Pro')
  await assert.rejects(shard.models.Plan.findOrThrow('gold'), (e: unknown) => {
    assert.ok(e instanceof RecordNotFoundError)
    assert.equal(e.tenantId, undefined)
    return true
  })
  await shard.close()
})

test('create returns the stored row (defaults filled), createMany returns every row, chunked atomically', async () => {
  const { shard } = await makeModelShard()
  await shard.tenants.create('acme')
  await shard.withTenant('acme', async (t) => {
    const doc = await t.models.Document.create({ title: 'new' })
    assert.deepEqual(doc, { id: 1, title: 'new', owner_id: null, status: 'open' })
    assert.deepEqual(await t.models.Document.createMany([]), [])
    const many = await t.models.Document.createMany(
      Array.from({ length: 1201 }, (_, i) => ({ title: `d${i}`, status: i % 2 ? 'done' : 'open' })),
    )
    assert.equal(many.length, 1201)
    assert.deepEqual(many[1200], { id: 1202, title: 'd1200', owner_id: null, status: 'open' })
    assert.equal(await t.models.Document.count(), 1202)
    // One bad row in the last chunk: nothing of the call is kept.
    const rows = Array.from({ length: 1100 }, (_, i) => ({ title: `x${i}` })) as { title: string | null }[]
    rows[1050] = { title: null }
    await assert.rejects(t.models.Document.createMany(rows as { title: string }[]), /NOT NULL/)
    assert.equal(await t.models.Document.count(), 1202)
    await assert.rejects(t.models.Document.create(null as never), InvalidOptionsError)
  })
  await shard.close()
})

test('update returns the row or undefined, delete returns whether a row went, count is a number', async () => {
  const { shard } = await makeModelShard()
  const { plan, loose } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await t.models.Document.update(plan, { status: 'done', title: 'plan v2' }), {
      id: plan,
      title: 'plan v2',
      owner_id: 1,
      status: 'done',
    })
    assert.equal(await t.models.Document.update(999, { status: 'done' }), undefined)
    assert.equal((await t.models.Document.update(plan, {}))?.title, 'plan v2')
    const before = await t.models.Document.count()
    assert.equal(typeof before, 'number')
    assert.equal(await t.models.Document.delete(loose), true)
    assert.equal(await t.models.Document.delete(loose), false)
    assert.equal(await t.models.Document.count(), before - 1)
  })
  assert.equal((await shard.models.Plan.update('free', { name: 'Gratis' }))?.name, 'Gratis')
  assert.equal(await shard.models.Plan.count(), 2)
  await shard.close()
})

test('the where chain: operators, object form, orderBy, limit, offset, first, count', async () => {
  const { shard } = await makeModelShard()
  await shard.tenants.create('acme')
  await shard.withTenant('acme', async (t) => {
    await t.models.Document.createMany(
      Array.from({ length: 10 }, (_, i) => ({
        title: `d${i}`,
        owner_id: i < 3 ? null : i,
        status: i % 2 ? 'done' : 'open',
      })),
    )
    const D = t.models.Document
    const titles = (rows: { title: string }[]) => rows.map((r) => r.title)
    assert.deepEqual(titles(await D.where('status', '=', 'done').orderBy('id', 'desc').all()), [
      'd9',
      'd7',
      'd5',
      'd3',
      'd1',
    ])
    assert.deepEqual(titles(await D.where('id', '>', 7).all()), ['d7', 'd8', 'd9'])
    assert.deepEqual(titles(await D.where('id', 'in', [1, 3]).all()), ['d0', 'd2'])
    assert.deepEqual(titles(await D.where('id', 'not in', [2, 3, 4, 5, 6, 7, 8]).all()), ['d0', 'd8', 'd9'])
    assert.deepEqual(titles(await D.where('owner_id', 'is', null).all()), ['d0', 'd1', 'd2'])
    assert.deepEqual(titles(await D.where('title', 'like', 'd_').where('owner_id', 'is not', null).limit(2).all()), [
      'd3',
      'd4',
    ])
    assert.deepEqual(titles(await D.where({ status: 'open', owner_id: null }).all()), ['d0', 'd2'])
    assert.deepEqual(titles(await D.where({ id: [4, 5], status: 'open' }).all()), ['d4'])
    assert.deepEqual(titles(await D.orderBy('status').orderBy('id', 'desc').limit(3).all()), ['d9', 'd7', 'd5'])
    assert.deepEqual(titles(await D.orderBy('id').offset(8).all()), ['d8', 'd9'])
    assert.deepEqual(titles(await D.orderBy('id').limit(2).offset(4).all()), ['d4', 'd5'])
    assert.equal((await D.where('status', '=', 'done').orderBy('id', 'desc').first())?.title, 'd9')
    assert.equal(await D.where('status', '=', 'nope').first(), undefined)
    assert.equal(await D.where('status', '=', 'open').count(), 5)
    assert.equal(await D.where('status', '=', 'open').limit(2).count(), 2)
    assert.equal(await D.orderBy('id').offset(7).count(), 3)
    assert.equal(await D.where('status', '=', 'open').count(), 5)
    // Queries are immutable values: a base query can be reused.
    const open = D.where('status', '=', 'open')
    assert.equal((await open.limit(1).all()).length, 1)
    assert.equal((await open.all()).length, 5)
    assert.throws(
      () => D.where('status', '==' as never, 'open'),
      (e: unknown) => {
        assert.ok(e instanceof InvalidOptionsError)
        assert.match(e.message, /Document\.where\('status', "==", …\): unknown operator/)
        return true
      },
    )
    assert.throws(() => D.where('id', 'in', 3 as never), /values must be an array/)
    assert.throws(() => D.limit(-1), /non-negative integer/)
    assert.throws(() => D.orderBy('id', 'up' as never), /'asc' or 'desc'/)
  })
  await shard.close()
})

test('query() is a Kysely select builder on the model table in the model database', async () => {
  const { shard } = await makeModelShard()
  const { ada } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    const rows = await t.models.Document.query().select(['title']).where('owner_id', '=', ada.id).execute()
    assert.deepEqual(rows, [{ title: 'plan' }])
    // An apex model's builder reads apex, even inside a tenant scope.
    const emails = await t.models.Account.query().select('email').orderBy('id').execute()
    assert.deepEqual(
      emails.map((r) => r.email),
      ['ada@x.test', 'bob@x.test'],
    )
  })
  await shard.close()
})

test('t.transaction gives trx.models bound to the transaction; a throw rolls everything back', async () => {
  const { shard, log } = await makeModelShard()
  await shard.tenants.create('acme')
  await shard.withTenant('acme', async (t) => {
    await assert.rejects(
      t.transaction(async (trx) => {
        const doc = await trx.models.Document.create({ title: 'draft' })
        await trx.models.Comment.create({ document_id: doc.id, body: 'hi' })
        assert.equal((await trx.models.Document.find(doc.id))?.title, 'draft')
        assert.equal(await trx.models.Comment.count(), 1)
        throw new Error('abort')
      }),
      /abort/,
    )
    assert.equal(await t.models.Document.count(), 0)
    assert.equal(await t.models.Comment.count(), 0)
    log.reset()
    const id = await t.transaction(async (trx) => {
      const doc = await trx.models.Document.create({ title: 'kept' })
      await trx.models.Document.update(doc.id, { status: 'done' })
      return doc.id
    })
    assert.deepEqual(log.statements('acme')[0], 'begin immediate')
    assert.equal(log.statements('acme').at(-1), 'commit')
    assert.equal((await t.models.Document.find(id))?.status, 'done')
  })
  await shard.close()
})
