// ATTACH inside transactions, and the per-handle transaction lock: scopes of
// one tenant share a connection, so another scope's statements (and its
// ATTACH) must wait until an open transaction ends instead of running inside it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { latch } from '../helpers/async-helpers.js'
import { attachedNames, makeAttachShard, seedApex, seedTenant, settle } from './attach-helpers.js'

async function setup(storageOptions = {}) {
  const { shard, log } = await makeAttachShard(storageOptions)
  await seedApex(shard)
  await seedTenant(shard, 'acme')
  return { shard, log }
}

/** A promise with its resolver outside, plus whether it settled yet. */
function gate() {
  const { promise, resolve: open } = latch()
  return { promise, open }
}

function tracked<T>(promise: Promise<T>) {
  const state = { settled: false, promise }
  promise.then(
    () => {
      state.settled = true
    },
    () => {
      state.settled = true
    },
  )
  return state
}

async function waitABit(): Promise<void> {
  for (let i = 0; i < 5; i++) await settle()
  await new Promise((resolve) => setTimeout(resolve, 20))
}

test('a transaction whose first apex reference comes after BEGIN attaches inside it and commits', async () => {
  const { shard, log } = await setup()
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await attachedNames(t.db), [])
    const result = await t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 10, title: 'New', owner_id: 3 }).execute()
      // First apex reference, inside the open transaction.
      const rows = await trx.db
        .selectFrom('documents as d')
        .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select(['d.title', 'a.email'])
        .where('d.id', '=', 10)
        .execute()
      await trx.db
        .insertInto('comments')
        .columns(['document_id', 'body'])
        .expression(trx.db.selectFrom('apex.accounts').select(['id', 'email']).where('id', '=', 3))
        .execute()
      return rows
    })
    assert.deepEqual(result, [{ title: 'New', email: 'cy@x.test' }])
    assert.deepEqual(await attachedNames(t.db), ['apex'], 'still attached after commit (no DETACH in or after it)')
    assert.deepEqual(await t.db.selectFrom('comments').select('body').where('document_id', '=', 3).execute(), [
      { body: 'cy@x.test' },
    ])
  })
  assert.equal(log.attaches('acme'), 1)
  assert.ok(!log.statements.some((s) => /detach/i.test(s)))
  await shard.close()
})

test('a transaction that attached apex and rolled back leaves the attachment usable and the tenant unchanged', async () => {
  const { shard, log } = await setup()
  await shard.withTenant('acme', async (t) => {
    await assert.rejects(
      t.transaction(async (trx) => {
        await trx.db.deleteFrom('comments').execute()
        await trx.db.selectFrom('apex.plans').selectAll().execute()
        throw new Error('boom')
      }),
      /boom/,
    )
    assert.equal((await t.db.selectFrom('comments').selectAll().execute()).length, 2)
    assert.equal((await t.db.selectFrom('apex.plans').selectAll().execute()).length, 2)
  })
  // The handle is evicted later with its attachment; closing needs no DETACH.
  await shard.close()
  assert.equal(log.attaches('acme'), 1)
  assert.equal(log.handles.find((h) => h.name === 'acme')?.closed, true)
})

test('another scope of the same tenant never runs inside an open transaction (rollback: it never sees the row)', async () => {
  const { shard } = await setup()
  const inTrx = gate()
  const finish = gate()
  let readerResult: string[] | undefined

  const writer = shard.withTenant('acme', (t) =>
    t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 20, title: 'Uncommitted', owner_id: 1 }).execute()
      inTrx.open()
      await finish.promise
      throw new Error('roll it back')
    }),
  )
  await inTrx.promise
  // The reader joins apex: its ATTACH and its select both have to wait.
  const reader = tracked(
    shard.withTenant('acme', async (t) => {
      const rows = await t.db
        .selectFrom('documents as d')
        .leftJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select(['d.title'])
        .orderBy('d.id')
        .execute()
      readerResult = rows.map((r) => r.title)
      return readerResult
    }),
  )
  await waitABit()
  assert.equal(reader.settled, false, 'the reader waits while the transaction is open')
  assert.equal(readerResult, undefined)
  finish.open()
  await assert.rejects(writer, /roll it back/)
  assert.deepEqual(await reader.promise, ['Plan', 'Spec', 'Orphan', 'Ghost'])
  await shard.close()
})

