// Apex is read-only from a tenant scope: every write or DDL aimed at it is
// refused by the compiler, before SQLite sees it. Writes go through shard.apex
// and show up in the next tenant query on an already-attached connection.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ReadOnlyAttachmentError, ShardinesError } from '@shardines/core'
import { type Compilable, type Kysely, sql } from 'kysely'
import { latch } from '../helpers/async-helpers.js'
import { attachedNames, seedTenant, setupWithApexIndexAndView as setup } from './attach-helpers.js'

/** Everything that could change in apex: rows, and the schema (tables, indexes, views and their SQL). */
async function apexSnapshot(apex: Kysely<any>) {
  const schema = await sql`select type, name, tbl_name, sql from sqlite_master order by type, name`.execute(apex)
  const accounts = await apex.selectFrom('accounts').selectAll().orderBy('id').execute()
  const plans = await apex.selectFrom('plans').selectAll().orderBy('id').execute()
  return { schema: schema.rows, accounts, plans }
}

function assertRefused(error: unknown, table: string): true {
  assert.ok(error instanceof ReadOnlyAttachmentError, `expected ReadOnlyAttachmentError, got ${String(error)}`)
  assert.ok(error instanceof ShardinesError)
  assert.equal(error.code, 'READ_ONLY_ATTACHMENT')
  assert.equal(error.schema, 'apex')
  assert.equal(error.table, table)
  assert.equal(error.tenantId, 'acme')
  assert.match(error.message, new RegExp(`"apex"\\."${table}"`))
  assert.match(error.message, /tenant "acme"/)
  assert.match(error.message, /shard\.apex/)
  return true
}

type Attempt = readonly [
  name: string,
  table: string,
  build: (db: Kysely<any>) => Compilable & { execute(): Promise<unknown> },
]

