// The statement guard refuses what reaches outside a scope; everything a scope
// legitimately does still works: reads of apex (builder, raw after
// t.attach), read-only pragmas, migrations, temp objects within a scope,
// withTenants reads, and writes to the tenant's own tables through every API.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Migration, type Params, ReadOnlyAttachmentError, StatementRefusedError } from '@shardines/core'
import { type Kysely, sql } from 'kysely'
import { caught, latch } from '../helpers/async-helpers.js'
import { tenantMigrations } from '../helpers/fixture-schema.js'
import { APEX_ACCOUNTS, makeWorld, rowsOf, seededDocuments, type World } from './guard-world.js'

/** A session of every legitimate use must leave apex exactly as seeded. */
function apexUntouched(w: World): void {
  assert.deepEqual(rowsOf(w.apexFile, 'accounts'), APEX_ACCOUNTS)
  assert.deepEqual(rowsOf(w.apexFile, 'plans'), [
    { id: 'free', name: 'Free' },
    { id: 'pro', name: 'Pro' },
  ])
}

test('builder reads of apex: joins, subqueries, exists, CTEs and streams', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    const joined = await t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .orderBy('d.id')
      .execute()
    assert.deepEqual(joined, [
      { title: 'acme plan', email: 'ann@x.test' },
      { title: 'acme spec', email: 'bob@x.test' },
    ])
    const inSubquery = await t.db
      .selectFrom('documents')
      .select('id')
      .where('owner_id', 'in', t.db.selectFrom('apex.accounts').select('id').where('plan', '=', 'pro'))
      .execute()
    assert.deepEqual(inSubquery, [{ id: 1 }])
    const exists = await t.db
      .selectFrom('documents as d')
      .select('d.id')
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('apex.plans as p')
            .innerJoin('apex.accounts as a', 'a.plan', 'p.id')
            .whereRef('a.id', '=', 'd.owner_id')
            .select('a.id'),
        ),
      )
      .orderBy('d.id')
      .execute()
    assert.deepEqual(exists, [{ id: 1 }, { id: 2 }])
    const cte = await t.db
      .with('paid', (db) => db.selectFrom('apex.accounts').select(['id', 'email']).where('plan', '!=', 'free'))
      .selectFrom('documents as d')
      .innerJoin('paid', 'paid.id', 'd.owner_id')
      .select(['d.title', 'paid.email'])
      .execute()
    assert.deepEqual(cte, [{ title: 'acme plan', email: 'ann@x.test' }])
    const streamed: unknown[] = []
    for await (const row of t.db
      .selectFrom('documents as d')
      .leftJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.id', 'a.email'])
      .orderBy('d.id')
      .stream()) {
      streamed.push(row)
    }
    assert.deepEqual(streamed, [
      { id: 1, email: 'ann@x.test' },
      { id: 2, email: 'bob@x.test' },
      { id: 3, email: null },
      { id: 4, email: null },
    ])
    const viaRawTable = await t.db
      .selectFrom(sql.table('apex.accounts').as('a'))
      .select(sql<string>`a.email`.as('email'))
      .orderBy(sql`a.id`)
      .execute()
    assert.deepEqual(
      viaRawTable.map((r) => r.email),
      APEX_ACCOUNTS.map((a) => a.email),
    )
  })
  apexUntouched(w)
  await w.shard.close()
})

