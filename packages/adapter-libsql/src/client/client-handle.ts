import {
  Does,
  type GuardPolicy,
  judgeStatement,
  type ProgramReader,
  type ProgramStep,
  refuseStatement,
  type SchemaObject,
  type ScratchHandle,
  StatementRefusedError,
  type StatementVerdict,
  StorageError,
  type StorageLocation,
} from '@shardines/core'
import type { CompiledQuery, QueryResult } from 'kysely'
import { bindValue, hasTail } from '../sql-values.js'

/** What the handle needs of `@libsql/client`'s `Client` and `Transaction` (structural, so tests can wrap them). */
export interface ClientLike {
  execute(statement: { sql: string; args: unknown[] }): Promise<ResultSetLike>
  transaction(mode: 'write' | 'read' | 'deferred'): Promise<TransactionLike>
  close(): void
  readonly closed: boolean
}

export interface TransactionLike {
  execute(statement: { sql: string; args: unknown[] }): Promise<ResultSetLike>
  commit(): Promise<void>
  rollback(): Promise<void>
  close(): void
}

export interface ResultSetLike {
  readonly columns: readonly string[]
  readonly rows: ArrayLike<ArrayLike<unknown>>
  readonly rowsAffected: number
  readonly lastInsertRowid: bigint | undefined
}

/** How a {@link ClientHandle} waits for other connections' locks. */
export interface ClientHandleOptions {
  /** How long a COMMIT waits (natively) for readers' locks, in ms: the storage's busy timeout. */
  readonly commitWait: number
  /** Every other statement's native wait (core retries the rest asynchronously). */
  readonly nativeWait: number
  readonly onClose?: (() => void) | undefined
}

/** Verdicts judged on clean connections, shared by the process; oldest dropped beyond the bound. */
const CLEAN_VERDICTS = new Map<string, StatementVerdict>()
const CLEAN_VERDICTS_MAX = 4096

function rememberClean(verdict: StatementVerdict): void {
  if (CLEAN_VERDICTS.size >= CLEAN_VERDICTS_MAX) {
    const oldest = CLEAN_VERDICTS.keys().next().value
    if (oldest !== undefined) CLEAN_VERDICTS.delete(oldest)
  }
  CLEAN_VERDICTS.set(verdict.sql, verdict)
}

/** Thrown by the first, text-only pass of a verdict when the statement's program is needed. */
const NEED_PROGRAM = Symbol('need program')

/** Core's own transaction control (never a user's: the guard refuses those). */
const TRANSACTION_CONTROL = /^\s*(begin|commit|end|rollback)\b(?!\s+to\b)/i
const EXPLAIN = /^\s*explain\b/i
/** An internal statement that may create temp objects (noted as leftovers, to be reset). */
const MENTIONS_TEMP = /\btemp(orary)?\b/i

/** A row as better-sqlite3 gives it: a plain object by column name, blobs as Buffers. */
function plainRow(columns: readonly string[], row: ArrayLike<unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (let i = 0; i < columns.length; i++) {
    const value = row[i]
    out[columns[i] as string] = value instanceof ArrayBuffer ? Buffer.from(value) : value
  }
  return out
}

/**
 * One tenant's (or apex's) database through `@libsql/client`: asynchronous,
 * so every operation is queued and runs alone, in call order (the contract's
 * "statements on one handle never interleave"). The client must have one
 * connection (`concurrency: 1`), so that attachments, temp objects and
 * transactions all live on it. Core's own `BEGIN`/`COMMIT`/`ROLLBACK` become
 * the client's interactive transaction, which also works against sqld and
 * Turso, where each plain `execute` may run on another stream.
 */
export class ClientHandle implements ScratchHandle {
  readonly name: string
  readonly #client: ClientLike
  /**
   * Opens a second client to the same database, on which the guard reads
   * programs (`EXPLAIN`): libSQL leaves an `EXPLAIN` of a write unreset after
   * listing it, and SQLite then fails every COMMIT on that connection
   * ("SQL statements in progress") until the statement is garbage-collected.
   * The mirror never writes and never reads a table (a read there would keep
   * its lock while an EXPLAIN is active), so what it leaves blocks nothing.
   * It attaches what this handle attaches and replays its temp DDL, so names
   * resolve there as they do here.
   */
  readonly #openMirror: () => ClientLike
  #mirror: ClientLike | undefined
  readonly #attached = new Set<string>()
  /** What each attached schema was attached from (the mirror attaches the same). */
  readonly #locations = new Map<string, StorageLocation>()
  readonly #verdicts = new Map<string, StatementVerdict>()
  #tail: Promise<unknown> = Promise.resolve()
  #transaction: TransactionLike | undefined
  #leftovers = false
  #closed = false
  #databases: (string | undefined)[] | undefined
  readonly #schemaObjects = new Map<number, readonly SchemaObject[]>()
  readonly #onClose: (() => void) | undefined