const attempts: readonly Attempt[] = [
  ['insert', 'accounts', (db) => db.insertInto('apex.accounts').values({ email: 'evil@x.test' })],
  ['replace', 'accounts', (db) => db.replaceInto('apex.accounts').values({ id: 1, email: 'evil@x.test' })],
  [
    'upsert (on conflict do update)',
    'accounts',
    (db) =>
      db
        .insertInto('apex.accounts')
        .values({ id: 1, email: 'evil@x.test' })
        .onConflict((oc) => oc.column('id').doUpdateSet({ email: 'evil@x.test' })),
  ],
  [
    'upsert (on conflict do nothing)',
    'accounts',
    (db) =>
      db
        .insertInto('apex.accounts')
        .values({ id: 9, email: 'evil@x.test' })
        .onConflict((oc) => oc.doNothing()),
  ],
  [
    'insert … select from a tenant table',
    'accounts',
    (db) => db.insertInto('apex.accounts').columns(['email']).expression(db.selectFrom('documents').select('title')),
  ],
  [
    'insert … select behind a CTE',
    'plans',
    (db) =>
      db
        .with('src', (q) => q.selectFrom('documents').select(['title as id', 'title as name']))
        .insertInto('apex.plans')
        .columns(['id', 'name'])
        .expression((eb) => eb.selectFrom('src').selectAll()),
  ],
  ['update', 'accounts', (db) => db.updateTable('apex.accounts').set({ email: 'evil@x.test' })],
  ['update with alias', 'accounts', (db) => db.updateTable('apex.accounts as a').set({ email: 'evil@x.test' })],
  [
    'update … from a tenant table',
    'accounts',
    (db) =>
      db
        .updateTable('apex.accounts')
        .from('documents')
        .set({ email: 'evil@x.test' })
        .whereRef('documents.owner_id', '=', 'apex.accounts.id'),
  ],
  [
    'update of a list of tables',
    'accounts',
    (db) => db.updateTable(['documents', 'apex.accounts'] as any).set({ title: 'evil' } as any),
  ],
  ['delete', 'accounts', (db) => db.deleteFrom('apex.accounts')],
  ['delete with alias and where', 'accounts', (db) => db.deleteFrom('apex.accounts as a').where('a.id', '=', 1)],
  ['delete of a list of tables', 'accounts', (db) => db.deleteFrom(['documents', 'apex.accounts'])],
  [
    'merge',
    'accounts',
    (db) => db.mergeInto('apex.accounts as a').using('documents as d', 'a.id', 'd.owner_id').whenMatched().thenDelete(),
  ],
  ['withSchema insert', 'accounts', (db) => db.withSchema('apex').insertInto('accounts').values({ email: 'e' })],
  ['withSchema update', 'accounts', (db) => db.withSchema('apex').updateTable('accounts').set({ email: 'e' })],
  ['withSchema delete', 'accounts', (db) => db.withSchema('apex').deleteFrom('accounts')],
  ['create table', 'evil', (db) => db.schema.createTable('apex.evil').addColumn('x', 'integer')],
  [
    'withSchema create table',
    'evil',
    (db) => db.schema.withSchema('apex').createTable('evil').addColumn('x', 'integer'),
  ],
  ['alter table add column', 'accounts', (db) => db.schema.alterTable('apex.accounts').addColumn('x', 'integer')],
  ['alter table drop column', 'accounts', (db) => db.schema.alterTable('apex.accounts').dropColumn('plan')],
  ['alter table rename', 'accounts', (db) => db.schema.alterTable('apex.accounts').renameTo('gone')],
  ['alter table rename column', 'accounts', (db) => db.schema.alterTable('apex.accounts').renameColumn('email', 'e')],
  ['alter table rename into apex', 'stolen', (db) => db.schema.alterTable('documents').renameTo('apex.stolen')],
  ['drop table', 'accounts', (db) => db.schema.dropTable('apex.accounts')],
  ['withSchema drop table', 'plans', (db) => db.schema.withSchema('apex').dropTable('plans').ifExists()],
  [
    'create index on an apex table',
    'accounts',
    (db) => db.schema.createIndex('evil_i').on('apex.accounts').column('plan'),
  ],
  [
    'withSchema create index',
    'accounts',
    (db) => db.schema.withSchema('apex').createIndex('evil_i').on('accounts').column('plan'),
  ],
  ['drop index in apex', 'accounts_email', (db) => db.schema.withSchema('apex').dropIndex('accounts_email')],
  ['drop view in apex', 'paid', (db) => db.schema.withSchema('apex').dropView('paid')],
  [
    'create view in apex',
    'v',
    (db) => db.schema.withSchema('apex').createView('v').as(db.selectFrom('apex.accounts').selectAll()),
  ],
]

test('every write and DDL aimed at apex is refused at compile time, naming the table and shard.apex', async () => {
  const { shard, log } = await setup()
  const before = await apexSnapshot(shard.apex)
  await shard.withTenant('acme', async (t) => {
    const db = t.db as unknown as Kysely<any>
    for (const [name, table, build] of attempts) {
      assert.throws(
        () => build(db).compile(),
        (e) => assertRefused(e, table),
        name,
      )
      await assert.rejects(build(db).execute(), (e) => assertRefused(e, table), name)
    }
    // Nothing reached SQLite: not even the ATTACH a read of apex would need.
    assert.deepEqual(await attachedNames(t.db), [])
  })
  assert.equal(log.attaches('acme'), 0)

  // Once apex is attached the refusals are the same (they never depend on attachment state).
  await shard.withTenant('acme', async (t) => {
    await t.db.selectFrom('apex.accounts').select('id').execute()
    assert.deepEqual(await attachedNames(t.db), ['apex'])
    const db = t.db as unknown as Kysely<any>
    for (const [name, table, build] of attempts) {
      await assert.rejects(build(db).execute(), (e) => assertRefused(e, table), name)
    }
    // Inside a transaction too; the refusal rolls back the tenant's own write.
    await assert.rejects(
      t.transaction(async (trx) => {
        await trx.db.insertInto('documents').values({ title: 'in trx' }).execute()
        await (trx.db as unknown as Kysely<any>).deleteFrom('apex.accounts').execute()
      }),
      (e) => assertRefused(e, 'accounts'),
    )
    assert.equal(
      await t.db.selectFrom('documents').select('id').where('title', '=', 'in trx').executeTakeFirst(),
      undefined,
    )
  })
  assert.deepEqual(await apexSnapshot(shard.apex), before)
  await shard.close()
})

