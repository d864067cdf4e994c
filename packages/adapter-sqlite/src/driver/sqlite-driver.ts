import { createRequire } from 'node:module'

/**
 * One prepared statement, as the SQLite-family storage uses it: the subset of
 * better-sqlite3's `Statement` that both better-sqlite3 and the libSQL
 * wrapper (`@shardines/adapter-libsql`) provide with the same behaviour.
 */
export interface DriverStatement {
  /** Whether the statement returns rows. */
  readonly reader: boolean
  /** `sqlite3_stmt_readonly`: the statement writes nothing. */
  readonly readonly: boolean
  readonly source: string
  run(...parameters: unknown[]): DriverRunResult
  get(...parameters: unknown[]): unknown
  all(...parameters: unknown[]): unknown[]
  raw(toggle?: boolean): this
  pluck(toggle?: boolean): this
}

export interface DriverRunResult {
  readonly changes: number
  readonly lastInsertRowid: number | bigint
}

/** One connection: the subset of better-sqlite3's `Database` the storage uses. */
export interface DriverConnection {
  readonly open: boolean
  readonly inTransaction: boolean
  prepare(sql: string): DriverStatement
  exec(sql: string): unknown
  pragma(source: string, options?: { readonly simple?: boolean }): unknown
  close(): unknown
}

/** How a connection is opened (better-sqlite3's constructor options). */
export interface DriverOpenOptions {
  /** Open read-only (writes fail with `SQLITE_READONLY`). */
  readonly readonly?: boolean
  /** Fail with `SQLITE_CANTOPEN` instead of creating the file. */
  readonly fileMustExist?: boolean
  /** SQLite's own busy wait, in milliseconds. */
  readonly timeout?: number
  /**
   * Whose database this is (`'apex'` or a tenant id; absent for private
   * in-memory databases), for a driver that opens each database its own way
   * (per-tenant encryption keys).
   */
  readonly name?: string
}

/**
 * An SQLite engine the file-based storage runs on: better-sqlite3 (this
 * package's `sqliteStorage`) or libSQL's `libsql` package
 * (`@shardines/adapter-libsql` in local mode). Everything engine-specific the
 * storage does goes through here; the rest (layout, pool, locks, lifecycle,
 * the statement guard's reader) is shared.
 */
export interface SqliteDriver {
  /** For messages: `'better-sqlite3'`, `'libsql'`. */
  readonly name: string
  /** Opens `file` (`':memory:'` for a private in-memory database). */
  open(file: string, options?: DriverOpenOptions): DriverConnection
  /**
   * A consistent copy of the main database of `source` (a private connection
   * to `sourceFile`, with the storage's busy timeout) at `dest`, a new file,
   * taken under one read lock. It must not hold the event loop for the copy.
   */
  backup(source: DriverConnection, sourceFile: string, dest: string, name: string): Promise<void>
  /**
   * What `ATTACH` is given for `file` (bound as a parameter). An engine with
   * URI filenames attaches `readOnly` databases with `mode=ro`, so SQLite
   * itself refuses writes to them, behind the statement guard.
   */
  attachLocation(file: string, readOnly: boolean): string
  /**
   * Optional: the encryption key `ATTACH … KEY ?` is given for the database
   * `name` (`'apex'` or a tenant id), bound as a parameter; undefined: none.
   */
  attachKey?(name: string): string | undefined
  /**
   * Optional: makes `file`, a fresh copy of `fromName`'s database, into one
   * `toName` can open (e.g. re-encrypts it with `toName`'s key), before a fork
   * publishes it.
   */
  adoptCopy?(file: string, fromName: string, toName: string): void
  /**
   * Optional: re-encrypts `file` (database `name`, encrypted with
   * `previousKey`) with the key the driver now gives `name`, as one
   * transaction, waiting up to `busyTimeout` ms for other connections' locks.
   * Throws when `previousKey` does not open it (nothing changed).
   */
  rekey?(file: string, name: string, previousKey: string, busyTimeout: number): void
  /**
   * A module a migration worker thread imports to get this driver back: its
   * URL and the name of an export that is a function returning the driver.
   */
  readonly workerModule: { readonly url: string; readonly exportName: string }
}

type BetterSqlite3 = new (
  file: string,
  options?: DriverOpenOptions,
) => DriverConnection & {
  backup(dest: string, options?: { progress?: () => number }): Promise<unknown>
}

let betterSqlite3: BetterSqlite3 | undefined

/** Loads better-sqlite3 on first use: an app on another engine never needs it installed. */
function loadBetterSqlite3(): BetterSqlite3 {
  if (betterSqlite3 === undefined) {
    try {
      betterSqlite3 = createRequire(import.meta.url)('better-sqlite3') as BetterSqlite3
    } catch (error) {
      throw new Error(
        'sqliteStorage() needs the better-sqlite3 package: install it next to @shardines/adapter-sqlite (npm i better-sqlite3).',
        { cause: error },
      )
    }
  }
  return betterSqlite3
}

let driver: SqliteDriver | undefined

/** The better-sqlite3 driver (loaded on first call). */
export function betterSqlite3Driver(): SqliteDriver {
  if (driver !== undefined) return driver
  const Database = loadBetterSqlite3()
  driver = Object.freeze({
    name: 'better-sqlite3',
    open: (file: string, options?: DriverOpenOptions) => new Database(file, options),
    async backup(source: DriverConnection, _sourceFile: string, dest: string, _name: string): Promise<void> {
      // All pages in one step, under one read lock: a stepwise copy restarts whenever another
      // connection commits, so it might never finish while a tenant keeps writing.
      await (source as InstanceType<BetterSqlite3>).backup(dest, { progress: () => 0x7fffffff })
    },
    // better-sqlite3's build has no URI filenames: the statement guard alone keeps attachments read-only.
    attachLocation: (file: string) => file,
    workerModule: { url: import.meta.url, exportName: 'betterSqlite3Driver' },
  })
  return driver
}
