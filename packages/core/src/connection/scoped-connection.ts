import { CompiledQuery, type DatabaseConnection, type Driver, type QueryResult, type TransactionSettings } from 'kysely'
import { type AttachAwareCompiledQuery, REQUIRED_SCHEMAS } from '../attach/attach-query-compiler.js'
import { AttachLimitError, InvalidOptionsError, ShardinesError, TenantScopeClosedError } from '../errors.js'
import { type GuardPolicy, INTERNAL_GUARD } from '../guard/statement-guard.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import { endTransaction, type HandleState, stateOf, whenNoTransaction } from './handle-state.js'
import type { QueryLogger } from './query-log.js'

/**
 * What a {@link ScopedConnection} runs against: one handle, seen from one scope.
 * Built once per scope (or once for apex); the connection objects are per call.
 */
export interface HandleBinding {
  readonly handle: StorageHandle
  readonly state: HandleState
  /** Tenant id, `'apex'`, or a label for scratch handles: goes into logs and errors. */
  readonly label: string
  /**
   * The owner token for transactions. Statements carrying the same token run
   * even while that owner's transaction is open (a scope may use `t.db` inside
   * its own `t.transaction`); everyone else waits for the transaction to end.
   * `null` means a fresh token per connection (apex: each caller is its own owner).
   */
  readonly owner: object | null
  /** When set, the binding refuses work once this returns true. */
  readonly isClosed: (() => boolean) | null
  /** Maps an attachable schema to the location to attach. */
  readonly locate: (schema: string) => string
  readonly maxAttached: number
  readonly log: QueryLogger | null
  /**
   * What the statement guard lets this binding's statements do. Scopes get
   * theirs from `scopeGuard`/`readOnlyGuard`; a private binding (migrations,
   * status) runs Shardines' own statements and gets `INTERNAL_GUARD`.
   */
  readonly guard: GuardPolicy
  /** Savepoints instead of a second BEGIN for nested transactions (migrations only). */
  readonly nestedTransactions: boolean
  /**
   * Set for connections that only read other files (withTenants): they refuse
   * transactions and never hold a read lock across awaits. In the rollback
   * journal a read lock blocks the tenant's own writers, and better-sqlite3
   * waits out `busy_timeout` synchronously, freezing the event loop.
   */
  readonly readsOthersOnly?: boolean
  /**
   * Owner tokens of the scopes that enclose this one on the same handle. The
   * enclosing scope is awaiting this one, so its open transaction is this
   * scope's too: statements join it (waiting for it would never end), and a
   * second BEGIN is refused rather than left waiting.
   */
  readonly enclosing?: ReadonlySet<object> | undefined
}

/** Whether `owner` must wait for the open transaction before running a statement. */
function mustWait(binding: HandleBinding, owner: object): boolean {
  const txOwner = binding.state.txOwner
  return txOwner !== null && txOwner !== owner && binding.enclosing?.has(txOwner) !== true
}

/** What {@link bindHandle} takes: a label, and whatever differs from a private, non-attaching binding. */
export type BindingOptions = Pick<HandleBinding, 'label'> & Partial<Omit<HandleBinding, 'handle' | 'state' | 'label'>>

const attachesNothing = (schema: string): never => {
  throw new Error(`This connection does not attach other databases (asked for "${schema}").`)
}

/**
 * Binds a handle for one user of it. The defaults describe a private binding
 * (migrations, status, schema inspection): a fresh owner per connection, never
 * closed by a scope, attaching nothing, unlogged. Every binding has the same
 * shape, so the hot path sees one hidden class.
 */
export function bindHandle(handle: StorageHandle, options: BindingOptions): HandleBinding {
  return Object.freeze({
    handle,
    state: stateOf(handle),
    label: options.label,
    owner: options.owner ?? null,
    isClosed: options.isClosed ?? null,
    locate: options.locate ?? attachesNothing,
    maxAttached: options.maxAttached ?? 0,
    log: options.log ?? null,
    guard: options.guard ?? INTERNAL_GUARD,
    nestedTransactions: options.nestedTransactions ?? false,
    readsOthersOnly: options.readsOthersOnly ?? false,
    enclosing: options.enclosing,
  })
}

