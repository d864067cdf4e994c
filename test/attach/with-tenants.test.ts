// shard.withTenants(ids, fn): several tenants attached read-only under their
// ids to one private connection, for joined queries across tenants.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import {
  AttachLimitError,
  InvalidOptionsError,
  InvalidTenantIdError,
  NoTenantError,
  ReadOnlyAttachmentError,
  TenantNotFoundError,
  TenantScopeClosedError,
  UnknownSchemaError,
} from '@shardines/core'
import { type Kysely, sql } from 'kysely'
import { makeAttachShard, seedApex, seedTenant } from './attach-helpers.js'

async function setup() {
  const { shard, log, dir } = await makeAttachShard()
  await seedApex(shard)
  await seedTenant(shard, 'acme', 'acme:')
  await seedTenant(shard, 'beta', 'beta:')
  return { shard, log, dir }
}

test('joins two tenants and apex in one query', async () => {
  const { shard, log } = await setup()
  const rows = await shard.withTenants(['acme', 'beta'], async (x) => {
    assert.deepEqual(x.ids, ['acme', 'beta'])
    const query = x.db
      .selectFrom('acme.documents as a')
      .innerJoin('beta.documents as b', 'b.id', 'a.id')
      .leftJoin('apex.accounts as o', 'o.id', 'a.owner_id')
      .select(['a.title as mine', 'b.title as theirs', 'o.email'])
      .where('a.status', '=', 'open')
      .orderBy('a.id')
    assert.equal(
      query.compile().sql,
      'select "a"."title" as "mine", "b"."title" as "theirs", "o"."email" from "acme"."documents" as "a" inner join "beta"."documents" as "b" on "b"."id" = "a"."id" left join "apex"."accounts" as "o" on "o"."id" = "a"."owner_id" where "a"."status" = ? order by "a"."id"',
    )
    return query.execute()
  })
  assert.deepEqual(rows, [
    { mine: 'acme:Plan', theirs: 'beta:Plan', email: 'ann@x.test' },
    { mine: 'acme:Orphan', theirs: 'beta:Orphan', email: null },
    { mine: 'acme:Ghost', theirs: 'beta:Ghost', email: null },
  ])
  assert.equal(log.attaches('scratch'), 3)
  await shard.close()
})

test('a tenant id that needs quoting (a-b) works, in builders and in raw sql after x.attach', async () => {
  const { shard } = await setup()
  await seedTenant(shard, 'a-b', 'ab:')
  await shard.withTenants(['a-b', 'acme'], async (x) => {
    const query = x.db
      .selectFrom('a-b.documents as d')
      .innerJoin('acme.comments as c', 'c.document_id', 'd.id')
      .select(['d.title', 'c.body'])
      .orderBy('d.id')
    assert.equal(
      query.compile().sql,
      'select "d"."title", "c"."body" from "a-b"."documents" as "d" inner join "acme"."comments" as "c" on "c"."document_id" = "d"."id" order by "d"."id"',
    )
    assert.deepEqual(await query.execute(), [
      { title: 'ab:Plan', body: 'first' },
      { title: 'ab:Spec', body: 'second' },
    ])
  })
  await shard.withTenants(['a-b'], async (x) => {
    const raw = sql<{ n: number }>`select count(*) as n from "a-b".documents`
    await assert.rejects(raw.execute(x.db), /no such table: a-b\.documents/)
    await x.attach('a-b')
    assert.deepEqual((await raw.execute(x.db)).rows, [{ n: 4 }])
    await assert.rejects(x.attach('acme' as 'a-b'), InvalidOptionsError)
  })
  await shard.close()
})

test('more tenants than SQLite can attach: AttachLimitError pointing to mapTenants', async () => {
  const { shard } = await setup()
  const ids = Array.from({ length: 12 }, (_, i) => `t${String(i).padStart(2, '0')}`)
  for (const id of ids) await shard.tenants.create(id)
  const check = (e: unknown, requested: number) => {
    assert.ok(e instanceof AttachLimitError)
    assert.equal(e.code, 'ATTACH_LIMIT')
    assert.equal(e.limit, 10)
    assert.equal(e.requested, requested)
    assert.match(e.message, /shard\.mapTenants/)
    return true
  }
  let ran = false
  await assert.rejects(
    shard.withTenants(ids, () => {
      ran = true
    }),
    (e) => check(e, 12),
  )
  assert.equal(ran, false)

  // Ten tenants fit; apex on top would be an eleventh attachment.
  const ten = ids.slice(0, 10)
  const total = await shard.withTenants(ten, async (x) => {
    const db = x.db as unknown as Kysely<any>
    let union = db.selectFrom(`${ten[0]}.documents`).select(sql<string>`${ten[0]}`.as('id'))
    for (const id of ten.slice(1))
      union = union.unionAll(db.selectFrom(`${id}.documents`).select(sql<string>`${id}`.as('id')))
    const rows = await union.execute()
    await assert.rejects(x.db.selectFrom('apex.accounts').selectAll().execute(), (e) => check(e, 11))
    await assert.rejects(x.attach('apex'), (e) => check(e, 11))
    return rows.length
  })
  assert.equal(total, 0) // fresh tenants, no documents; the point is that all ten attached and ran
  // Duplicate ids count once.
  assert.equal(await shard.withTenants(['acme', 'acme', 'acme'], (x) => x.ids.length), 1)
  await shard.close()
})

