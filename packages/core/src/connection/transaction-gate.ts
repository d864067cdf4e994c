import { CompiledQuery, type QueryCompiler, type QueryResult, type TransactionSettings } from 'kysely'
import { InvalidOptionsError, ShardinesError, TenantScopeClosedError } from '../errors.js'
import {
  BEGIN_DEFERRED,
  BEGIN_IMMEDIATE,
  COMMIT,
  compileSavepoint,
  ROLLBACK,
  type SavepointCommand,
} from '../storage/sqlite-engine.js'
import { detachBeforeImmediate } from './attachments.js'
import type { HandleBinding } from './handle-binding.js'
import { endTransaction, whenNoTransaction } from './handle-state.js'
import type { ScopeResource } from './scope-resources.js'
import { closedError, runInternal } from './statement-runner.js'

/**
 * The transaction gate of one connection. Several scopes of one tenant share
 * its handle, and one owner token at a time holds it exclusively, for a
 * transaction or a `connection()` callback: every other owner's statements
 * wait for it to end (`mayRun` in the statement runner), unless they run
 * inside the holder's async context. The gate takes the handle in turn
 * (`begin`, `hold`), runs Shardines' own transaction control on the internal
 * path, frees the handle and wakes the waiters when it ends, and is the scope
 * resource that rolls back what its scope left open (`abandon`).
 */
export class TransactionGate implements ScopeResource {
  readonly #binding: HandleBinding
  /** The token this gate's statements run as, and that holds the handle while its transaction or hold is open. */
  readonly owner: object
  /** Set once the transaction this gate ran has ended: its `trx` is then refused, as Kysely refuses it. */
  #ended: (() => Error) | null = null
  #holding = false

  constructor(binding: HandleBinding, owner?: object) {
    this.#binding = binding
    this.owner = owner ?? binding.owner ?? this
  }

  /** Once the gate's transaction has ended: makes the error a later statement on it gets (else null). */
  get ended(): (() => Error) | null {
    return this.#ended
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
      if (holder === null || (holder === this.owner && !state.inTransaction)) break
      if (holder === this.owner || binding.inContextOf(holder)) {
        throw new InvalidOptionsError(
          `A transaction on "${binding.label}" is already open here; a second one would wait for it forever. Nest with t.transaction(fn) or db.transaction() (they become savepoints), or use the savepoints of the open transaction.`,
        )
      }
      await whenNoTransaction(state)
    }
    const heldBefore = state.txOwner === this.owner
    state.txOwner = this.owner
    try {
      // IMMEDIATE takes the write lock up front, so two processes never deadlock
      // upgrading read locks; a read-only transaction stays deferred.
      if (settings.accessMode !== 'read only') await detachBeforeImmediate(binding.handle)
      await this.#run(settings.accessMode === 'read only' ? BEGIN_DEFERRED : BEGIN_IMMEDIATE)
    } catch (error) {
      if (!heldBefore) endTransaction(state)
      throw error
    }
    state.inTransaction = true
    binding.resources?.add(this)
  }

  async commit(): Promise<void> {
    const { state } = this.#binding
    if (state.txOwner !== this.owner || !state.inTransaction) {
      throw this.#ended?.() ?? new InvalidOptionsError(`No transaction is open on "${this.#binding.label}" to commit.`)
    }
    await this.#run(COMMIT)
    this.#endTransaction(() => new Error('Transaction is already committed'))
  }

  async rollback(): Promise<void> {
    const { state } = this.#binding
    // Already ended (its scope ended and rolled it back): nothing left to roll back.
    if (state.txOwner !== this.owner || !state.inTransaction) return
    try {
      await this.#run(ROLLBACK)
    } finally {
      this.#endTransaction(() => new Error('Transaction is already rolled back'))
    }
  }

  /** Runs a savepoint command (`savepoint`, `rollback to`, `release`) with Kysely's compiler, on Shardines' internal path. */
  async savepointCommand(
    command: SavepointCommand,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await runInternal(this.#binding, compileSavepoint(command, name, compileQuery))
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
    state.txOwner = this.owner
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
    if (state.txOwner !== this.owner) return
    state.holds = 0
    if (!state.inTransaction) endTransaction(state)
  }

  /** Rolls back this gate's open transaction (or releases its hold) because its scope ended. */
  async abandon(): Promise<boolean> {
    const { state } = this.#binding
    if (state.txOwner !== this.owner) return false
    if (state.inTransaction) {
      try {
        await runInternal(this.#binding, CompiledQuery.raw(ROLLBACK))
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

  #endTransaction(ended: () => Error): void {
    const binding = this.#binding
    const { state } = binding
    if (state.txOwner !== this.owner) return
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
