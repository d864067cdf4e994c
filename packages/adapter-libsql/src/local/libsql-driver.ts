import { createRequire } from 'node:module'
import type {
  DriverConnection,
  DriverOpenOptions,
  DriverRunResult,
  DriverStatement,
  SqliteDriver,
} from '@shardines/adapter-sqlite/engine'
import { bindable, fileUri, hasTail } from '../sql-values.js'
import { vacuumInto } from './vacuum.js'

/** What `libsql`'s Database and Statement offer (its own types are loose); only what is used here. */
interface LibsqlStatement {
  readonly reader: boolean
  run(parameters: unknown): { changes: number; lastInsertRowid: number | bigint }
  get(parameters: unknown): unknown
  all(parameters: unknown): unknown[]
  raw(toggle?: boolean): LibsqlStatement
}

interface LibsqlDatabase {
  readonly open: boolean
  readonly inTransaction: boolean
  prepare(sql: string): LibsqlStatement
  exec(sql: string): void
  close(): void
}

type LibsqlConstructor = new (
  path: string,
  options?: { timeout?: number; encryptionKey?: string; syncUrl?: string; authToken?: string },
) => LibsqlDatabase

let Libsql: LibsqlConstructor | undefined

function loadLibsql(): LibsqlConstructor {
  if (Libsql === undefined) {
    try {
      Libsql = createRequire(import.meta.url)('libsql') as LibsqlConstructor
    } catch (error) {
      throw new Error('libsqlStorage({ mode: "local" }) needs the libsql package: npm i libsql', { cause: error })
    }
  }
  return Libsql
}

/** SQLite's primary result codes by number, for errors libSQL reports only as a number. */
const PRIMARY_CODES: Record<number, string> = {
  5: 'SQLITE_BUSY',
  8: 'SQLITE_READONLY',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  23: 'SQLITE_AUTH',
  26: 'SQLITE_NOTADB',
}

/**
 * libSQL reports a failed open as `ConnectionFailed("…: 14")` with no code:
 * the same failure with SQLite's code name, as better-sqlite3 reports it, so
 * the storage can tell a missing file or descriptor exhaustion from the rest.
 */
function openError(error: unknown, file: string): Error {
  const cause = error as { code?: unknown; message?: unknown }
  if (typeof cause.code === 'string' && cause.code !== '') return error as Error
  const message = String(cause.message ?? error)
  const found = /:\s*(\d+)\)?\s*"?\)?$/.exec(message)
  const number = found === null ? undefined : Number(found[1])
  const code = number === undefined ? 'SQLITE_CANTOPEN' : (PRIMARY_CODES[number & 0xff] ?? 'SQLITE_ERROR')
  return Object.assign(new Error(`unable to open database file ${file}: ${message}`, { cause: error }), { code })
}

/** A row as better-sqlite3 gives it: libSQL's `_metadata` key removed, blobs as Buffers. */
function cleanRow(row: unknown): unknown {
  if (row === null || typeof row !== 'object') return row
  if (Array.isArray(row)) {
    for (let i = 0; i < row.length; i++) if (row[i] instanceof ArrayBuffer) row[i] = Buffer.from(row[i] as ArrayBuffer)
    return row
  }
  const record = row as Record<string, unknown>
  if ('_metadata' in record) delete record._metadata
  for (const key in record)
    if (record[key] instanceof ArrayBuffer) record[key] = Buffer.from(record[key] as ArrayBuffer)
  return record
}

/**
 * Whether a program writes nothing, as SQLite's `sqlite3_stmt_readonly`
 * decides it (libSQL does not expose that call): no `Transaction` that
 * writes, no `Vacuum`, no `JournalMode`.
 */
function programIsReadOnly(rows: unknown[]): boolean {
  for (const row of rows as unknown[][]) {
    const opcode = row[1]
    if (opcode === 'Transaction' && row[3] !== 0) return false
    if (opcode === 'Vacuum' || opcode === 'JournalMode') return false
  }
  return true
}

const EXPLAIN = /^\s*explain\b/i