/**
 * A Kysely connection onto a shared handle. Several scopes of one tenant share
 * its handle; this class is what keeps them apart: a statement never runs
 * inside another owner's open transaction, a closed scope's objects are
 * refused, and attached schemas a query needs are attached first.
 */
export class ScopedConnection implements DatabaseConnection {
  readonly #binding: HandleBinding
  readonly #owner: object

  constructor(binding: HandleBinding) {
    this.#binding = binding
    this.#owner = binding.owner ?? this
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return executeOnBinding<R>(this.#binding, this.#owner, query)
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const binding = this.#binding
    if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
    while (mustWait(binding, this.#owner)) await whenNoTransaction(binding.state)
    const schemas = (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS]
    if (schemas !== undefined) await this.#attachMissing(schemas)
    if (binding.readsOthersOnly) {
      // Read everything in one synchronous statement: no lock outlives this tick.
      const { rows } = await binding.handle.executeQuery<R>(query, binding.guard)
      for (const row of rows) yield { rows: [row] }
      return
    }
    yield* binding.handle.streamQuery<R>(query, binding.guard, chunkSize)
  }

  async begin(settings: TransactionSettings): Promise<void> {
    if (this.#binding.readsOthersOnly) {
      throw new ShardinesError(
        'READ_ONLY_ATTACHMENT',
        `${this.#binding.label} is read-only and has no transactions: a transaction would hold locks on every attached tenant's file and block its own writers. Run each query on its own, or use withTenant per tenant.`,
      )
    }
    const { state } = this.#binding
    if (this.#binding.nestedTransactions && state.txOwner === this.#owner) {
      state.savepoints++
      await this.#run(`savepoint shardines_${state.savepoints}`)
      return
    }
    while (state.txOwner !== null) {
      if (this.#binding.enclosing?.has(state.txOwner)) {
        throw new InvalidOptionsError(
          `A transaction on "${this.#binding.label}" is already open in an enclosing scope; a nested scope cannot begin another (it would wait for the enclosing one forever). Run this work in the enclosing transaction.`,
        )
      }
      await whenNoTransaction(state)
    }
    if (this.#binding.isClosed?.()) throw new TenantScopeClosedError(this.#binding.label)
    state.txOwner = this.#owner
    try {
      // IMMEDIATE takes the write lock up front, so two processes never deadlock
      // upgrading read locks; a read-only transaction stays deferred.
      if (settings.accessMode !== 'read only') await detachBeforeImmediate(this.#binding.handle)
      await this.#run(settings.accessMode === 'read only' ? 'begin' : 'begin immediate')
    } catch (error) {
      endTransaction(state)
      throw error
    }
  }

  async commit(): Promise<void> {
    const { state } = this.#binding
    if (state.savepoints > 0 && state.txOwner === this.#owner) {
      await this.#run(`release shardines_${state.savepoints--}`)
      return
    }
    try {
      await this.#run('commit')
    } finally {
      endTransaction(state)
    }
  }

  async rollback(): Promise<void> {
    const { state } = this.#binding
    if (state.savepoints > 0 && state.txOwner === this.#owner) {
      const name = `shardines_${state.savepoints--}`
      await this.#run(`rollback to ${name}`)
      await this.#run(`release ${name}`)
      return
    }
    try {
      await this.#run('rollback')
    } finally {
      endTransaction(state)
    }
  }

  /** Attaches a schema explicitly (for raw `sql`, which the compiler cannot read). */
  async attach(schema: string): Promise<void> {
    const { state } = this.#binding
    while (mustWait(this.#binding, this.#owner)) await whenNoTransaction(state)
    await this.#attachMissing([schema])
  }

  /** Runs Shardines' own transaction control: the internal path, which the guard does not judge. */
  #run(sql: string): Promise<QueryResult<unknown>> {
    const query = CompiledQuery.raw(sql)
    const { log, handle, label } = this.#binding
    return log === null
      ? handle.executeQuery(query, INTERNAL_GUARD)
      : log.time(label, query, () => handle.executeQuery(query, INTERNAL_GUARD))
  }

  #attachMissing(schemas: readonly string[]): void | Promise<void> {
    return attachMissing(this.#binding, schemas)
  }
}

/**
 * Runs one statement on a binding for `owner`: waits while another owner's
 * transaction is open, refuses a closed scope, attaches the schemas the
 * compiler recorded, then hands the statement to the handle. Shared by Kysely
 * connections and prepared queries.
 */
export function executeOnBinding<R>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
): Promise<QueryResult<R>> {
  return executeMapped(binding, owner, query, identity as (result: QueryResult<R>) => QueryResult<R>)
}

const identity = <T>(value: T): T => value

/**
 * {@link executeOnBinding} with the result mapped before the promise settles:
 * with a synchronous adapter and no logger the whole call settles in ONE
 * promise (the prepared-query fast path).
 */
export function executeMapped<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS])
  } catch (error) {
    return Promise.reject(error)
  }
  if (wait !== undefined) return wait.then(() => executeMapped(binding, owner, query, map))
  return run(binding, query, map)
}

/**
 * A statement compiled once (a prepared query's template), run many times with
 * per-call parameters: the hot path passes its SQL and parameter array down
 * without building a {@link CompiledQuery} per call.
 */
export interface PreparedStatementSource {
  readonly sql: string
  /** The schemas the statement reads besides main (recorded by the ATTACH compiler). */
  readonly schemas: readonly string[] | undefined
  /** The full compiled query with these parameters, for the paths that need one (logging, async adapters). */
  compiledWith(parameters: readonly unknown[]): CompiledQuery
}

/** {@link executeMapped} for a prepared statement and one call's parameters. */
export function executePrepared<R, T>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  const { log, handle } = binding
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, source.schemas)
    if (wait === undefined && log === null && handle.executeQuerySync !== undefined) {
      return Promise.resolve(map(handle.executeQuerySync<R>(source.sql, parameters, binding.guard)))
    }
  } catch (error) {
    return Promise.reject(error)
  }
  const query = source.compiledWith(parameters)
  if (wait !== undefined) return wait.then(() => executeMapped(binding, owner, query, map))
  return run(binding, query, map)
}

