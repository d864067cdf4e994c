// No fall-through: SQLite resolves an unqualified table in temp, then main, then
// each attached database. Shardines leaves names as SQLite resolves them (temp
// first, as on a plain database), and the statement guard refuses, before it
// runs, any statement whose compiled program reaches an attached database for
// a table the SQL does not name there: a table the tenant lacks is an error,
// never another database's rows, and unqualified writes and DDL never reach it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Kysely, sql } from 'kysely'
import { attachedNames, seedTenant, setupWithApexIndexAndView as setup } from './attach-helpers.js'

async function apexSchema(apex: Kysely<any>) {
  const { rows } = await sql`select type, name, sql from sqlite_master order by type, name`.execute(apex)
  return { rows, accounts: await apex.selectFrom('accounts').selectAll().orderBy('id').execute() }
}

/** The guard's refusal of a read that fell through to apex. */
const fellThrough = { name: 'StatementRefusedError', code: 'STATEMENT_REFUSED', kind: 'fall-through', schema: 'apex' }
/** The guard's refusal of a write that fell through to apex. */
const wroteApex = { name: 'ReadOnlyAttachmentError', code: 'READ_ONLY_ATTACHMENT', schema: 'apex', tenantId: 'acme' }

test('an unqualified read of a table only apex has is an error, never apex rows', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    assert.deepEqual(await attachedNames(t.db), ['apex'])
    const db = t.db as unknown as Kysely<any>

    // Raw SQL and builder queries alike: the program opens apex for a table the SQL never names there.
    await assert.rejects(sql`select email from accounts order by id`.execute(db), { ...fellThrough, tenantId: 'acme' })
    const plain = db.selectFrom('accounts').selectAll()
    assert.equal(plain.compile().sql, 'select * from "accounts"')
    await assert.rejects(plain.execute(), fellThrough)
    // Naming apex elsewhere in the statement does not excuse an unqualified table that fell through.
    await assert.rejects(
      db.selectFrom('documents as d').innerJoin('accounts as a', 'a.id', 'd.owner_id').selectAll().execute(),
      fellThrough,
    )
    await assert.rejects(
      db.selectFrom('apex.plans as p').innerJoin('accounts as a', 'a.plan', 'p.id').selectAll().execute(),
      fellThrough,
    )
    await assert.rejects(
      db.selectFrom('documents').selectAll().where('owner_id', 'in', db.selectFrom('accounts').select('id')).execute(),
      fellThrough,
    )
    await assert.rejects(
      db.selectFrom('documents').select('title').union(db.selectFrom('accounts').select('email as title')).execute(),
      fellThrough,
    )
    await assert.rejects(db.selectFrom(sql.table('accounts').as('a')).selectAll().execute(), fellThrough)
    // Through an index of apex's (the program opens the index's b-tree) and through apex's view.
    await assert.rejects(sql`select email from accounts where email = 'a@x'`.execute(db), fellThrough)
    await assert.rejects(sql`select * from paid`.execute(db), fellThrough)
    // The qualified names work, views included.
    assert.equal((await t.db.selectFrom('apex.accounts').selectAll().execute()).length, 3)
    assert.ok((await sql`select * from apex.paid`.execute(db)).rows.length > 0)
  })
  await shard.close()
})

test('a tenant table with the same name as an apex table: unqualified is the tenant, apex.* is apex', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const db = t.db as unknown as Kysely<any>
    await db.schema.createTable('plans').addColumn('id', 'text').addColumn('name', 'text').execute()
    await db.insertInto('plans').values({ id: 'local', name: 'Tenant plan' }).execute()
    const query = db
      .selectFrom('plans as mine')
      .crossJoin('apex.plans as shared')
      .select(['mine.name as mine', 'shared.name as shared'])
      .orderBy('shared.name')
    assert.equal(
      query.compile().sql,
      'select "mine"."name" as "mine", "shared"."name" as "shared" from "plans" as "mine" cross join "apex"."plans" as "shared" order by "shared"."name"',
    )
    assert.deepEqual(await query.execute(), [
      { mine: 'Tenant plan', shared: 'Free' },
      { mine: 'Tenant plan', shared: 'Pro' },
    ])
  })
  await shard.close()
})

test('a temp table shadows a main table of its name, as SQLite resolves names; main.* still reaches main', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const db = t.db as unknown as Kysely<any>
    await db.schema.createTable('documents').temporary().addColumn('id', 'integer').addColumn('title', 'text').execute()
    await db.insertInto('documents').values({ id: 99, title: 'temp row' }).execute()
    const unqualified = await db.selectFrom('documents').select('id').execute()
    assert.deepEqual(unqualified, [{ id: 99 }], 'unqualified: temp first')
    const main = await db.withSchema('main').selectFrom('documents').select('id').orderBy('id').execute()
    assert.deepEqual(
      main.map((r) => r.id),
      [1, 2, 3, 4],
    )
    await db.schema.createIndex('temp_docs_title').on('documents').column('title').execute()
    const { rows } = await sql<{
      n: number
    }>`select count(*) as n from temp.sqlite_master where type = 'index'`.execute(db)
    assert.deepEqual(rows, [{ n: 1 }], 'the index went where the table resolved: temp')
    await db.schema.dropTable('documents').execute()
    assert.equal((await db.selectFrom('documents').selectAll().execute()).length, 4, 'dropped temp; main is back')
  })
  await shard.close()
})