test('t.attach("apex") then raw reads of apex.*, and sync prepared reads that join apex', async () => {
  const w = await makeWorld()
  const withOwner = w.shard.prepare((db, p: Params<{ id: number }>) =>
    db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .where('d.id', '=', p('id')),
  )
  await w.shard.withTenant('beta', async (t) => {
    await t.attach('apex')
    await t.attach('apex') // idempotent
    const { rows } = await sql<{ title: string; email: string }>`
      select d.title, a.email from main.documents d join apex.accounts a on a.id = d.owner_id order by d.id`.execute(
      t.db,
    )
    assert.deepEqual(rows, [
      { title: 'beta plan', email: 'ann@x.test' },
      { title: 'beta spec', email: 'bob@x.test' },
    ])
    const count = await sql<{ n: number }>`select count(*) as n from "apex"."plans"`.execute(t.db)
    assert.deepEqual(count.rows, [{ n: 2 }])
    assert.deepEqual(withOwner.executeSync({ id: 2 }), [{ title: 'beta spec', email: 'bob@x.test' }])
    assert.deepEqual(await withOwner.executeTakeFirst({ id: 1 }), { title: 'beta plan', email: 'ann@x.test' })
  })
  apexUntouched(w)
  await w.shard.close()
})

test('every read-only pragma of the allow-list runs, with and without its argument, and pragma_* functions', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    const run = async (text: string) => (await sql.raw<Record<string, unknown>>(text).execute(t.db)).rows
    const plain = [
      'application_id',
      'auto_vacuum',
      'cache_size',
      'collation_list',
      'compile_options',
      'data_version',
      'database_list',
      'encoding',
      'foreign_key_check',
      'foreign_key_list',
      'foreign_keys',
      'freelist_count',
      'function_list',
      'index_info',
      'index_list',
      'index_xinfo',
      'integrity_check',
      'journal_mode',
      'module_list',
      'page_count',
      'page_size',
      'pragma_list',
      'quick_check',
      'schema_version',
      'synchronous',
      'table_info',
      'table_list',
      'table_xinfo',
      'user_version',
    ]
    for (const name of plain) {
      const rows = await run(`pragma ${name}`)
      assert.ok(Array.isArray(rows), name)
    }
    assert.deepEqual(await run('pragma foreign_keys'), [{ foreign_keys: 1 }])
    assert.deepEqual(await run('pragma journal_mode'), [{ journal_mode: 'delete' }])
    assert.deepEqual(await run('pragma apex.journal_mode'), [{ journal_mode: 'wal' }])
    assert.deepEqual(await run('PRAGMA main.page_size;'), [{ page_size: 4096 }])
    assert.deepEqual(await run('pragma encoding'), [{ encoding: 'UTF-8' }])
    assert.deepEqual(await run('pragma integrity_check'), [{ integrity_check: 'ok' }])
    assert.deepEqual(
      (await run('pragma database_list')).map((r) => r.name).filter((name) => name !== 'temp'),
      ['main', 'apex'],
    )
    const columns = (rows: Record<string, unknown>[]) => rows.map((r) => r.name)
    assert.deepEqual(columns(await run('pragma table_info(documents)')), ['id', 'title', 'owner_id', 'status'])
    assert.deepEqual(columns(await run("pragma table_xinfo('comments')")), ['id', 'document_id', 'body'])
    assert.deepEqual(columns(await run('pragma apex.table_info(accounts)')), ['id', 'email', 'plan'])
    assert.deepEqual(columns(await run('pragma apex.index_list(accounts)')), ['accounts_email'])
    assert.deepEqual(columns(await run('pragma apex.index_info(accounts_email)')), ['email'])
    assert.deepEqual(columns(await run('pragma apex.index_xinfo(accounts_email)')), ['email', null])
    assert.deepEqual(
      (await run('pragma foreign_key_list(comments)')).map((r) => [r.table, r.from, r.to]),
      [['documents', 'document_id', 'id']],
    )
    assert.deepEqual(await run('pragma foreign_key_check(comments)'), [])
    assert.deepEqual(await run('pragma quick_check(5)'), [{ quick_check: 'ok' }])
    assert.deepEqual(await run('pragma integrity_check(documents)'), [{ integrity_check: 'ok' }])
    assert.deepEqual(
      (await run('pragma table_list(documents)')).map((r) => [r.schema, r.name]),
      [['main', 'documents']],
    )
    // pragma_* table-valued functions in a select.
    assert.deepEqual(columns(await run("select name from pragma_table_info('documents') order by cid")), [
      'id',
      'title',
      'owner_id',
      'status',
    ])
    assert.deepEqual(await run('select * from pragma_foreign_keys'), [{ foreign_keys: 1 }])
    assert.deepEqual(columns(await run("select name from pragma_table_info('accounts', 'apex') order by cid")), [
      'id',
      'email',
      'plan',
    ])
    assert.deepEqual(
      await run("select count(*) as n from pragma_table_list where schema = 'apex' and name = 'plans'"),
      [{ n: 1 }],
    )
  })
  await w.shard.close()
})