/**
 * The first row of a prepared select with one call's parameters: the fastest
 * path there is. On a synchronous adapter with no logger and nothing to wait
 * for, the statement runs at once and the call settles in one promise.
 */
export function executePreparedFirst<R>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
): Promise<R | undefined> {
  const { log, handle } = binding
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, source.schemas)
    if (wait === undefined && log === null && handle.executeTakeFirstSync !== undefined) {
      return Promise.resolve(handle.executeTakeFirstSync<R>(source.sql, parameters, binding.guard))
    }
  } catch (error) {
    return Promise.reject(error)
  }
  const query = source.compiledWith(parameters)
  if (wait !== undefined) return wait.then(() => executeFirstRow<R>(binding, owner, query))
  return run(binding, query, firstRow as (result: QueryResult<R>) => R | undefined)
}

/** Like {@link executeMapped} for the first row of a select (`executeTakeFirst`). */
export function executeFirstRow<R>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
): Promise<R | undefined> {
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS])
  } catch (error) {
    return Promise.reject(error)
  }
  if (wait !== undefined) return wait.then(() => executeFirstRow<R>(binding, owner, query))
  const { log, handle } = binding
  if (log === null && handle.executeTakeFirstSync !== undefined) {
    try {
      return Promise.resolve(handle.executeTakeFirstSync<R>(query.sql, query.parameters, binding.guard))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return run(binding, query, firstRow as (result: QueryResult<R>) => R | undefined)
}

const firstRow = <R>(result: QueryResult<R>): R | undefined => result.rows[0]

/**
 * A prepared read run synchronously (`executeSync` / `executeTakeFirstSync`).
 * It never waits: when another owner's transaction is open on the handle, it
 * reads through the adapter's separate read-only connection, which sees the
 * last committed state (the read is ordered before that transaction). Inside
 * its own (or an enclosing scope's) transaction it reads on the handle itself,
 * and so sees that transaction's rows.
 */
export function readPreparedSync<R>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
  first: boolean,
): R[] | R | undefined {
  if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
  const { handle, log, label } = binding
  if (handle.syncReader === undefined) {
    throw new InvalidOptionsError(
      `The storage adapter of "${label}" runs statements asynchronously, so it has no synchronous reads: use await execute() / executeTakeFirst().`,
    )
  }
  const separate = mustWait(binding, owner)
  const reader = handle.syncReader(separate)
  const schemas = source.schemas
  if (schemas !== undefined) {
    if (separate) {
      for (const schema of schemas) if (!reader.attached.has(schema)) reader.attach(schema, binding.locate(schema))
    } else if (attachMissing(binding, schemas) !== undefined) {
      throw new InvalidOptionsError(
        `The storage adapter of "${label}" attaches asynchronously, so a synchronous read cannot use ${schemas.join(', ')}: use await execute().`,
      )
    }
  }
  const { sql } = source
  const guard = binding.guard
  if (log === null) return first ? reader.first<R>(sql, parameters, guard) : reader.all<R>(sql, parameters, guard)
  return log.timeSync(label, source.compiledWith(parameters), () =>
    first ? reader.first<R>(sql, parameters, guard) : reader.all<R>(sql, parameters, guard),
  )
}