test('another scope of the same tenant waits for the commit, then sees the committed row', async () => {
  const { shard } = await setup()
  const inTrx = gate()
  const finish = gate()
  const order: string[] = []

  const writer = shard.withTenant('acme', (t) =>
    t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 20, title: 'Pending', owner_id: 1 }).execute()
      inTrx.open()
      await finish.promise
      // The first apex reference of this transaction comes while a reader waits.
      await trx.db.selectFrom('apex.accounts').select('id').execute()
      assert.deepEqual(await attachedNames(trx.db), ['apex'])
      order.push('commit')
    }),
  )
  await inTrx.promise
  const reader = tracked(
    shard.withTenant('acme', async (t) => {
      await t.attach('apex') // explicit attach also waits for the lock
      const rows = await t.db
        .selectFrom('documents as d')
        .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select(['d.title', 'a.email'])
        .where('d.id', '=', 20)
        .execute()
      order.push('read')
      return rows
    }),
  )
  const otherWriter = tracked(
    shard.withTenant('acme', async (t) => {
      await t.db.insertInto('documents').values({ id: 21, title: 'After', owner_id: 2 }).execute()
      order.push('write')
    }),
  )
  await waitABit()
  assert.equal(reader.settled, false)
  assert.equal(otherWriter.settled, false)
  finish.open()
  await writer
  assert.deepEqual(await reader.promise, [{ title: 'Pending', email: 'ann@x.test' }])
  await otherWriter.promise
  assert.equal(order[0], 'commit')
  assert.deepEqual(
    await shard.withTenant('acme', (t) =>
      t.db.selectFrom('documents').select('id').where('id', '>=', 20).orderBy('id').execute(),
    ),
    [{ id: 20 }, { id: 21 }],
  )
  await shard.close()
})

test('a tenant transaction does not write-lock apex, even on a connection that had apex attached', async () => {
  // BEGIN IMMEDIATE write-locks every database attached at that moment; the
  // connection detaches first, so apex writers and other tenants' transactions
  // proceed. A short busy timeout turns a regression into a quick failure.
  const { shard, log } = await setup({ busyTimeout: 200 })
  await seedTenant(shard, 'beta', 'b-')
  for (const id of ['acme', 'beta']) await shard.withTenant(id, (t) => t.attach('apex'))
  const inTrx = gate()
  const finish = gate()
  const writer = shard.withTenant('acme', (t) =>
    t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 30, title: 'Held', owner_id: 1 }).execute()
      // Reading apex inside the transaction re-attaches it, read-locked only.
      const [row] = await trx.db.selectFrom('apex.accounts').select('email').where('id', '=', 1).execute()
      inTrx.open()
      await finish.promise
      return row?.email
    }),
  )
  await inTrx.promise
  // While acme's transaction is open: apex takes a write, beta runs a transaction of its own.
  await shard.apex.insertInto('plans').values({ id: 'team', name: 'Team' }).execute()
  await shard.withTenant('beta', (t) =>
    t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 30, title: 'b-Also' }).execute()
      await trx.db.selectFrom('apex.plans').selectAll().execute()
    }),
  )
  finish.open()
  assert.equal(await writer, 'ann@x.test')
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await t.db.selectFrom('apex.plans').select('id').where('id', '=', 'team').execute(), [
      { id: 'team' },
    ])
  })
  // Detached outside any transaction, re-attached inside it on first use.
  assert.ok(log.statements.includes('acme: detach database "apex"'))
  assert.equal(log.attaches('acme'), 2)
  await shard.close()
})
