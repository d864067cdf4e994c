// Kysely's own `Migrator` run on t.db against bare Kysely. On SQLite the
// Migrator takes no lock of its own (SqliteAdapter's migration lock is a
// no-op) and runs no transaction (SQLite's adapter reports no transactional
// DDL): it relies on `db.connection()` being exclusive, so concurrent
// migrateToLatest() calls apply each migration once. The bookkeeping tables
// get their own names here, apart from the ones Shardines keeps.
import { type Kysely, sql } from 'kysely'
import { type Migration, type MigrationResultSet, Migrator, NO_MIGRATIONS } from '../helpers/kysely-migration.js'
import { type DB, delay, describeError, differential, outcomes, rowsOf } from './harness.js'

/** A Migrator over `migrations` with its tables named apart from Shardines' own `kysely_migration`. */
function migrator(
  db: Kysely<DB>,
  migrations: Record<string, Migration>,
  options: { disableTransactions?: boolean } = {},
) {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'app_migration',
    migrationLockTableName: 'app_migration_lock',
    ...options,
  })
}

/** A result set made comparable: errors described, results as is. */
function settled(result: MigrationResultSet) {
  return {
    error: result.error === undefined ? undefined : describeError(result.error),
    results: result.results,
  }
}

/** Two migrations that count their runs in `calls`. */
function counted(calls: { up: number; down: number }, pause = 0): Record<string, Migration> {
  return {
    '2024_01_notes': {
      async up(db) {
        calls.up++
        await db.schema
          .createTable('notes')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('body', 'text', (c) => c.notNull())
          .execute()
        if (pause > 0) await delay(pause)
        await db
          .insertInto('notes' as never)
          .values({ body: 'first note' } as never)
          .execute()
      },
      async down(db) {
        calls.down++
        await db.schema.dropTable('notes').execute()
      },
    },
    '2024_02_items_price': {
      async up(db) {
        await db.schema.alterTable('items').addColumn('price', 'integer').execute()
        await db
          .updateTable('items' as never)
          .set({ price: 100 } as never)
          .execute()
      },
      async down(db) {
        await db.schema.alterTable('items').dropColumn('price').execute()
      },
    },
  }
}

differential('migrator: migrateToLatest applies every migration and reports them', async (db) => {
  const calls = { up: 0, down: 0 }
  const result = settled(await migrator(db, counted(calls)).migrateToLatest())
  return { result, calls, notes: await rowsOf(db, 'notes' as keyof DB) }
})

differential('migrator: a second migrateToLatest finds nothing to do', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls))
  await m.migrateToLatest()
  return { again: settled(await m.migrateToLatest()), calls }
})

differential('migrator: getMigrations lists what ran', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls))
  const before = (await m.getMigrations()).map((info) => [info.name, info.executedAt !== undefined])
  await m.migrateUp()
  const after = (await m.getMigrations()).map((info) => [info.name, info.executedAt !== undefined])
  return { before, after }
})

differential('migrator: migrateUp and migrateDown step one at a time', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls))
  const up1 = settled(await m.migrateUp())
  const up2 = settled(await m.migrateUp())
  const down1 = settled(await m.migrateDown())
  return { up1, up2, down1, calls, columns: (await sql`select name from pragma_table_info('items')`.execute(db)).rows }
})

differential('migrator: migrateTo(NO_MIGRATIONS) undoes everything', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls))
  await m.migrateToLatest()
  const result = settled(await m.migrateTo(NO_MIGRATIONS))
  return { result, calls, tables: (await db.introspection.getTables()).map((t) => t.name) }
})

differential('migrator: migrateTo a named migration', async (db) => {
  const calls = { up: 0, down: 0 }
  const result = settled(await migrator(db, counted(calls)).migrateTo('2024_01_notes'))
  return { result, calls }
})

differential(
  'migrator: a failing migration is reported; the one before it stays (no transaction on SQLite)',
  async (db) => {
    const result = settled(
      await migrator(db, {
        '1_ok': {
          async up(db) {
            await db.schema.createTable('kept_if_committed').addColumn('x', 'integer').execute()
          },
        },
        '2_fails': {
          async up(db) {
            await db
              .insertInto('items' as never)
              .values({ name: 'apple' } as never)
              .execute()
          },
        },
      }).migrateToLatest(),
    )
    return { result, tables: (await db.introspection.getTables()).map((t) => t.name) }
  },
)

differential('migrator: a failing migration with disableTransactions keeps the ones before it', async (db) => {
  const result = settled(
    await migrator(
      db,
      {
        '1_ok': {
          async up(db) {
            await db.schema.createTable('kept').addColumn('x', 'integer').execute()
          },
        },
        '2_fails': {
          async up() {
            throw new Error('migration 2 failed')
          },
        },
      },
      { disableTransactions: true },
    ).migrateToLatest(),
  )
  return { result, tables: (await db.introspection.getTables()).map((t) => t.name) }
})

differential('migrator: a migration using raw sql', async (db) => {
  const result = settled(
    await migrator(db, {
      '1_raw': {
        async up(db) {
          await sql`create table raw_made (id integer primary key, v text)`.execute(db)
          await sql`insert into raw_made (v) values ('r')`.execute(db)
        },
      },
    }).migrateToLatest(),
  )
  return { result, rows: await rowsOf(db, 'raw_made' as keyof DB) }
})

differential('migrator: five concurrent migrateToLatest() calls run each up() once', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls, 5))
  const results = await outcomes(Array.from({ length: 5 }, () => m.migrateToLatest().then(settled)))
  return { results, calls, notes: await rowsOf(db, 'notes' as keyof DB) }
})

differential('migrator: migrateToLatest and migrateDown started together run one after the other', async (db) => {
  const calls = { up: 0, down: 0 }
  const m = migrator(db, counted(calls, 5))
  const [latest, down] = await outcomes([m.migrateToLatest().then(settled), m.migrateDown().then(settled)])
  return { latest, down, calls, tables: (await db.introspection.getTables()).map((t) => t.name) }
})

differential('migrator: five Migrators on the same db, started together', async (db) => {
  const calls = { up: 0, down: 0 }
  const migrations = counted(calls, 3)
  const results = await outcomes(
    Array.from({ length: 5 }, () => migrator(db, migrations).migrateToLatest().then(settled)),
  )
  return { results, calls }
})

differential(
  'migrator: a plain write started during a migration is not rolled back with a failed migration',
  async (db) => {
    const m = migrator(db, {
      '1_slow_then_fail': {
        async up(db) {
          await db.schema.createTable('half_made').addColumn('x', 'integer').execute()
          await delay(15)
          throw new Error('late failure')
        },
      },
    })
    const running = m.migrateToLatest().then(settled)
    await delay(5)
    const plain = await outcomes([db.insertInto('log').values({ message: 'during migration' }).execute()])
    return { migration: await running, plain, log: await rowsOf(db, 'log') }
  },
)

differential('migrator: a migration that runs its own transaction, which fails, leaves nothing of it', async (db) => {
  const result = settled(
    await migrator(db, {
      '1_own_transaction': {
        async up(db) {
          await db.transaction().execute(async (trx) => {
            await trx.schema.createTable('inside_trx').addColumn('x', 'integer').execute()
            await trx
              .insertInto('counters' as never)
              .values({ name: 'a', value: 0 } as never)
              .execute()
          })
        },
      },
    }).migrateToLatest(),
  )
  return { result, tables: (await db.introspection.getTables()).map((t) => t.name) }
})