  readonly #commitWait: number
  readonly #nativeWait: number

  constructor(name: string, client: ClientLike, openMirror: () => ClientLike, options: ClientHandleOptions) {
    this.name = name
    this.#client = client
    this.#openMirror = openMirror
    this.#onClose = options.onClose
    this.#commitWait = options.commitWait
    this.#nativeWait = options.nativeWait
  }

  /** The mirror, opened on first use with this handle's attachments. */
  async #mirrorClient(): Promise<ClientLike> {
    if (this.#mirror === undefined || this.#mirror.closed) {
      const mirror = this.#openMirror()
      for (const [schema, location] of this.#locations) {
        await mirror.execute({ sql: `attach database ? as "${schema}"`, args: [location] })
      }
      this.#mirror = mirror
    }
    return this.#mirror
  }

  async #explainSide(sql: string, args: unknown[] = []): Promise<ResultSetLike> {
    return (await this.#mirrorClient()).execute({ sql, args })
  }

  #closeMirror(): void {
    this.#mirror?.close()
    this.#mirror = undefined
  }

  get attached(): ReadonlySet<string> {
    return this.#attached
  }

  get leftovers(): boolean {
    return this.#leftovers
  }

  get closed(): boolean {
    return this.#closed || this.#client.closed
  }

  /** Runs `work` after everything queued before it, alone. */
  #queue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work, work)
    this.#tail = run.catch(() => undefined)
    return run
  }

  #execute(sql: string, args: unknown[]): Promise<ResultSetLike> {
    return (this.#transaction ?? this.#client).execute({ sql, args })
  }

  executeQuery<R>(query: CompiledQuery, guard: GuardPolicy): Promise<QueryResult<R>> {
    const { sql } = query
    let args: unknown[]
    try {
      if (hasTail(sql)) throw new StatementRefusedError('multiple-statements', sql, guard.label)
      args = query.parameters.map(bindValue)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#queue(async () => {
      let verdict: StatementVerdict | undefined
      if (guard.denied === 0) {
        // Shardines' own statements (transaction control, migrations, status): nothing is
        // refused, so no verdict is needed; one that may create temp objects is noted.
        if (TRANSACTION_CONTROL.test(sql)) return this.#transactionControl<R>(sql)
        if (MENTIONS_TEMP.test(sql)) this.#leftovers = true
      } else {
        verdict = await this.#verdict(sql)
        if ((verdict.flags & guard.watch) !== 0) {
          if ((verdict.flags & guard.denied) !== 0) throw refuseStatement(verdict, guard)
          if ((verdict.flags & Does.WRITE_TEMP) !== 0) this.#leftovers = true
        }
      }
      // A user's EXPLAIN runs on the mirror too: libSQL would leave it active on this connection,
      // failing its COMMITs and keeping the read locks of its later reads.
      const result = EXPLAIN.test(sql) ? await this.#explainSide(sql, args) : await this.#execute(sql, args)
      if (verdict === undefined || (verdict.flags & Does.SCHEMA_CHANGE) !== 0) {
        if (verdict !== undefined && (verdict.flags & Does.WRITE_TEMP) !== 0 && this.#mirror !== undefined) {
          // Temp objects live on the connection: the mirror gets the same, so names resolve alike.
          await this.#mirror.execute({ sql, args }).catch(() => this.#closeMirror())
        } else if (verdict === undefined && /^\s*(create|drop|alter)\b/i.test(sql)) {
          this.#closeMirror()
        }
        if (verdict !== undefined || /^\s*(create|drop|alter)\b/i.test(sql)) this.#forgetSchema()
      }
      if (result.columns.length > 0) {
        const rows = new Array<R>(result.rows.length)
        for (let i = 0; i < rows.length; i++) rows[i] = plainRow(result.columns, result.rows[i] as never) as R
        return { rows }
      }
      return {
        numAffectedRows: BigInt(result.rowsAffected),
        insertId: result.lastInsertRowid ?? 0n,
        rows: [],
      }
    })
  }

  /** Core's BEGIN / COMMIT / ROLLBACK as the client's interactive transaction. */
  async #transactionControl<R>(sql: string): Promise<QueryResult<R>> {
    const word = (/^\s*(\w+)/.exec(sql)?.[1] ?? '').toLowerCase()
    if (word === 'begin') {
      if (this.#transaction !== undefined)
        throw new Error(`${this.name}: a transaction is already open on this handle.`)
      const mode = /\bimmediate\b|\bexclusive\b/i.test(sql) ? 'write' : 'deferred'
      this.#transaction = await this.#client.transaction(mode)
    } else {
      const transaction = this.#transaction
      if (transaction === undefined) {
        // A ROLLBACK after the client already settled the transaction (a failed COMMIT): nothing to undo.
        if (word === 'rollback') return { rows: [] }
        throw new Error(`${this.name}: ${word} without an open transaction.`)
      }
      try {
        if (word === 'rollback') await transaction.rollback()
        else {
          // @libsql/client ends a transaction whose COMMIT fails, so a COMMIT cannot be retried
          // later as core retries other statements: it waits for readers' locks (another
          // process, a backup) right here, up to the storage's busy timeout.
          await transaction.execute({ sql: `pragma busy_timeout = ${this.#commitWait}`, args: [] })
          await transaction.commit()
        }
      } catch (error) {
        // @libsql/client settles a transaction whose COMMIT failed (rolled back): say so plainly.
        if (word !== 'rollback') {
          throw new StorageError(
            `${this.name}: the transaction could not be committed and was rolled back (${(error as Error).message}); nothing of it was written.`,
            { cause: error, tenantId: this.name === 'apex' || this.name === 'scratch' ? undefined : this.name },
          )
        }
        throw error
      } finally {
        this.#transaction = undefined
        transaction.close()
        if (word !== 'rollback' && !this.#client.closed) {
          await this.#client
            .execute({ sql: `pragma busy_timeout = ${this.#nativeWait}`, args: [] })
            .catch(() => undefined)
        }
      }
    }
    return { rows: [] }
  }

  /**
   * The guard's verdict on `sql`, cached per handle. Judged first from the
   * text alone (pragmas are never prepared: some act while prepared); when the
   * program is needed, it is read with `EXPLAIN` (and, with databases
   * attached, their names and objects) and judged again.
   */
  async #verdict(sql: string): Promise<StatementVerdict> {
    const cached = this.#verdicts.get(sql)
    if (cached !== undefined) return cached
    // Nothing attached and nothing in temp: every name resolves in main, so the verdict depends on
    // the SQL alone and is shared by every handle of the process (as adapter-sqlite's are).
    const clean = this.#attached.size === 0 && !this.#leftovers
    if (clean) {
      const shared = CLEAN_VERDICTS.get(sql)
      if (shared !== undefined) return shared
    }
    const textOnly: ProgramReader = {
      explain: () => {
        throw NEED_PROGRAM
      },
      databases: () => {
        throw NEED_PROGRAM
      },
    }
    let verdict: StatementVerdict
    try {
      verdict = judgeStatement(sql, textOnly)
    } catch (error) {
      if (error !== NEED_PROGRAM) throw error
      const program = await this.#program(sql)
      const databases = await this.#databaseNames()
      for (let index = 2; index < databases.length; index++) {
        if (databases[index] !== undefined && !this.#schemaObjects.has(index)) {
          this.#schemaObjects.set(index, await this.#objectsOf(databases[index] as string))
        }
      }
      verdict = judgeStatement(sql, {
        explain: () => program,
        databases: () => databases,
        schemaObjects: (index) => this.#schemaObjects.get(index) ?? [],
      })
    }
    if ((verdict.flags & Does.JUDGE_EACH_RUN) === 0) {
      if (clean && this.#attached.size === 0 && !this.#leftovers) rememberClean(verdict)
      else this.#verdicts.set(sql, verdict)
    }
    return verdict
  }

  async #program(sql: string): Promise<ProgramStep[]> {
    const result = await this.#explainSide(`explain ${sql}`)
    const column = (name: string) => result.columns.indexOf(name)
    const [opcode, p1, p2, p3, p4] = ['opcode', 'p1', 'p2', 'p3', 'p4'].map(column) as [
      number,
      number,
      number,
      number,
      number,
    ]
    const steps: ProgramStep[] = []
    for (let i = 0; i < result.rows.length; i++) {
      const row = result.rows[i] as ArrayLike<unknown>
      steps.push({
        opcode: String(row[opcode]),
        p1: Number(row[p1]),
        p2: Number(row[p2]),
        p3: Number(row[p3]),
        p4: row[p4],
      })
    }
    return steps
  }

  async #databaseNames(): Promise<(string | undefined)[]> {
    if (this.#databases === undefined) {
      const result = await this.#explainSide('pragma database_list')
      const seq = result.columns.indexOf('seq')
      const name = result.columns.indexOf('name')
      const names: (string | undefined)[] = []
      for (let i = 0; i < result.rows.length; i++) {
        const row = result.rows[i] as ArrayLike<unknown>
        names[Number(row[seq])] = String(row[name])
      }
      this.#databases = names
    }
    return this.#databases
  }

  async #objectsOf(schema: string): Promise<SchemaObject[]> {
    // On this connection, not the mirror: a read on a connection that holds an unreset EXPLAIN
    // keeps its read lock (SQLite ends a read transaction only when no statement is active), and
    // the mirror holds every EXPLAIN the guard ran.
    const result = await this.#execute(
      `select type, name, tbl_name, rootpage from "${schema.replaceAll('"', '""')}".sqlite_master`,
      [],
    )
    return Array.from(result.rows, (row) => plainRow(result.columns, row) as unknown as SchemaObject)
  }

  /** Verdicts and what they were judged against no longer hold (a schema change, an attach). */
  #forgetSchema(): void {
    this.#verdicts.clear()
    this.#databases = undefined
    this.#schemaObjects.clear()
  }

  attach(schema: string, location: StorageLocation): Promise<void> {
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(schema)) {
      return Promise.reject(new Error(`Refusing to attach under schema name ${JSON.stringify(schema)}.`))
    }
    // In `attached` before the promise settles, as the contract asks.
    this.#attached.add(schema)
    return this.#queue(async () => {
      try {
        await this.#execute(`attach database ? as "${schema}"`, [location])
        this.#locations.set(schema, location)
        await this.#mirror?.execute({ sql: `attach database ? as "${schema}"`, args: [location] })
      } catch (error) {
        if (!this.#locations.has(schema)) this.#attached.delete(schema)
        else this.#closeMirror()
        throw error
      } finally {
        this.#forgetSchema()
      }
    })
  }

  detach(schema: string): Promise<void> {
    if (!this.#attached.has(schema)) return Promise.resolve()
    return this.#queue(async () => {
      await this.#execute(`detach database "${schema}"`, [])
      this.#attached.delete(schema)
      this.#locations.delete(schema)
      await this.#mirror?.execute({ sql: `detach database "${schema}"`, args: [] }).catch(() => this.#closeMirror())
      this.#forgetSchema()
    })
  }

  clearStatementCache(): void {
    this.#forgetSchema()
  }

  resetConnection(): Promise<void> {
    return this.#queue(async () => {
      const result = await this.#execute(
        "select type, name from temp.sqlite_master where type in ('trigger', 'view', 'table')",
        [],
      )
      const order: Record<string, number> = { trigger: 0, view: 1, table: 2 }
      const objects = Array.from(result.rows, (row) => ({ type: String(row[0]), name: String(row[1]) }))
      objects.sort((a, b) => (order[a.type] ?? 3) - (order[b.type] ?? 3))
      for (const { type, name } of objects) {
        const quoted = `temp."${name.replaceAll('"', '""')}"`
        if (name === 'sqlite_sequence') await this.#execute(`delete from ${quoted}`, [])
        else await this.#execute(`drop ${type} if exists ${quoted}`, [])
      }
      this.#closeMirror()
      this.#forgetSchema()
      this.#leftovers = false
    })
  }

  /** Closes the client once everything queued has run (an open transaction is rolled back by the client). */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#closed = true
    return this.#queue(async () => {
      this.#transaction?.close()
      this.#transaction = undefined
      this.#attached.clear()
      this.#locations.clear()
      this.#closeMirror()
      this.#client.close()
      this.#onClose?.()
    })
  }
}