/**
 * Whether the statement may run now (undefined), or what to wait for first
 * (another owner's transaction, an asynchronous attach); throws when refused.
 * From its return to the driver call nothing awaits, so no other owner can
 * begin a transaction in between: the handle runs statements in call order.
 */
function mayRun(
  binding: HandleBinding,
  owner: object,
  schemas: readonly string[] | undefined,
): Promise<void> | undefined {
  if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
  if (mustWait(binding, owner)) return whenNoTransaction(binding.state)
  if (schemas === undefined) return undefined
  // An asynchronous adapter attaches asynchronously; the statement runs after it.
  const attaching = attachMissing(binding, schemas)
  return attaching === undefined ? undefined : attaching
}

function run<R, T>(binding: HandleBinding, query: CompiledQuery, map: (result: QueryResult<R>) => T): Promise<T> {
  const { log, handle } = binding
  const { guard } = binding
  if (log !== null) return log.time(binding.label, query, () => handle.executeQuery<R>(query, guard)).then(map)
  if (handle.executeQuerySync !== undefined) {
    try {
      return Promise.resolve(map(handle.executeQuerySync<R>(query.sql, query.parameters, guard)))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return map === identity
    ? (handle.executeQuery<R>(query, guard) as Promise<T>)
    : handle.executeQuery<R>(query, guard).then(map)
}

/**
 * `BEGIN IMMEDIATE` takes the write lock of every database attached at that
 * moment, not only main's: with apex attached, one tenant transaction would
 * block every apex writer and every other tenant's transaction that has apex
 * attached (and better-sqlite3 waits out `busy_timeout` synchronously, so the
 * holder cannot even reach its commit). No transaction is open here, so
 * detaching is allowed; a statement inside the transaction re-attaches what it
 * reads, and a database attached after BEGIN is only read-locked.
 */
async function detachBeforeImmediate(handle: StorageHandle): Promise<void> {
  for (const schema of [...handle.attached]) {
    try {
      await handle.detach(schema)
    } catch {
      // Still in use by a running statement: keep it (the old behaviour) rather than fail the transaction.
    }
  }
}

function attachMissing(binding: HandleBinding, schemas: readonly string[]): void | Promise<void> {
  const { handle, maxAttached, locate, label } = binding
  let missing = 0
  for (const schema of schemas) if (!handle.attached.has(schema)) missing++
  if (missing === 0) return
  if (handle.attached.size + missing > maxAttached) {
    throw new AttachLimitError(handle.attached.size + missing, maxAttached, label)
  }
  const pending: Promise<void>[] = []
  for (const schema of schemas) {
    if (handle.attached.has(schema)) continue
    const attached = handle.attach(schema, locate(schema))
    if (attached instanceof Promise) pending.push(attached)
  }
  if (pending.length > 0) return Promise.all(pending).then(() => undefined)
}

/**
 * The Kysely driver shared by every Shardines Kysely instance. Connections are
 * supplied per scope by a connection provider, never by `acquireConnection`;
 * transactions are delegated to the {@link ScopedConnection}.
 */
export class ShardinesDriver implements Driver {
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    throw new Error('Shardines supplies connections per scope; acquireConnection is never used.')
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await asScoped(connection).begin(settings)
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await asScoped(connection).commit()
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await asScoped(connection).rollback()
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

function asScoped(connection: DatabaseConnection): ScopedConnection {
  if (connection instanceof ScopedConnection) return connection
  throw new Error('Shardines transactions need a Shardines connection.')
}