const PRIORITY: Record<string, Migration> = {
  ...tenantMigrations,
  '003_priority': {
    async up(db) {
      await db.schema
        .alterTable('documents')
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .execute()
      await sql`update documents set priority = id * 10`.execute(db)
      await db.schema
        .createTable('labels')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .execute()
    },
  },
}

/** Leaves temp objects named like the tenant's own tables (and Kysely's bookkeeping) on acme's connection. */
async function leaveShadows(w: World): Promise<void> {
  await w.shard.withTenant('acme', async (t) => {
    await sql`create temp table documents (id integer primary key, title text)`.execute(t.db)
    await sql`insert into temp.documents (title) values ('shadow')`.execute(t.db)
    await sql`create temp table kysely_migration (name text, timestamp text)`.execute(t.db)
    await sql`insert into temp.kysely_migration values ('999_fake', 'now')`.execute(t.db)
    await sql`create temp table labels (name text)`.execute(t.db)
    await sql`create temp trigger shadow_audit after update on main.documents begin insert into temp.labels values ('x'); end`.execute(
      t.db,
    )
    // Unqualified names resolve temp first, as SQLite does (raw SQL and the builder alike); main.* is main.
    assert.deepEqual((await sql<{ title: string }>`select title from documents`.execute(t.db)).rows, [
      { title: 'shadow' },
    ])
    assert.equal((await t.db.selectFrom('documents').select('id').execute()).length, 1)
    assert.equal(
      (await (t.db as Kysely<any>).withSchema('main').selectFrom('documents').select('id').execute()).length,
      4,
    )
  })
}

/** acme's file after 003: the seeded rows with their priority, the new table, the bookkeeping. */
function migratedTo003(w: World): void {
  assert.deepEqual(
    rowsOf(w.tenantFile('acme'), 'documents'),
    seededDocuments('acme').map((d) => ({ ...d, priority: d.id * 10 })),
  )
  assert.deepEqual(rowsOf(w.tenantFile('acme'), 'labels'), [])
  assert.deepEqual(
    rowsOf(w.tenantFile('acme'), 'kysely_migration').map((r) => r.name),
    ['001_documents', '002_comments', '003_priority'],
  )
}

test('migrate.tenant works after a scope left temp tables named like the main tables', async () => {
  const old = await makeWorld()
  await old.shard.close()
  const w = await makeWorld({ dir: old.dir, seed: false, tenantMigrations: PRIORITY, migrateOnOpen: 'off' })
  await leaveShadows(w)
  const outcome = await w.shard.migrate.tenant('acme')
  assert.equal(outcome.status, 'migrated')
  assert.equal(outcome.to, '003_priority')
  migratedTo003(w)
  await w.shard.withTenant('acme', async (t) => {
    const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
    assert.deepEqual(temp.rows, [{ n: 0 }])
    const db = t.db as Kysely<any>
    assert.deepEqual(await db.selectFrom('documents').select('priority').where('id', '=', 2).execute(), [
      { priority: 20 },
    ])
  })
  await w.shard.close()
})

