// Error shapes on t.db against bare Kysely: the same statements fail with the
// same SQLite code (`SQLITE_CONSTRAINT_UNIQUE` …) and message (`main.`
// qualifiers aside), and leave the same rows. Foreign keys are ON on both.
import { CompiledQuery, NoResultError, sql } from 'kysely'
import { differential, outcome, rowsOf } from './harness.js'

differential(
  'error: select from a missing table',
  async (db) => {
    await db
      .selectFrom('missing' as any)
      .selectAll()
      .execute()
  },
  { rejects: /^SQLITE_ERROR: no such table: missing$/ },
)

differential(
  'error: insert into a missing table',
  async (db) => {
    await db
      .insertInto('missing' as any)
      .values({ x: 1 })
      .execute()
  },
  { rejects: /^SQLITE_ERROR: no such table: missing$/ },
)

differential(
  'error: a missing column',
  async (db) => {
    await db
      .selectFrom('items')
      .select('nope' as any)
      .execute()
  },
  { rejects: /^SQLITE_ERROR: no such column: "?nope"?/ },
)

differential(
  'error: unique constraint (SQLITE_CONSTRAINT_UNIQUE)',
  async (db) => {
    await db.insertInto('items').values({ name: 'apple' }).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_UNIQUE: UNIQUE constraint failed: items\.name$/ },
)

differential(
  'error: primary key (SQLITE_CONSTRAINT_PRIMARYKEY)',
  async (db) => {
    await db.insertInto('counters').values({ name: 'a', value: 0 }).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_PRIMARYKEY: UNIQUE constraint failed: counters\.name$/ },
)

differential(
  'error: not null (SQLITE_CONSTRAINT_NOTNULL)',
  async (db) => {
    await db
      .insertInto('items')
      .values({ name: null as any })
      .execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_NOTNULL: NOT NULL constraint failed: items\.name$/ },
)

differential(
  'error: foreign key on insert (SQLITE_CONSTRAINT_FOREIGNKEY)',
  async (db) => {
    await db.insertInto('tags').values({ item_id: 404, label: 'orphan' }).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_FOREIGNKEY: FOREIGN KEY constraint failed$/ },
)

differential(
  'error: foreign key on update of the child',
  async (db) => {
    await db.updateTable('tags').set({ item_id: 404 }).where('id', '=', 1).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_FOREIGNKEY/ },
)

differential('error: foreign keys cascade a parent delete', async (db) => {
  await db.deleteFrom('items').where('id', '=', 1).execute()
  return rowsOf(db, 'tags')
})

differential(
  'error: a composite unique constraint',
  async (db) => {
    await db.insertInto('tags').values({ item_id: 1, label: 'sweet' }).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_UNIQUE: UNIQUE constraint failed: tags\.item_id, tags\.label$/ },
)

differential(
  'error: a check constraint (SQLITE_CONSTRAINT_CHECK)',
  async (db) => {
    await db.schema
      .createTable('positive')
      .addColumn('n', 'integer', (c) => c.check(sql`n > 0`))
      .execute()
    await db
      .insertInto('positive' as any)
      .values({ n: -1 })
      .execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_CHECK: CHECK constraint failed: n > 0$/ },
)

differential(
  'error: a trigger RAISE(ABORT) (SQLITE_CONSTRAINT_TRIGGER)',
  async (db) => {
    await sql`create trigger no_durian before insert on items when new.name = 'durian' begin select raise(abort, 'no durians'); end`.execute(
      db,
    )
    await db.insertInto('items').values({ name: 'durian' }).execute()
  },
  { rejects: /^SQLITE_CONSTRAINT_TRIGGER: no durians$/ },
)

differential(
  'error: a datatype mismatch on an integer primary key (SQLITE_MISMATCH)',
  async (db) => {
    await db
      .insertInto('items')
      .values({ id: 'not a number' as any, name: 'x' })
      .execute()
  },
  { rejects: /^SQLITE_MISMATCH/ },
)

differential(
  'error: a syntax error in sql',
  async (db) => {
    await sql`selec 1`.execute(db)
  },
  { rejects: /^SQLITE_ERROR: near "selec": syntax error$/ },
)

differential(
  'error: a syntax error in a sql.raw fragment inside the builder',
  async (db) => {
    await db.selectFrom('items').select(sql.raw<number>('1 +* 2').as('x')).execute()
  },
  { rejects: /^SQLITE_ERROR: near "\*": syntax error$/ },
)

