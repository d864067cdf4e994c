// Attachments belong to a connection: attached once, reused by every later
// query and scope on that connection, gone when the pool evicts it, and
// re-made on the reopened connection. ATTACH statements are counted at the
// better-sqlite3 level (see attach-helpers.ts), not through the `log` option.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sql } from 'kysely'
import { latch } from '../helpers/async-helpers.js'
import { attachedNames, makeAttachShard, seedApex, seedTenant } from './attach-helpers.js'

type Shard = Awaited<ReturnType<typeof makeAttachShard>>['shard']

function ownerEmails(shard: Shard, id: string) {
  return shard.withTenant(id, (t) =>
    t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .orderBy('d.id')
      .execute(),
  )
}

test('one ATTACH per connection: reused across queries and scopes, and no DETACH while it lives', async () => {
  const { shard, log } = await makeAttachShard()
  await seedApex(shard)
  await seedTenant(shard, 'acme')
  assert.equal(log.attaches(), 0, 'tenant-only queries attach nothing')
  await shard.withTenant('acme', async (t) => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await t.db.selectFrom('apex.plans').selectAll().execute()).length, 2)
      assert.equal(
        (
          await t.db
            .selectFrom('documents')
            .innerJoin('apex.accounts', 'apex.accounts.id', 'documents.owner_id')
            .selectAll()
            .execute()
        ).length,
        2,
      )
    }
    assert.deepEqual(await attachedNames(t.db), ['apex'])
  })
  for (let i = 0; i < 3; i++) assert.equal((await ownerEmails(shard, 'acme')).length, 2)
  assert.equal(log.attaches('acme'), 1)
  assert.deepEqual(log.statements, ['acme: attach database ? as "apex"'])
  await shard.close()
})

test('eviction closes the connection and its attachment; the reopened connection attaches again', async () => {
  const { shard, log } = await makeAttachShard({ maxOpen: 1 })
  await seedApex(shard)
  await seedTenant(shard, 'acme')
  await seedTenant(shard, 'beta', 'b-')
  assert.deepEqual(await ownerEmails(shard, 'acme'), [
    { title: 'Plan', email: 'ann@x.test' },
    { title: 'Spec', email: 'bob@x.test' },
  ])
  const first = log.handles.filter((h) => h.name === 'acme').at(-1)
  assert.ok(first)
  assert.deepEqual([...first.attached], ['apex'])
  const evictions = shard.stats().evictions

  await ownerEmails(shard, 'beta') // maxOpen 1: opening beta evicts acme
  assert.equal(shard.stats().evictions, evictions + 1)
  assert.equal(first.closed, true)
  assert.equal(first.attached.size, 0)

  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await attachedNames(t.db), [], 'a reopened connection starts with nothing attached')
    assert.deepEqual(
      await t.db
        .selectFrom('documents as d')
        .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select('a.email')
        .orderBy('d.id')
        .execute(),
      [{ email: 'ann@x.test' }, { email: 'bob@x.test' }],
    )
    assert.deepEqual(await attachedNames(t.db), ['apex'])
  })
  assert.equal(log.attaches('acme'), 2)
  assert.equal(log.attaches('beta'), 1)
  assert.ok(!log.statements.some((s) => /detach/i.test(s)), 'nothing is detached: closing the connection drops it')
  await shard.close()
})

test('maxOpen smaller than the tenant count: joins stay correct under churn, sequential and concurrent', async () => {
  const { shard, log } = await makeAttachShard({ maxOpen: 2 })
  await seedApex(shard)
  const ids = ['t1', 't2', 't3', 't4', 't5']
  for (const id of ids) await seedTenant(shard, id, `${id}:`)
  const expected = (id: string) => [
    { title: `${id}:Plan`, email: 'ann@x.test' },
    { title: `${id}:Spec`, email: 'bob@x.test' },
  ]

  const before = shard.stats()
  for (let round = 0; round < 3; round++) {
    for (const id of ids) assert.deepEqual(await ownerEmails(shard, id), expected(id))
  }
  const after = shard.stats()
  // Round-robin over 5 tenants with 2 slots: every scope is a miss, and every
  // reopened connection attaches apex exactly once.
  assert.equal(after.misses - before.misses, 15)
  assert.ok(after.evictions - before.evictions >= 13)
  assert.equal(log.attaches(), 15)
  assert.ok(shard.stats().open <= 2)

  // Concurrent scopes pin more handles than maxOpen; each still reads its own file.
  const results = await Promise.all(
    ids.flatMap((id) => [0, 1].map(async () => ({ id, rows: await ownerEmails(shard, id) }))),
  )
  for (const { id, rows } of results) assert.deepEqual(rows, expected(id))
  assert.ok(shard.stats().open <= 2, 'back under maxOpen once the scopes end')
  await shard.close()
})

test("t.attach('apex') lasts for its scope, whatever another scope's write transaction detaches", async () => {
  const { shard } = await makeAttachShard()
  await seedApex(shard)
  await seedTenant(shard, 'acme')
  const { promise: ready, resolve: attached } = latch()
  const { promise: wrote, resolve: written } = latch()
  const holder = shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    attached()
    await wrote
    // Another scope's BEGIN IMMEDIATE detached apex meanwhile; raw SQL naming apex still works here.
    const { rows } = await sql<{ n: number }>`select count(*) as n from apex.accounts`.execute(t.db)
    return rows[0]?.n
  })
  await ready
  await shard.withTenant('acme', async (t) => {
    await t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ title: 'written in a transaction', owner_id: 1 }).execute()
    })
    // The write transaction detached apex before it began (BEGIN IMMEDIATE would lock it); the
    // holder's pin attaches it again before the next statement on the handle (this one included).
    assert.deepEqual(await attachedNames(t.db), ['apex'])
  })
  written()
  assert.equal(await holder, 3)
  await shard.close()
})
