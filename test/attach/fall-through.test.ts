// No fall-through: SQLite resolves an unqualified table in main, temp, then
// each attached database. The compiler qualifies every unqualified table with
// "main", so a table the tenant lacks is an error, never another database's rows,
// and unqualified writes and DDL never reach an attached database.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Kysely, sql } from 'kysely'
import { attachedNames, seedTenant, setupWithApexIndexAndView as setup } from './attach-helpers.js'

async function apexSchema(apex: Kysely<any>) {
  const { rows } = await sql`select type, name, sql from sqlite_master order by type, name`.execute(apex)
  return { rows, accounts: await apex.selectFrom('accounts').selectAll().orderBy('id').execute() }
}

const noMainAccounts = /no such table: main\.accounts/

test('an unqualified read of a table only apex has is an error, never apex rows', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    assert.deepEqual(await attachedNames(t.db), ['apex'])
    const db = t.db as unknown as Kysely<any>

    // Raw SQL is not rewritten, and SQLite would fall through to apex: the guard sees the
    // program open apex, which the SQL never names, and refuses it before it runs.
    await assert.rejects(sql`select email from accounts order by id`.execute(db), {
      name: 'StatementRefusedError',
      code: 'STATEMENT_REFUSED',
      kind: 'fall-through',
      schema: 'apex',
      tenantId: 'acme',
    })

    const plain = db.selectFrom('accounts').selectAll()
    assert.equal(plain.compile().sql, 'select * from "main"."accounts"')
    await assert.rejects(plain.execute(), noMainAccounts)
    await assert.rejects(
      db.selectFrom('documents as d').innerJoin('accounts as a', 'a.id', 'd.owner_id').selectAll().execute(),
      noMainAccounts,
    )
    await assert.rejects(
      db.selectFrom('documents').selectAll().where('owner_id', 'in', db.selectFrom('accounts').select('id')).execute(),
      noMainAccounts,
    )
    await assert.rejects(
      db.selectFrom('documents').select('title').union(db.selectFrom('accounts').select('email as title')).execute(),
      noMainAccounts,
    )
    // The qualified name still works.
    assert.equal((await t.db.selectFrom('apex.accounts').selectAll().execute()).length, 3)
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
      'select "mine"."name" as "mine", "shared"."name" as "shared" from "main"."plans" as "mine" cross join "apex"."plans" as "shared" order by "shared"."name"',
    )
    assert.deepEqual(await query.execute(), [
      { mine: 'Tenant plan', shared: 'Free' },
      { mine: 'Tenant plan', shared: 'Pro' },
    ])
    // A temp table cannot shadow it either.
    await sql`create temp table documents (id integer, title text)`.execute(db)
    await sql`insert into temp.documents values (99, 'temp row')`.execute(db)
    const docs = await t.db.selectFrom('documents').select('id').orderBy('id').execute()
    assert.deepEqual(
      docs.map((r) => r.id),
      [1, 2, 3, 4],
    )
  })
  await shard.close()
})

test('unqualified writes and DDL never touch apex', async () => {
  const { shard } = await setup()
  const before = await apexSchema(shard.apex)
  await shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    const db = t.db as unknown as Kysely<any>
    const cases: [string, { compile(): { sql: string }; execute(): Promise<unknown> }, string, RegExp][] = [
      [
        'insert',
        db.insertInto('accounts').values({ email: 'e' }),
        'insert into "main"."accounts" ("email") values (?)',
        noMainAccounts,
      ],
      [
        'insert behind a CTE of the same name',
        db
          .with('accounts', (q) => q.selectFrom('documents').select('title as email'))
          .insertInto('accounts')
          .columns(['email'])
          .expression((eb) => eb.selectFrom('accounts').select('email')),
        'with "accounts" as (select "title" as "email" from "main"."documents") insert into "main"."accounts" ("email") select "email" from "accounts"',
        noMainAccounts,
      ],
      [
        'update',
        db.updateTable('accounts').set({ email: 'e' }),
        'update "main"."accounts" set "email" = ?',
        noMainAccounts,
      ],
      [
        'delete behind a CTE of the same name',
        db
          .with('accounts', (q) => q.selectFrom('documents').select('id'))
          .deleteFrom('accounts')
          .where('id', 'in', db.selectFrom('accounts').select('id')),
        'with "accounts" as (select "id" from "main"."documents") delete from "main"."accounts" where "id" in (select "id" from "accounts")',
        noMainAccounts,
      ],
      ['delete', db.deleteFrom('accounts'), 'delete from "main"."accounts"', noMainAccounts],
      ['drop table', db.schema.dropTable('accounts'), 'drop table "main"."accounts"', /no such table: main\.accounts/],
      [
        'drop table if exists',
        db.schema.dropTable('accounts').ifExists(),
        'drop table if exists "main"."accounts"',
        /^$/,
      ],
      [
        'alter table add column',
        db.schema.alterTable('accounts').addColumn('x', 'integer'),
        'alter table "main"."accounts" add column "x" integer',
        /no such table: main\.accounts/,
      ],
      [
        'alter table rename',
        db.schema.alterTable('accounts').renameTo('gone'),
        'alter table "main"."accounts" rename to "gone"',
        /no such table: main\.accounts/,
      ],
      [
        'alter table rename column',
        db.schema.alterTable('accounts').renameColumn('email', 'e'),
        'alter table "main"."accounts" rename column "email" to "e"',
        /no such table: main\.accounts/,
      ],
      [
        'create index',
        db.schema.createIndex('evil_i').on('accounts').column('plan'),
        'create index "evil_i" on "accounts" ("plan")',
        /no such table: main\.accounts/,
      ],
      [
        'drop index',
        db.schema.dropIndex('accounts_email'),
        'drop index "main"."accounts_email"',
        /no such index: main\.accounts_email/,
      ],
      [
        'drop index if exists',
        db.schema.dropIndex('accounts_email').ifExists(),
        'drop index if exists "main"."accounts_email"',
        /^$/,
      ],
      ['drop view', db.schema.dropView('paid'), 'drop view "main"."paid"', /no such view: main\.paid/],
    ]
    for (const [name, query, expected, error] of cases) {
      assert.equal(query.compile().sql, expected, name)
      if (error.source === '^$')
        await query.execute() // a no-op on main
      else await assert.rejects(query.execute(), error, name)
    }
    // Renaming a tenant's own table works (the new name takes no schema in SQLite).
    await db.schema.alterTable('comments').renameTo('notes').execute()
    assert.equal((await db.selectFrom('notes').selectAll().execute()).length, 2)
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
    // Unqualified: main is the scope's own empty connection, not the first attached tenant.
    assert.equal(db.selectFrom('notes').selectAll().compile().sql, 'select * from "main"."notes"')
    await assert.rejects(db.selectFrom('notes').selectAll().execute(), /no such table: main\.notes/)
    await assert.rejects(db.selectFrom('documents').selectAll().execute(), /no such table: main\.documents/)
  })
  await shard.close()
})