test('migrate.tenant works while a scope holding temp shadows of the main tables is still open', async () => {
  const old = await makeWorld()
  await old.shard.close()
  const w = await makeWorld({ dir: old.dir, seed: false, tenantMigrations: PRIORITY, migrateOnOpen: 'off' })
  const { promise: held, resolve: release } = latch()
  const { promise: shadowed, resolve: ready } = latch()
  const holder = w.shard.withTenant('acme', async (t) => {
    await sql`create temp table documents (id integer primary key, title text)`.execute(t.db)
    await sql`create temp table kysely_migration (name text, timestamp text)`.execute(t.db)
    await sql`insert into temp.kysely_migration values ('001_documents', 'x'), ('002_comments', 'x'), ('003_priority', 'x')`.execute(
      t.db,
    )
    ready()
    await held
  })
  await shadowed
  const outcome = await w.shard.migrate.tenant('acme')
  release()
  await holder
  assert.equal(outcome.status, 'migrated')
  migratedTo003(w)
  await w.shard.close()
})

test('lazy migration works on a tenant whose last scope left temp shadows; main.* writes reach main', async () => {
  const old = await makeWorld()
  await leaveShadows(old)
  await old.shard.close()
  const w = await makeWorld({ dir: old.dir, seed: false, tenantMigrations: PRIORITY })
  await w.shard.withTenant('acme', async (t) => {
    // Migrated on open.
    const db = t.db as Kysely<any>
    assert.deepEqual(await db.selectFrom('documents').select(['id', 'priority']).where('id', '<', 3).execute(), [
      { id: 1, priority: 10 },
      { id: 2, priority: 20 },
    ])
    await sql`create temp table documents (id integer primary key, title text)`.execute(t.db)
    await db.withSchema('main').insertInto('documents').values({ id: 5, title: 'main row', priority: 50 }).execute()
    await sql`insert into documents (id, title) values (5, 'temp row')`.execute(t.db)
    assert.deepEqual((await sql`select title from temp.documents`.execute(t.db)).rows, [{ title: 'temp row' }])
  })
  migratedTo003Plus(w)
  await w.shard.withTenant('acme', async (t) => {
    assert.deepEqual((await sql`select count(*) as n from temp.sqlite_master`.execute(t.db)).rows, [{ n: 0 }])
  })
  await w.shard.close()
})

function migratedTo003Plus(w: World): void {
  const rows = rowsOf(w.tenantFile('acme'), 'documents')
  assert.deepEqual(rows.at(-1), { id: 5, title: 'main row', owner_id: null, status: 'open', priority: 50 })
  assert.equal(rows.length, 5)
}

test('a temp table is created, used and dropped within one scope, and the next scope starts clean', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await sql`create temp table picks (doc_id integer)`.execute(t.db)
    await sql`insert into temp.picks values (1), (3)`.execute(t.db)
    const { rows } = await sql<{ title: string }>`
      select d.title from main.documents d join temp.picks p on p.doc_id = d.id order by d.id`.execute(t.db)
    assert.deepEqual(rows, [{ title: 'acme plan' }, { title: 'acme orphan' }])
    await sql`drop table temp.picks`.execute(t.db)
    const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
    assert.deepEqual(temp.rows, [{ n: 0 }])
  })
  await w.shard.withTenant('acme', async (t) => {
    await sql`create temp table kept (x)`.execute(t.db)
    await sql`create temp view kept_view as select x from temp.kept`.execute(t.db)
    await sql`create temp table audit (title text)`.execute(t.db)
    await sql`create temp trigger audit_docs after insert on main.documents begin insert into temp.audit values (new.title); end`.execute(
      t.db,
    )
    // A temp trigger on the tenant's own tables works inside the scope.
    await t.db.insertInto('documents').values({ id: 5, title: 'audited' }).execute()
    assert.deepEqual((await sql`select title from temp.audit`.execute(t.db)).rows, [{ title: 'audited' }])
    const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
    assert.deepEqual(temp.rows, [{ n: 4 }])
  })
  await w.shard.withTenant('acme', async (t) => {
    const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
    assert.deepEqual(temp.rows, [{ n: 0 }], 'temp tables, views and triggers of the last scope are gone')
    const error = await caught(() => sql`select * from temp.kept`.execute(t.db))
    assert.match(String(error), /no such table: temp\.kept/)
    // The trigger is gone too: this insert is not audited (and there is no audit table to fail on).
    await t.db.insertInto('documents').values({ id: 6, title: 'not audited' }).execute()
  })
  assert.deepEqual(
    rowsOf(w.tenantFile('acme'), 'documents').map((r) => r.title),
    [...seededDocuments('acme').map((d) => d.title), 'audited', 'not audited'],
  )
  await w.shard.close()
})

