import {
  CompiledQuery,
  type DatabaseConnection,
  IdentifierNode,
  type QueryCompiler,
  type QueryResult,
  RawNode,
  SelectQueryNode,
  type TransactionSettings,
} from 'kysely'
import { type AttachAwareCompiledQuery, REQUIRED_SCHEMAS } from '../attach/attach-query-compiler.js'
import { InvalidOptionsError, ShardinesError, TenantScopeClosedError } from '../errors.js'
import { attachMissing, detachBeforeImmediate } from './attachments.js'
import { type HandleBinding, mustWait } from './handle-binding.js'
import { endTransaction, whenNoTransaction } from './handle-state.js'
import type { ScopeResource } from './scope-resources.js'
import { closedError, executeOnBinding, runInternal } from './statement-runner.js'

/** How many rows a buffered stream hands Kysely at a time when the caller names no chunk size. */
const STREAM_CHUNK = 100

/**
 * A Kysely connection onto a shared handle. Several scopes of one tenant share
 * its handle; this class keeps them apart: a statement never runs while
 * another owner holds the handle (a transaction or a `connection()` callback),
 * unless it runs inside that owner's async context; a closed scope's objects
 * are refused; attached schemas a query needs are attached first.
 *
 * A connection that begins a transaction or a hold is that transaction's
 * token: Kysely's `trx` runs every statement on it, and code running inside
 * the callback joins it through its async context.
 */
export class ScopedConnection implements DatabaseConnection, ScopeResource {
  readonly #binding: HandleBinding
  readonly #owner: object
  /** Set once the transaction this connection ran has ended: its `trx` is then refused, as Kysely refuses it. */
  #ended: (() => Error) | null = null
  #holding = false

  constructor(binding: HandleBinding, owner?: object) {
    this.#binding = binding
    this.#owner = owner ?? binding.owner ?? this
  }

  /** The token this connection's statements run as. */
  get owner(): object {
    return this.#owner
  }