differential(
  'error: a syntax error through executeQuery(CompiledQuery.raw)',
  async (db) => {
    await db.executeQuery(CompiledQuery.raw('select from where'))
  },
  { rejects: /syntax error/ },
)

differential(
  'error: binding an object as a parameter',
  async (db) => {
    await db
      .insertInto('log')
      .values({ message: { not: 'bindable' } as any })
      .execute()
  },
  { rejects: /can only bind/ },
)

differential(
  'error: binding a Date as a parameter',
  async (db) => {
    await db
      .insertInto('log')
      .values({ message: new Date(0) as any })
      .execute()
  },
  { rejects: /can only bind/ },
)

differential(
  'error: binding a boolean as a parameter',
  async (db) => {
    await db
      .selectFrom('items')
      .selectAll()
      .where('qty', '=', true as any)
      .execute()
  },
  { rejects: /can only bind/ },
)

differential('error: a Buffer parameter binds as a blob', async (db) => {
  await db
    .insertInto('log')
    .values({ message: Buffer.from('bytes') as any })
    .execute()
  return db
    .selectFrom('log')
    .select((eb) => [eb.fn<string>('typeof', ['message']).as('type'), 'message'])
    .execute()
})

differential(
  'error: integer overflow in an expression',
  async (db) => {
    await sql`select abs(-9223372036854775808) as x`.execute(db)
  },
  { rejects: /^SQLITE_ERROR: integer overflow$/ },
)

differential(
  'error: executeTakeFirstOrThrow without a row throws NoResultError',
  async (db) => {
    await db.selectFrom('items').selectAll().where('id', '=', 999).executeTakeFirstOrThrow()
  },
  { rejects: /no result$/ },
)

differential('error: executeTakeFirstOrThrow with a custom error', async (db) => {
  class Missing extends Error {
    override name = 'Missing'
  }
  const custom = await outcome(
    db
      .selectFrom('items')
      .selectAll()
      .where('id', '=', 999)
      .executeTakeFirstOrThrow(() => new Missing('item 999')),
  )
  const isNoResult = await db
    .selectFrom('items')
    .selectAll()
    .where('id', '=', 999)
    .executeTakeFirstOrThrow()
    .catch((e) => e instanceof NoResultError)
  return { custom, isNoResult }
})

differential('error: a multi-row insert with one duplicate inserts nothing', async (db) => {
  const failed = await outcome(
    db
      .insertInto('items')
      .values([{ name: 'new one' }, { name: 'banana' }, { name: 'new two' }])
      .execute(),
  )
  return { failed, items: await db.selectFrom('items').select('name').orderBy('id').execute() }
})

differential('error: an update violating unique changes nothing', async (db) => {
  const failed = await outcome(db.updateTable('items').set({ name: 'apple' }).where('id', '>', 3).execute())
  return { failed, items: await db.selectFrom('items').select('name').orderBy('id').execute() }
})

differential(
  'error: writing to a view',
  async (db) => {
    await db
      .insertInto('fruit' as any)
      .values({ name: 'x' })
      .execute()
  },
  { rejects: /^SQLITE_ERROR: cannot modify fruit because it is a view$/ },
)

differential('error: after a failed statement the next one runs normally', async (db) => {
  const failed = await outcome(db.insertInto('items').values({ name: 'carrot' }).execute())
  await db.insertInto('log').values({ message: 'after failure' }).execute()
  return { failed, log: await rowsOf(db, 'log') }
})

differential(
  'error: creating a table that exists',
  async (db) => {
    await db.schema.createTable('items').addColumn('x', 'integer').execute()
  },
  { rejects: /^SQLITE_ERROR: table "?items"? already exists$/ },
)

differential('error: createTable … ifNotExists on an existing table is fine', async (db) => {
  await db.schema.createTable('items').ifNotExists().addColumn('x', 'integer').execute()
  return db.selectFrom('items').select('id').orderBy('id').execute()
})

differential(
  'error: dropping a missing table',
  async (db) => {
    await db.schema.dropTable('missing').execute()
  },
  { rejects: /^SQLITE_ERROR: no such table: missing$/ },
)

differential(
  'error: a wrong number of parameters for raw sql',
  async (db) => {
    await db.executeQuery(CompiledQuery.raw('select ? as a, ? as b', [1]))
  },
  { rejects: /Too few parameter values/ },
)