class Statement implements DriverStatement {
  readonly source: string
  readonly reader: boolean
  readonly #statement: LibsqlStatement
  readonly #connection: Connection
  #readonly: boolean | undefined
  #raw = false
  #pluck = false
  readonly #explain: boolean

  constructor(connection: Connection, statement: LibsqlStatement, source: string) {
    this.#connection = connection
    this.#statement = statement
    this.source = source
    this.reader = statement.reader
    this.#explain = EXPLAIN.test(source)
  }

  get readonly(): boolean {
    this.#readonly ??= programIsReadOnly(this.#connection.explain(this.source))
    return this.#readonly
  }

  run(...parameters: unknown[]): DriverRunResult {
    const { changes, lastInsertRowid } = this.#statement.run(bindable(parameters))
    return { changes, lastInsertRowid }
  }

  get(...parameters: unknown[]): unknown {
    const row = cleanRow(this.#statement.get(bindable(parameters)))
    if (this.#pluck) return row === undefined ? undefined : (row as unknown[])[0]
    return row
  }

  all(...parameters: unknown[]): unknown[] {
    const bound = bindable(parameters)
    const rows = this.#statement.all(bound)
    // libSQL leaves an EXPLAIN of a write unreset after listing it, and SQLite then counts it
    // as a writer in progress: every COMMIT on the connection fails until it is finalized.
    // `get()` resets the statement when it returns (re-listing a program changes nothing).
    if (this.#explain) this.#statement.get(bound)
    if (this.#pluck) return rows.map((row) => (row as unknown[])[0])
    for (let i = 0; i < rows.length; i++) cleanRow(rows[i])
    return rows
  }

  raw(toggle = true): this {
    this.#raw = toggle
    this.#statement.raw(toggle || this.#pluck)
    return this
  }

  pluck(toggle = true): this {
    this.#pluck = toggle
    this.#statement.raw(toggle || this.#raw)
    return this
  }
}

class Connection implements DriverConnection {
  readonly #db: LibsqlDatabase

  constructor(db: LibsqlDatabase) {
    this.#db = db
  }

  get open(): boolean {
    return this.#db.open
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction
  }

  prepare(sql: string): Statement {
    if (hasTail(sql)) throw new RangeError('The supplied SQL string contains more than one statement')
    return new Statement(this, this.#db.prepare(sql), sql)
  }

  /** The compiled program of `sql` as raw rows (addr, opcode, p1, p2, p3, p4, p5, comment). */
  explain(sql: string): unknown[] {
    return this.prepare(`explain ${sql}`).raw(true).all()
  }

  exec(sql: string): void {
    this.#db.exec(sql)
  }

  pragma(source: string, options?: { readonly simple?: boolean }): unknown {
    const statement = this.prepare(`pragma ${source}`)
    if (options?.simple === true) return statement.pluck().get()
    return statement.all()
  }

  close(): void {
    if (this.#db.open) this.#db.close()
  }
}

/**
 * An encryption key for every database of the storage, or one per database:
 * `(name) => key` gets `'apex'` or a tenant id and returns its key, or
 * undefined for a database that is not encrypted. Keys are passed to libSQL
 * only (as options or bound parameters), never put in messages or logs.
 */
export type EncryptionKeys = string | ((name: string) => string | undefined)

/** Options every libSQL connection of one storage is opened with. */
export interface LibsqlConnectionOptions {
  /** How long a backup's read waits for a writer's lock, in milliseconds. */
  readonly busyTimeout?: number | undefined
  /** libSQL's encryption at rest (see {@link EncryptionKeys}). */
  readonly encryptionKey?: EncryptionKeys | undefined
}

/** The key of database `name` (undefined for private in-memory databases and unencrypted ones). */
function keyResolver(keys: EncryptionKeys | undefined): (name: string | undefined) => string | undefined {
  if (keys === undefined) return () => undefined
  if (typeof keys === 'string') return (name) => (name === undefined ? undefined : keys)
  return (name) => {
    if (name === undefined) return undefined
    const key = keys(name)
    if (key !== undefined && (typeof key !== 'string' || key.length === 0)) {
      throw new TypeError(
        `libsqlStorage({ encryptionKey }): the key resolver gave "${name}" something that is not a non-empty string.`,
      )
    }
    return key
  }
}

/** `'…'` with quotes doubled: a key in `pragma rekey` (which takes no bound parameter). */
function quoteKey(key: string): string {
  return `'${key.replaceAll("'", "''")}'`
}

/**
 * The libSQL engine for the SQLite-family storage: `libsql`'s synchronous,
 * better-sqlite3-like API on local files, made to behave as better-sqlite3
 * does where the storage relies on it (rows without `_metadata`, blobs as
 * Buffers, unbindable values refused instead of aborting the process,
 * `fileMustExist` and `readonly` through URI filenames, a second statement in
 * one string refused), with libSQL's encryption at rest per database.
 */
export function libsqlDriver(options: LibsqlConnectionOptions = {}): SqliteDriver {
  const Database = loadLibsql()
  const keyOf = keyResolver(options.encryptionKey)
  const open = (file: string, openOptions: DriverOpenOptions = {}): Connection => {
    const memory = file === ':memory:'
    const target = memory
      ? file
      : fileUri(file, openOptions.readonly === true ? 'ro' : openOptions.fileMustExist === true ? 'rw' : 'rwc')
    const key = memory ? undefined : keyOf(openOptions.name)
    try {
      const db = new Database(target, {
        timeout: openOptions.timeout ?? 5000,
        ...(key === undefined ? {} : { encryptionKey: key }),
      })
      return new Connection(db)
    } catch (error) {
      throw openError(error, file)
    }
  }
  return Object.freeze({
    name: options.encryptionKey === undefined ? 'libsql' : 'libsql-encrypted',
    open,
    backup(_source: DriverConnection, sourceFile: string, dest: string, name: string): Promise<void> {
      // libSQL has no online backup API: VACUUM INTO copies the database as one read transaction,
      // on a worker thread so that the event loop (and other tenants' writes) go on meanwhile.
      // The copy is encrypted with the same key as the database.
      return vacuumInto({
        via: 'libsql',
        source: fileUri(sourceFile, 'ro'),
        dest,
        busyTimeout: options.busyTimeout ?? 5000,
        encryptionKey: keyOf(name),
      })
    },
    // libSQL opens URI filenames: SQLite itself then refuses writes to what is attached read-only.
    attachLocation: (file: string, readOnly: boolean) => fileUri(file, readOnly ? 'ro' : 'rw'),
    attachKey: (name: string) => keyOf(name),
    adoptCopy(file: string, fromName: string, toName: string): void {
      const from = keyOf(fromName)
      const to = keyOf(toName)
      if (from === to) return
      if (from === undefined || to === undefined) {
        throw new TypeError(
          `Cannot fork "${fromName}" into "${toName}": one is encrypted and the other is not (the key resolver gives one a key and the other none).`,
        )
      }
      // The copy is encrypted with the source's key: re-encrypt it with the new tenant's.
      const copy = open(file, { fileMustExist: true, name: fromName })
      try {
        copy.exec(`pragma rekey = ${quoteKey(to)}`)
      } finally {
        copy.close()
      }
    },
    rekey(file: string, name: string, previousKey: string, busyTimeout: number): void {
      const next = keyOf(name)
      if (next === undefined) {
        throw new TypeError(`the key resolver gives "${name}" no key to re-encrypt it with`)
      }
      let db: LibsqlDatabase | undefined
      try {
        db = new Database(fileUri(file, 'rw'), { timeout: busyTimeout, encryptionKey: previousKey })
      } catch (error) {
        throw openError(error, file)
      }
      try {
        try {
          db.prepare('select count(*) from sqlite_master').get([])
        } catch (error) {
          throw Object.assign(new Error('the previous key does not open its database'), {
            cause: error,
            code: (error as { code?: string }).code,
          })
        }
        db.exec(`pragma rekey = ${quoteKey(next)}`)
      } finally {
        db.close()
      }
    },
    workerModule: { url: import.meta.url, exportName: 'libsqlDriver' },
  })
}