test('reads of apex inside writes to the tenant are allowed (the tenant table is the only target)', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const update = t.db
      .updateTable('documents')
      .from('apex.accounts as a')
      .set((eb) => ({ title: eb.ref('a.email') }))
      .whereRef('a.id', '=', 'documents.owner_id')
    assert.equal(
      update.compile().sql,
      'update "documents" set "title" = "a"."email" from "apex"."accounts" as "a" where "a"."id" = "documents"."owner_id"',
    )
    await update.execute()
    const del = t.db.deleteFrom('documents').where('owner_id', 'not in', t.db.selectFrom('apex.accounts').select('id'))
    assert.equal(
      del.compile().sql,
      'delete from "documents" where "owner_id" not in (select "id" from "apex"."accounts")',
    )
    const [deleted] = await del.execute()
    assert.equal(deleted?.numDeletedRows, 1n) // Ghost (owner 9); Orphan's NULL owner is not "not in"
    const upsert = t.db
      .insertInto('documents')
      .values({ id: 1, title: 'x' })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          title: t.db.selectFrom('apex.plans').select('name').where('id', '=', 'pro'),
        }),
      )
    assert.equal(
      upsert.compile().sql,
      'insert into "documents" ("id", "title") values (?, ?) on conflict ("id") do update set "title" = (select "name" from "apex"."plans" where "id" = ?)',
    )
    await upsert.execute()
    assert.deepEqual(await t.db.selectFrom('documents').select(['id', 'title']).orderBy('id').execute(), [
      { id: 1, title: 'Pro' },
      { id: 2, title: 'bob@x.test' },
      { id: 3, title: 'Orphan' },
    ])
  })
  await shard.close()
})

test('writes through shard.apex are visible to the next tenant query on an already-attached connection (WAL)', async () => {
  const { shard, log } = await setup()
  const ownerEmails = (t: { db: Parameters<Parameters<typeof shard.withTenant>[1]>[0]['db'] }) =>
    t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.id', 'a.email'])
      .orderBy('d.id')
      .execute()

  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await ownerEmails(t), [
      { id: 1, email: 'ann@x.test' },
      { id: 2, email: 'bob@x.test' },
    ])
    // Same scope, same attached connection: insert, update and delete in apex.
    await shard.apex.insertInto('accounts').values({ id: 9, email: 'gus@x.test' }).execute()
    await shard.apex.updateTable('accounts').set({ email: 'ann@new.test' }).where('id', '=', 1).execute()
    await shard.apex.deleteFrom('accounts').where('id', '=', 2).execute()
    assert.deepEqual(await ownerEmails(t), [
      { id: 1, email: 'ann@new.test' },
      { id: 4, email: 'gus@x.test' },
    ])
  })
  // A later scope reuses the pooled handle and its attachment.
  await shard.apex.transaction().execute(async (trx) => {
    await trx.insertInto('accounts').values({ id: 2, email: 'bob@again.test' }).execute()
  })
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(
      (await ownerEmails(t)).map((r) => r.email),
      ['ann@new.test', 'bob@again.test', 'gus@x.test'],
    )
    // A schema change in apex reaches the attached connection (its cached statements re-prepare).
    await shard.apex.schema.alterTable('accounts').addColumn('nickname', 'text').execute()
    await shard.apex
      .updateTable('accounts')
      .set({ nickname: 'Annie' } as never)
      .where('id', '=', 1)
      .execute()
    const rows = await (t.db as unknown as Kysely<any>)
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.id', 'a.nickname'])
      .where('d.id', '=', 1)
      .execute()
    assert.deepEqual(rows, [{ id: 1, nickname: 'Annie' }])
  })
  assert.equal(log.attaches('acme'), 1, 'one ATTACH for the connection, reused across queries and scopes')
  await shard.close()
})