test('hostile ids are refused with InvalidTenantIdError before anything is opened', async () => {
  const { shard, dir } = await setup()
  const before = fs.readdirSync(path.join(dir, 'tenants')).sort()
  const hostile: unknown[] = [
    '',
    'Acme',
    'a b',
    '../acme',
    'acme/../../etc',
    'acme.documents',
    'a"b',
    "a'b",
    'a;drop table documents',
    '-leading-dash',
    '_leading',
    'apex',
    'main',
    'temp',
    'x'.repeat(65),
    'acme\u0000',
    'ac\u202eme',
    42,
    null,
  ]
  for (const id of hostile) {
    let ran = false
    await assert.rejects(
      shard.withTenants(['acme', id as string], () => {
        ran = true
      }),
      (e) => e instanceof InvalidTenantIdError && e.code === 'INVALID_TENANT_ID',
      String(id),
    )
    assert.equal(ran, false)
  }
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tenants')).sort(), before)
  await assert.rejects(
    shard.withTenants(['acme', 'nobody'], () => 1),
    TenantNotFoundError,
  )
  // A schema name nobody gave: refused by the compiler, whatever its spelling.
  await shard.withTenants(['acme'], async (x) => {
    const db = x.db as unknown as Kysely<any>
    for (const table of ['beta.documents', 'evil";--.documents', 'main2.documents']) {
      assert.throws(
        () => db.selectFrom(table).selectAll().compile(),
        (e) => e instanceof UnknownSchemaError && e.code === 'UNKNOWN_SCHEMA' && /withTenants/.test(e.message),
        table,
      )
    }
  })
  await shard.close()
})

test('withTenants is read-only: writes and DDL on <id>.<table> are refused and the tenants stay unchanged', async () => {
  const { shard } = await setup()
  const snapshot = () =>
    shard.withTenant('acme', async (t) => ({
      docs: await t.db.selectFrom('documents').selectAll().orderBy('id').execute(),
      schema: (await sql`select name, sql from sqlite_master order by name`.execute(t.db)).rows,
    }))
  const before = await snapshot()
  await shard.withTenants(['acme', 'beta'], async (x) => {
    const db = x.db as unknown as Kysely<any>
    const attempts = [
      () => db.insertInto('acme.documents').values({ title: 'x' }),
      () =>
        db.insertInto('acme.documents').columns(['title']).expression(db.selectFrom('beta.documents').select('title')),
      () => db.updateTable('acme.documents').set({ title: 'x' }),
      () => db.deleteFrom('acme.documents'),
      () => db.deleteFrom('acme.documents as d').where('d.id', '=', 1),
      () => db.schema.dropTable('acme.documents'),
      () => db.schema.alterTable('acme.documents').addColumn('x', 'text'),
      () => db.schema.createTable('acme.x').addColumn('x', 'text'),
      () => db.schema.createIndex('i').on('acme.documents').column('title'),
      () => db.schema.withSchema('acme').dropIndex('i'),
    ]
    for (const attempt of attempts) {
      await assert.rejects(attempt().execute(), (e) => {
        assert.ok(e instanceof ReadOnlyAttachmentError)
        assert.equal(e.schema, 'acme')
        assert.match(e.message, /shard\.withTenant\("acme"/)
        return true
      })
    }
  })
  assert.deepEqual(await snapshot(), before)
  await shard.close()
})

test('withTenants binds no current tenant; inside withTenant, shard.db() stays that tenant; objects die with the scope', async () => {
  const { shard } = await setup()
  let leaked: Kysely<any> | undefined
  await shard.withTenants(['acme', 'beta'], async (x) => {
    assert.equal(shard.currentTenant(), undefined)
    assert.throws(() => shard.db(), NoTenantError)
    leaked = x.db as unknown as Kysely<any>
  })
  await shard.withTenant('beta', async (t) => {
    const titles = await shard.withTenants(['acme'], async (x) => {
      assert.equal(shard.currentTenant(), 'beta')
      assert.equal(shard.db(), t.db)
      const mine = await shard.db().selectFrom('documents').select('title').where('id', '=', 1).execute()
      const theirs = await x.db.selectFrom('acme.documents').select('title').where('id', '=', 1).execute()
      return [mine[0]?.title, theirs[0]?.title]
    })
    assert.deepEqual(titles, ['beta:Plan', 'acme:Plan'])
    assert.equal(shard.currentTenant(), 'beta')
  })
  await assert.rejects(leaked!.selectFrom('acme.documents').selectAll().execute(), TenantScopeClosedError)
  await shard.close()
})

test('withTenants refuses transactions and never holds a read lock across awaits (streams are read at once)', async () => {
  const { shard } = await setup()
  await shard.withTenants(['acme', 'beta'], async (x) => {
    await assert.rejects(
      x.db.transaction().execute(async (trx) => trx.selectFrom('acme.documents').selectAll().execute()),
      (error: Error & { code?: string }) =>
        error.code === 'READ_ONLY_ATTACHMENT' && /no transactions/.test(error.message),
    )
    const titles: string[] = []
    for await (const row of x.db.selectFrom('acme.documents').select('title').orderBy('id').stream()) {
      titles.push(row.title)
      // The tenant's own writer is not blocked while the stream is being consumed.
      await shard.withTenant('acme', (t) =>
        t.db
          .insertInto('documents')
          .values({ title: `written during stream ${titles.length}`, owner_id: null })
          .execute(),
      )
    }
    // The rows as they were when the query ran: the writes made meanwhile are not mixed in.
    assert.deepEqual(titles, ['acme:Plan', 'acme:Spec', 'acme:Orphan', 'acme:Ghost'])
  })
  await shard.close()
})