test('unqualified writes and DDL never touch apex', async () => {
  const { shard } = await setup()
  const before = await apexSchema(shard.apex)
  await shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    const db = t.db as unknown as Kysely<any>
    const cases: [string, { compile(): { sql: string }; execute(): Promise<unknown> }, object | RegExp][] = [
      ['insert', db.insertInto('accounts').values({ email: 'e' }), wroteApex],
      [
        'insert behind a CTE of the same name',
        db
          .with('accounts', (q) => q.selectFrom('documents').select('title as email'))
          .insertInto('accounts')
          .columns(['email'])
          .expression((eb) => eb.selectFrom('accounts').select('email')),
        wroteApex,
      ],
      ['update', db.updateTable('accounts').set({ email: 'e' }), wroteApex],
      [
        'delete behind a CTE of the same name',
        db
          .with('accounts', (q) => q.selectFrom('documents').select('id'))
          .deleteFrom('accounts')
          .where('id', 'in', db.selectFrom('accounts').select('id')),
        wroteApex,
      ],
      ['delete', db.deleteFrom('accounts'), wroteApex],
      ['drop table', db.schema.dropTable('accounts'), wroteApex],
      ['drop table if exists', db.schema.dropTable('accounts').ifExists(), wroteApex],
      ['alter table add column', db.schema.alterTable('accounts').addColumn('x', 'integer'), wroteApex],
      ['alter table rename', db.schema.alterTable('accounts').renameTo('gone'), wroteApex],
      ['alter table rename column', db.schema.alterTable('accounts').renameColumn('email', 'e'), wroteApex],
      // An index lives in the schema of its table's name resolution: main, which lacks the table.
      ['create index', db.schema.createIndex('evil_i').on('accounts').column('plan'), /no such table: main\.accounts/],
      ['drop index', db.schema.dropIndex('accounts_email'), wroteApex],
      ['drop index if exists', db.schema.dropIndex('accounts_email').ifExists(), wroteApex],
      ['drop view', db.schema.dropView('paid'), wroteApex],
    ]
    for (const [name, query, error] of cases) {
      assert.doesNotMatch(query.compile().sql, /"main"/, `${name}: names stay as written`)
      await assert.rejects(query.execute() as Promise<unknown>, error as RegExp, name)
    }
    await assert.rejects(sql`replace into accounts (id, email) values (1, 'x')`.execute(db), wroteApex)
    // Renaming a tenant's own table works (the new name takes no schema in SQLite).
    await db.schema.alterTable('comments').renameTo('notes').execute()
    assert.equal((await db.selectFrom('notes').selectAll().execute()).length, 2)
    // A table or view the tenant does not have, in no attached database either: SQLite's own error.
    await assert.rejects(db.selectFrom('nowhere').selectAll().execute(), /no such table: nowhere/)
  })
  assert.deepEqual(await apexSchema(shard.apex), before)
  await shard.close()
})

test("withTenants: a table one attached tenant lacks is an error, never another tenant's rows", async () => {
  const { shard } = await setup()
  await seedTenant(shard, 'beta', 'b-')
  await shard.withTenant('beta', async (t) => {
    await sql`create table notes (id integer primary key, body text)`.execute(t.db)
    await sql`insert into notes (body) values ('beta secret')`.execute(t.db)
  })
  await shard.withTenants(['acme', 'beta'], async (x) => {
    const db = x.db as unknown as Kysely<any>
    assert.equal((await db.selectFrom('beta.notes').selectAll().execute()).length, 1)
    await assert.rejects(db.selectFrom('acme.notes').selectAll().execute(), /no such table: acme\.notes/)
    // Unqualified: main is the scope's own empty connection; the attached tenants are never searched.
    assert.equal(db.selectFrom('notes').selectAll().compile().sql, 'select * from "notes"')
    await assert.rejects(db.selectFrom('notes').selectAll().execute(), {
      code: 'STATEMENT_REFUSED',
      kind: 'fall-through',
      schema: 'beta',
    })
    await assert.rejects(db.selectFrom('documents').selectAll().execute(), {
      code: 'STATEMENT_REFUSED',
      kind: 'fall-through',
    })
    // Naming one tenant does not let an unqualified table reach another.
    await assert.rejects(
      db.selectFrom('acme.documents as a').innerJoin('notes as n', 'n.id', 'a.id').selectAll().execute(),
      { code: 'STATEMENT_REFUSED', kind: 'fall-through', schema: 'beta' },
    )
  })
  await shard.close()
})
