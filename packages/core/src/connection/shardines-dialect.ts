import { type Dialect, type Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely'
import { ShardinesDriver } from './shardines-driver.js'

const driver = new ShardinesDriver()

/** The adapter of every Shardines Kysely instance (SQLite's). */
export const SHARDINES_ADAPTER = new SqliteAdapter()

/** The Kysely dialect behind every Shardines instance: SQLite, with connections supplied per scope. */
const dialect: Dialect = Object.freeze({
  createDriver: () => driver,
  createQueryCompiler: () => new SqliteQueryCompiler(),
  createAdapter: () => SHARDINES_ADAPTER,
  createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
})

/** What every Shardines Kysely instance is built from besides its executor. */
export const KYSELY_PARTS = Object.freeze({ config: Object.freeze({ dialect }), dialect, driver })
