import type { Dialect, Kysely } from 'kysely'
import { createEngineIntrospector, ENGINE_ADAPTER, EngineQueryCompiler } from '../storage/sqlite-engine.js'
import { ShardinesDriver } from './shardines-driver.js'

const driver = new ShardinesDriver()

/** The Kysely dialect behind every Shardines instance: the engine's (SQLite's), with connections supplied per scope. */
const dialect: Dialect = Object.freeze({
  createDriver: () => driver,
  createQueryCompiler: () => new EngineQueryCompiler(),
  createAdapter: () => ENGINE_ADAPTER,
  createIntrospector: (db: Kysely<unknown>) => createEngineIntrospector(db),
})

/** What every Shardines Kysely instance is built from besides its executor. */
export const KYSELY_PARTS = Object.freeze({ config: Object.freeze({ dialect }), dialect, driver })