  get binding(): HandleBinding {
    return this.#binding
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    // Kysely's own words and error class for a transaction used after it ended.
    if (this.#ended !== null) return Promise.reject(this.#ended())
    return executeOnBinding<R>(this.#binding, this.#owner, query)
  }

  /**
   * Streams buffer: the statement runs to completion at once (one synchronous
   * call on a synchronous adapter), then rows are handed out in chunks. So no
   * read lock and no busy connection outlives the call, and the tenant's other
   * scopes are never blocked by a stream left half-read; a later `next()` after
   * the scope ended gets `TenantScopeClosedError`.
   */
  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const binding = this.#binding
    // As Kysely's SQLite driver: only selects stream.
    if (!SelectQueryNode.is(query.query)) throw new Error('Sqlite driver only supports streaming of select queries')
    const { rows } = await this.executeQuery<R>(query)
    const size = chunkSize !== undefined && chunkSize > 0 ? chunkSize : STREAM_CHUNK
    for (let i = 0; i < rows.length; i += size) {
      if (i > 0 && binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
      yield { rows: rows.slice(i, i + size) }
    }
  }

  async begin(settings: TransactionSettings): Promise<void> {
    const binding = this.#binding
    if (binding.readsOthersOnly) {
      throw new ShardinesError(
        'READ_ONLY_ATTACHMENT',
        `${binding.label} is read-only and has no transactions: a transaction would hold locks on every attached tenant's file and block its own writers. Run each query on its own, or use withTenant per tenant.`,
      )
    }
    const { state } = binding
    for (;;) {
      if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
      const holder = state.txOwner
      if (holder === null || (holder === this.#owner && !state.inTransaction)) break
      if (holder === this.#owner || binding.inContextOf(holder)) {
        throw new InvalidOptionsError(
          `A transaction on "${binding.label}" is already open here; a second one would wait for it forever. Nest with t.transaction(fn) or db.transaction() (they become savepoints), or use the savepoints of the open transaction.`,
        )
      }
      await whenNoTransaction(state)
    }
    const heldBefore = state.txOwner === this.#owner
    state.txOwner = this.#owner
    try {
      // IMMEDIATE takes the write lock up front, so two processes never deadlock
      // upgrading read locks; a read-only transaction stays deferred.
      if (settings.accessMode !== 'read only') await detachBeforeImmediate(binding.handle)
      await this.#run(settings.accessMode === 'read only' ? 'begin' : 'begin immediate')
    } catch (error) {
      if (!heldBefore) endTransaction(state)
      throw error
    }
    state.inTransaction = true
    binding.resources?.add(this)
  }

  async commit(): Promise<void> {
    const { state } = this.#binding
    if (state.txOwner !== this.#owner || !state.inTransaction) {
      throw this.#ended?.() ?? new InvalidOptionsError(`No transaction is open on "${this.#binding.label}" to commit.`)
    }
    await this.#run('commit')
    this.#endTransaction(() => new Error('Transaction is already committed'))
  }

  async rollback(): Promise<void> {
    const { state } = this.#binding
    // Already ended (its scope ended and rolled it back): nothing left to roll back.
    if (state.txOwner !== this.#owner || !state.inTransaction) return
    try {
      await this.#run('rollback')
    } finally {
      this.#endTransaction(() => new Error('Transaction is already rolled back'))
    }
  }

  /** Runs a savepoint command (`savepoint`, `rollback to`, `release`) with Kysely's compiler, on Shardines' internal path. */
  async savepointCommand(command: string, name: string, compileQuery: QueryCompiler['compileQuery']): Promise<void> {
    const node = RawNode.createWithChildren([RawNode.createWithSql(`${command} `), IdentifierNode.create(name)])
    await runInternal(this.#binding, compileQuery(node as never, { queryId: `savepoint-${name}` } as never))
  }

  /** Holds the handle for a `connection()` callback: every other owner waits until {@link release}. */
  async hold(): Promise<void> {
    const binding = this.#binding
    const { state } = binding
    for (;;) {
      if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
      if (state.txOwner === null) break
      await whenNoTransaction(state)
    }
    state.txOwner = this.#owner
    state.holds = 1
    this.#holding = true
    binding.resources?.add(this)
  }

  /** Ends a hold; a transaction begun inside it and still open keeps the handle until it ends. */
  release(): void {
    if (!this.#holding) return
    this.#holding = false
    const { state } = this.#binding
    this.#binding.resources?.delete(this)
    if (state.txOwner !== this.#owner) return
    state.holds = 0
    if (!state.inTransaction) endTransaction(state)
  }

  /** Rolls back this connection's open transaction (or releases its hold) because its scope ended. */
  async abandon(): Promise<boolean> {
    const { state } = this.#binding
    if (state.txOwner !== this.#owner) return false
    if (state.inTransaction) {
      try {
        await runInternal(this.#binding, CompiledQuery.raw('rollback'))
      } catch {
        // The connection may be gone (closed instance); nothing was committed either way.
      }
    }
    // The scope ended (TenantScopeClosedError), or close() gave up waiting (ShardinesClosedError).
    const binding = this.#binding
    this.#ended = () => closedError(binding)
    this.#holding = false
    endTransaction(state)
    return true
  }

  /** Attaches a schema explicitly (for raw `sql`, which the compiler cannot read). */
  async attach(schema: string): Promise<void> {
    const binding = this.#binding
    while (mustWait(binding, this.#owner)) await whenNoTransaction(binding.state)
    if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
    await attachMissing(binding, [schema])
  }

  #endTransaction(ended: () => Error): void {
    const binding = this.#binding
    const { state } = binding
    if (state.txOwner !== this.#owner) return
    state.inTransaction = false
    this.#ended = ended
    binding.resources?.delete(this)
    if (state.holds === 0) endTransaction(state)
  }

  /** Shardines' own transaction control: the internal path, which the guard does not judge. */
  #run(sql: string): Promise<QueryResult<unknown>> {
    return runInternal(this.#binding, CompiledQuery.raw(sql))
  }
}

/** Whether a compiled query names attached schemas (for callers that need to know before running it). */
export function requiredSchemas(query: CompiledQuery): readonly string[] | undefined {
  return (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS]
}