test('a temp trigger left to copy rows into apex is gone for the next scope: its innocent insert succeeds', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    await sql`create temp trigger copy_out after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end`.execute(
      t.db,
    )
  })
  await w.shard.withTenant('acme', async (t) => {
    await t.attach('apex') // apex attached: the trigger, were it still there, could fire
    await t.db.insertInto('documents').values({ id: 5, title: 'innocent' }).execute()
    await t.models.Document.create({ title: 'innocent model' })
  })
  apexUntouched(w)
  assert.deepEqual(
    rowsOf(w.tenantFile('acme'), 'documents')
      .slice(4)
      .map((r) => r.title),
    ['innocent', 'innocent model'],
  )
  await w.shard.close()
})

test('temp objects live until the last scope holding the handle ends; meanwhile a concurrent scope is still guarded', async () => {
  const w = await makeWorld()
  const { promise: held, resolve: release } = latch()
  const { promise: created, resolve: ready } = latch()
  const holder = w.shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    await sql`create temp trigger copy_out after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end`.execute(
      t.db,
    )
    ready()
    await held
  })
  await created
  await w.shard.withTenant('acme', async (t) => {
    // The holder's trigger is still on the shared connection: the insert that would fire it is refused.
    const error = await caught(() => t.db.insertInto('documents').values({ title: 'innocent' }).execute())
    assert.ok(error instanceof ReadOnlyAttachmentError, String(error))
    assert.equal(error.schema, 'apex')
  })
  release()
  await holder
  await w.shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ id: 5, title: 'later' }).execute())
  apexUntouched(w)
  assert.deepEqual(rowsOf(w.tenantFile('acme'), 'documents').at(-1)?.title, 'later')
  assert.equal(rowsOf(w.tenantFile('acme'), 'documents').length, 5)
  await w.shard.close()
})

test('withTenants reads: builder joins, x.attach then raw reads, pragma functions on attached tenants', async () => {
  const w = await makeWorld()
  const result = await w.shard.withTenants(['acme', 'beta'], async (x) => {
    const joined = await x.db
      .selectFrom('acme.documents as a')
      .innerJoin('beta.documents as b', 'b.id', 'a.id')
      .leftJoin('apex.accounts as o', 'o.id', 'a.owner_id')
      .select(['a.title as mine', 'b.title as theirs', 'o.email'])
      .orderBy('a.id')
      .execute()
    await x.attach('beta')
    const raw = await sql<{ title: string }>`select title from beta.documents where status = 'closed'`.execute(x.db)
    const info = await sql<{
      name: string
    }>`select name from pragma_table_info('documents', 'acme') order by cid`.execute(x.db)
    const pragma = await sql<{ name: string }>`pragma beta.table_info(comments)`.execute(x.db)
    const counted = await x.db
      .selectFrom('acme.comments')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    return { joined, raw: raw.rows, info: info.rows, pragma: pragma.rows.map((r) => r.name), counted }
  })
  assert.deepEqual(result, {
    joined: [
      { mine: 'acme plan', theirs: 'beta plan', email: 'ann@x.test' },
      { mine: 'acme spec', theirs: 'beta spec', email: 'bob@x.test' },
      { mine: 'acme orphan', theirs: 'beta orphan', email: null },
      { mine: 'acme ghost', theirs: 'beta ghost', email: null },
    ],
    raw: [{ title: 'beta spec' }],
    info: [{ name: 'id' }, { name: 'title' }, { name: 'owner_id' }, { name: 'status' }],
    pragma: ['id', 'document_id', 'body'],
    counted: { n: 2 },
  })
  await w.shard.close()
})

