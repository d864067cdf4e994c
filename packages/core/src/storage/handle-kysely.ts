import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely'
import { INTERNAL_GUARD } from '../guard/statement-guard.js'
import {
  BEGIN_DEFERRED,
  COMMIT,
  compileSavepoint,
  createEngineIntrospector,
  ENGINE_ADAPTER,
  EngineQueryCompiler,
  ROLLBACK,
} from './sqlite-engine.js'
import type { StorageHandle } from './storage-adapter.js'

/**
 * A plain Kysely instance (SQLite dialect, introspection included) whose one
 * connection is `handle`: every statement runs as `handle.executeQuery(query, guard)`
 * under core's internal guard policy, which refuses nothing. It is for handles
 * the caller owns, such as a scratch handle from `storage.openScratch()` that
 * a tool (e.g. `@shardines/codegen`) migrated and now introspects: there is no
 * tenant scope, no ATTACH compiler and no busy retry. Statements and
 * transactions queue on the one connection, as with Kysely's own SQLite
 * driver. `db.destroy()` leaves the handle open: its owner closes it.
 *
 * @example
 * ```ts
 * const scratch = await storage.openScratch()
 * try {
 *   const db = kyselyOnHandle(scratch)
 *   await db.schema.createTable('notes').addColumn('id', 'integer', (c) => c.primaryKey()).execute()
 *   const tables = await db.introspection.getTables() // [{ name: 'notes', columns: [...], ... }]
 * } finally {
 *   await scratch.close()
 * }
 * ```
 */
export function kyselyOnHandle<DB = any>(handle: StorageHandle): Kysely<DB> {
  const driver = new HandleDriver(handle)
  const dialect: Dialect = {
    createDriver: () => driver,
    createQueryCompiler: () => new EngineQueryCompiler(),
    createAdapter: () => ENGINE_ADAPTER,
    createIntrospector: (db) => createEngineIntrospector(db),
  }
  return new Kysely<DB>({ dialect })
}

/** The handle as Kysely's one connection; statements stream as one buffered chunk per row. */
class HandleConnection implements DatabaseConnection {
  readonly #handle: StorageHandle
  constructor(handle: StorageHandle) {
    this.#handle = handle
  }
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#handle.executeQuery<R>(query, INTERNAL_GUARD)
  }
  async *streamQuery<R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const { rows } = await this.executeQuery<R>(query)
    for (const row of rows) yield { rows: [row] }
  }
}

/** Like Kysely's `SqliteDriver`: one connection, lent to one user at a time. */
class HandleDriver implements Driver {
  readonly #connection: HandleConnection
  /** Settles when the current user releases the connection; undefined when it is free. */
  #busy: Promise<void> | undefined
  #free: (() => void) | undefined

  constructor(handle: StorageHandle) {
    this.#connection = new HandleConnection(handle)
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.#busy !== undefined) await this.#busy
    this.#busy = new Promise((resolve) => {
      this.#free = resolve
    })
    return this.#connection
  }
  async releaseConnection(): Promise<void> {
    const free = this.#free
    this.#busy = undefined
    this.#free = undefined
    free?.()
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(BEGIN_DEFERRED))
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(COMMIT))
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(ROLLBACK))
  }
  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await connection.executeQuery(compileSavepoint('savepoint', name, compile))
  }
  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await connection.executeQuery(compileSavepoint('rollback to', name, compile))
  }
  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']) {
    await connection.executeQuery(compileSavepoint('release', name, compile))
  }
  /** The handle belongs to whoever opened it: nothing to close here. */
  async destroy(): Promise<void> {}
}
