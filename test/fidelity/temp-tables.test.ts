// Temp objects on t.db against bare Kysely. SQLite resolves an unqualified
// name in temp first, then main: a temp table named like a main one shadows it
// for every unqualified statement (insert, select, update, delete, create
// index … on, drop table), and `temp.` / `main.` pick one explicitly.
import { type Kysely, sql } from 'kysely'
import { type DB, differential, outcome, rowsOf } from './harness.js'

/** A temp table named like the main `items` table, with its own rows. */
async function shadowItems(db: Kysely<DB>): Promise<void> {
  await db.schema
    .createTable('items')
    .temporary()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('qty', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('category', 'text')
    .addColumn('meta', 'text')
    .execute()
  await sql`insert into temp.items (id, name, qty) values (100, 'temp row', 1)`.execute(db)
}

differential('temp: a temp table with its own name: create, insert, select, drop', async (db) => {
  await db.schema.createTable('scratch').temporary().addColumn('x', 'integer').addColumn('y', 'text').execute()
  await db
    .insertInto('scratch' as any)
    .values([
      { x: 1, y: 'one' },
      { x: 2, y: 'two' },
    ])
    .execute()
  const rows = await db
    .selectFrom('scratch' as any)
    .selectAll()
    .orderBy('x')
    .execute()
  await db.schema.dropTable('scratch').execute()
  return rows
})

differential('temp: a temp table is not written to the file', async (db) => {
  await db.schema.createTable('scratch').temporary().addColumn('x', 'integer').execute()
  await db
    .insertInto('scratch' as any)
    .values({ x: 1 })
    .execute()
  return (await db.introspection.getTables()).map((t) => t.name)
})

differential('temp: an unqualified select reads the temp table that shadows a main one', async (db) => {
  await shadowItems(db)
  return db.selectFrom('items').select(['id', 'name']).orderBy('id').execute()
})

differential('temp: an unqualified insert goes to the shadowing temp table', async (db) => {
  await shadowItems(db)
  await db.insertInto('items').values({ id: 101, name: 'second temp row' }).execute()
  return {
    temp: (await sql`select id, name from temp.items order by id`.execute(db)).rows,
    main: (await sql`select count(*) as n from main.items`.execute(db)).rows,
  }
})

differential('temp: an unqualified update and delete hit the shadowing temp table', async (db) => {
  await shadowItems(db)
  await db.updateTable('items').set({ qty: 50 }).execute()
  await db.deleteFrom('items').where('name', '=', 'apple').execute()
  return {
    temp: (await sql`select id, qty from temp.items order by id`.execute(db)).rows,
    main: (await sql`select id, qty from main.items order by id`.execute(db)).rows,
  }
})

differential('temp: createIndex … on an unqualified name indexes the shadowing temp table', async (db) => {
  await shadowItems(db)
  const created = await outcome(db.schema.createIndex('items_qty').on('items').column('qty').execute())
  return {
    created,
    temp: (await sql`select name, tbl_name from temp.sqlite_master where type = 'index' order by name`.execute(db))
      .rows,
  }
})

differential('temp: dropTable on an unqualified name drops the shadowing temp table, not main', async (db) => {
  await shadowItems(db)
  const dropped = await outcome(db.schema.dropTable('items').execute())
  return {
    dropped,
    now: await db.selectFrom('items').select('name').orderBy('id').execute(),
  }
})

differential('temp: dropTable twice drops temp, then main (foreign keys on)', async (db) => {
  await shadowItems(db)
  await db.schema.dropTable('items').execute()
  await db.schema.dropTable('tags').execute()
  const second = await outcome(db.schema.dropTable('items').execute())
  const tables =
    await sql`select type, name from sqlite_master where name not like 'kysely_migration%' and name not like 'sqlite_autoindex_kysely%' order by name`.execute(
      db,
    )
  return { second, tables: tables.rows }
})

differential('temp: withSchema("temp") addresses the temp table', async (db) => {
  await shadowItems(db)
  const temp = db.withSchema('temp')
  await temp.insertInto('items').values({ id: 102, name: 'via withSchema' }).execute()
  return temp.selectFrom('items').select(['id', 'name']).orderBy('id').execute()
})

differential('temp: withSchema("main") addresses the main table while a temp one shadows it', async (db) => {
  await shadowItems(db)
  const main = db.withSchema('main')
  await main.insertInto('items').values({ name: 'main via withSchema' }).execute()
  return main.selectFrom('items').select(['id', 'name']).orderBy('id').execute()
})

differential('temp: main. and temp. qualified sql reads', async (db) => {
  await shadowItems(db)
  const main = await sql`select name from main.items order by id`.execute(db)
  const temp = await sql`select name from temp.items order by id`.execute(db)
  return { main: main.rows, temp: temp.rows }
})

differential('temp: a join between the shadowing temp table and a main table', async (db) => {
  await shadowItems(db)
  await sql`insert into temp.items (id, name) values (1, 'temp apple')`.execute(db)
  return db
    .selectFrom('tags')
    .innerJoin('items', 'items.id', 'tags.item_id')
    .select(['tags.label', 'items.name'])
    .orderBy('tags.id')
    .execute()
})

differential('temp: sql.table("items") resolves to the shadowing temp table', async (db) => {
  await shadowItems(db)
  return (await sql`select id, name from ${sql.table('items')} order by id`.execute(db)).rows
})

differential('temp: a raw unqualified sql select resolves to the shadowing temp table', async (db) => {
  await shadowItems(db)
  return (await sql`select id, name from items order by id`.execute(db)).rows
})

differential('temp: a temporary view over main tables', async (db) => {
  await db.schema
    .createView('heavy')
    .temporary()
    .as(db.selectFrom('items').select(['name', 'qty']).where('qty', '>', 5))
    .execute()
  return db
    .selectFrom('heavy' as any)
    .selectAll()
    .orderBy('name')
    .execute()
})

differential('temp: a temp trigger on a main table writes a temp log', async (db) => {
  await sql`create temp table audit (item text)`.execute(db)
  await sql`create temp trigger items_audit after insert on main.items begin insert into audit values (new.name); end`.execute(
    db,
  )
  await db.insertInto('items').values({ name: 'raspberry' }).execute()
  return (await sql`select item from temp.audit`.execute(db)).rows
})

differential('temp: a temp table created through sql, used through the builder', async (db) => {
  await sql`create temp table pairs (k text primary key, v integer)`.execute(db)
  await db
    .insertInto('pairs' as any)
    .values({ k: 'x', v: 1 })
    .onConflict((oc: any) => oc.column('k').doUpdateSet({ v: 2 }))
    .execute()
  await db
    .insertInto('pairs' as any)
    .values({ k: 'x', v: 1 })
    .onConflict((oc: any) => oc.column('k').doUpdateSet({ v: 2 }))
    .execute()
  return db
    .selectFrom('pairs' as any)
    .selectAll()
    .execute()
})

differential('temp: insert … select from a main table into a temp table', async (db) => {
  await sql`create temp table fruit_names (name text)`.execute(db)
  await db
    .insertInto('fruit_names' as any)
    .columns(['name'])
    .expression(db.selectFrom('items').select('name').where('category', '=', 'fruit'))
    .execute()
  return rowsOf(db, 'fruit_names' as keyof DB)
})