test('raw sql is judged by its compiled program: after t.attach("apex") a raw write to apex is refused', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    await assert.rejects(
      sql`insert into apex.plans (id, name) values ('raw', 'Raw')`.execute(t.db),
      /no such table: apex\.plans/,
      'nothing is attached until a builder query or t.attach needs it',
    )
    await t.attach('apex')
    await assert.rejects(sql`insert into apex.plans (id, name) values ('raw', 'Raw')`.execute(t.db), {
      name: 'ReadOnlyAttachmentError',
      code: 'READ_ONLY_ATTACHMENT',
      schema: 'apex',
      tenantId: 'acme',
    })
    // Reads of apex through raw SQL stay allowed once it is attached.
    const { rows } = await sql<{ n: number }>`select count(*) as n from apex.plans where id = 'raw'`.execute(t.db)
    assert.deepEqual(rows, [{ n: 0 }])
  })
  assert.deepEqual(await shard.apex.selectFrom('plans').select('id').where('id', '=', 'raw').execute(), [])
  await shard.close()
})

test('one ATTACH compiler serves every tenant: refusals in interleaved scopes name their own tenant, and a refusal leaves nothing behind for the next compile', async () => {
  const { shard } = await setup()
  await seedTenant(shard, 'globex', 'G-')
  const select = (db: Kysely<any>) =>
    db.selectFrom('documents as d').innerJoin('apex.accounts as a', 'a.id', 'd.owner_id').select(['d.title', 'a.email'])
  const expectedSql =
    'select "d"."title", "a"."email" from "documents" as "d" inner join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id"'
  const { promise: acmeWaits, resolve: acmeDone } = latch()
  const { promise: globexWaits, resolve: globexReady } = latch()
  await Promise.all([
    shard.withTenant('acme', async (t) => {
      await globexWaits
      // Refused in the middle of the tree (an insert's select), while globex's scope is open.
      assert.throws(
        () =>
          (t.db as Kysely<any>)
            .insertInto('apex.plans')
            .columns(['id', 'name'])
            .expression(
              select(t.db as Kysely<any>)
                .clearSelect()
                .select(['d.title', 'd.title']),
            )
            .compile(),
        (error: unknown) => error instanceof ReadOnlyAttachmentError && error.tenantId === 'acme',
      )
      // The next compile, anywhere, is whole: no parentheses from a stale parent, no stray schema.
      assert.equal(select(t.db as Kysely<any>).compile().sql, expectedSql)
      acmeDone()
    }),
    shard.withTenant('globex', async (t) => {
      globexReady()
      await acmeWaits
      assert.equal(select(t.db as Kysely<any>).compile().sql, expectedSql)
      await assert.rejects((t.db as Kysely<any>).deleteFrom('apex.accounts').execute(), (error: unknown) => {
        assert.ok(error instanceof ReadOnlyAttachmentError)
        assert.equal(error.tenantId, 'globex')
        assert.match(error.message, /tenant "globex"/)
        return true
      })
      assert.deepEqual(
        await select(t.db as Kysely<any>)
          .orderBy('d.title')
          .execute(),
        [
          { title: 'G-Plan', email: 'ann@x.test' },
          { title: 'G-Spec', email: 'bob@x.test' },
        ],
      )
    }),
  ])
  // And a refusal after both scopes still names the tenant of the scope it happened in.
  await shard.withTenant('acme', async (t) => {
    assert.throws(
      () => (t.db as Kysely<any>).updateTable('apex.accounts').set({ plan: 'x' }).compile(),
      (error: unknown) => assertRefused(error, 'accounts'),
    )
  })
  await shard.close()
})