test("writes to the tenant's own tables through the builder, raw SQL, models, prepared queries, shard.db(), connection() and transactions", async () => {
  const w = await makeWorld()
  const insertPrepared = w.shard.prepare((db, p: Params<{ id: number; title: string }>) =>
    db
      .insertInto('documents')
      .values({ id: p('id'), title: p('title') })
      .returning('title'),
  )
  const renamePrepared = w.shard.prepare((db, p: Params<{ id: number; title: string }>) =>
    db
      .updateTable('documents')
      .set({ title: p('title') })
      .where('id', '=', p('id')),
  )
  const rawPrepared = w.shard.prepare((db, p: Params<{ id: number }>) => ({
    compile: () => sql`delete from documents where id = ${p('id')}`.compile(db),
  }))
  await w.shard.withTenant('acme', async (t) => {
    await t.db.insertInto('documents').values({ id: 10, title: 'builder' }).execute()
    await t.db.updateTable('documents').set({ status: 'closed' }).where('id', '=', 10).execute()
    await sql`insert into documents (id, title) values (11, 'raw unqualified')`.execute(t.db)
    await sql`insert into main.documents (id, title) values (12, 'raw main')`.execute(t.db)
    await sql`update main.documents set title = 'raw main updated' where id = ${12}`.execute(t.db)
    await sql.raw("insert into comments (document_id, body) values (11, 'raw comment')").execute(t.db)
    const created = await t.models.Document.create({ id: 13, title: 'model' })
    assert.equal(created.title, 'model')
    assert.equal((await t.models.Document.update(13, { status: 'closed' }))?.status, 'closed')
    assert.equal(await t.models.Document.delete(3), true)
    assert.deepEqual(await insertPrepared.executeTakeFirst({ id: 14, title: 'prepared' }), { title: 'prepared' })
    await insertPrepared.execute({ id: 15, title: 'prepared too' })
    await renamePrepared.execute({ id: 15, title: 'prepared renamed' })
    await rawPrepared.execute({ id: 4 })
    await sql`insert into documents (id, title) values (16, 'shard.db()')`.execute(w.shard.db())
    await t.db.connection().execute((c) => c.insertInto('documents').values({ id: 17, title: 'connection' }).execute())
    await t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ id: 18, title: 'committed' }).execute()
      await trx.db.selectFrom('apex.accounts').select('id').execute() // reading apex inside is fine
      await trx.models.Comment.create({ document_id: 18, body: 'in trx' })
      await sql`update documents set status = 'done' where id = 18`.execute(trx.db)
    })
    const rolledBack = await caught(() =>
      t.transaction(async (trx) => {
        await trx.db.insertInto('documents').values({ id: 19, title: 'rolled back' }).execute()
        throw new Error('abort')
      }),
    )
    assert.match(String(rolledBack), /abort/)
    const controlled = await t.db.startTransaction().execute()
    await controlled.insertInto('documents').values({ id: 20, title: 'controlled' }).execute()
    await controlled.commit().execute()
    await t.db.transaction().execute((trx) => trx.deleteFrom('comments').where('body', '=', 'acme second').execute())
  })
  const titles = rowsOf(w.tenantFile('acme'), 'documents').map((r) => [r.id, r.title, r.status])
  assert.deepEqual(titles, [
    [1, 'acme plan', 'open'],
    [2, 'acme spec', 'closed'],
    [10, 'builder', 'closed'],
    [11, 'raw unqualified', 'open'],
    [12, 'raw main updated', 'open'],
    [13, 'model', 'closed'],
    [14, 'prepared', 'open'],
    [15, 'prepared renamed', 'open'],
    [16, 'shard.db()', 'open'],
    [17, 'connection', 'open'],
    [18, 'committed', 'done'],
    [20, 'controlled', 'open'],
  ])
  assert.deepEqual(
    rowsOf(w.tenantFile('acme'), 'comments').map((r) => r.body),
    ['acme first', 'raw comment', 'in trx'],
  )
  assert.deepEqual(rowsOf(w.tenantFile('beta'), 'documents'), seededDocuments('beta'))
  apexUntouched(w)
  await w.shard.close()
})

test('apex models and shard.apex still write apex from inside a tenant scope', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await t.models.Plan.create({ id: 'team', name: 'Team' })
    await w.shard.apex.updateTable('accounts').set({ plan: 'team' }).where('id', '=', 2).execute()
    // and the tenant sees it at once through apex.*
    const rows = await t.db.selectFrom('apex.accounts').select(['id', 'plan']).orderBy('id').execute()
    assert.deepEqual(rows, [
      { id: 1, plan: 'pro' },
      { id: 2, plan: 'team' },
      { id: 3, plan: 'team' },
    ])
    // …while the same write from the tenant connection is refused.
    const error = await caught(() => sql`update apex.accounts set plan = 'free'`.execute(t.db))
    assert.ok(error instanceof ReadOnlyAttachmentError)
  })
  assert.deepEqual(
    rowsOf(w.apexFile, 'plans').map((r) => r.id),
    ['free', 'pro', 'team'],
  )
  await w.shard.close()
})

test('the guard does not confuse a table name with a qualifier: main.<table> and apex-named columns read fine', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await t.attach('apex')
    // A tenant table that shares a name with an apex one would still resolve to main.
    await sql`create table plans (id text primary key, name text)`.execute(t.db)
    await sql`insert into plans values ('local', 'Local')`.execute(t.db)
    assert.deepEqual((await sql`select id from plans`.execute(t.db)).rows, [{ id: 'local' }])
    assert.deepEqual((await sql`select count(*) as n from apex.plans`.execute(t.db)).rows, [{ n: 2 }])
    const refused = await caught(() => sql`select email from accounts`.execute(t.db))
    assert.ok(refused instanceof StatementRefusedError)
    assert.equal(refused.kind, 'fall-through')
    assert.equal(refused.schema, 'apex')
    // The builder's unqualified name is resolved as SQLite does, and the same guard refuses the fall-through.
    const missing = await caught(() => (t.db as Kysely<any>).selectFrom('accounts').selectAll().execute())
    assert.ok(missing instanceof StatementRefusedError)
    assert.equal(missing.kind, 'fall-through')
  })
  apexUntouched(w)
  await w.shard.close()
})

test('the next scope starts clean: no temp sqlite_sequence / sqlite_stat1 rows carried over from the last scope', async () => {
  const w = await makeWorld()
  await w.shard.withTenant('acme', async (t) => {
    await sql`create temp table counter (id integer primary key autoincrement, v)`.execute(t.db)
    await sql`insert into temp.counter (v) values (1)`.execute(t.db)
    await sql`analyze temp`.execute(t.db)
    await sql`insert into temp.sqlite_sequence (name, seq) values ('message for the next scope', 42)`.execute(t.db)
  })
  await w.shard.withTenant('acme', async (t) => {
    // SQLite never drops temp.sqlite_sequence once made (it refuses to): it is left, empty.
    const { rows } = await sql<{ name: string }>`select name from temp.sqlite_master order by name`.execute(t.db)
    assert.deepEqual(
      rows.filter((r) => r.name !== 'sqlite_sequence'),
      [],
      'temp objects left by the last scope',
    )
    if (rows.length > 0) assert.deepEqual((await sql`select * from temp.sqlite_sequence`.execute(t.db)).rows, [])
  })
  await w.shard.close()
})
