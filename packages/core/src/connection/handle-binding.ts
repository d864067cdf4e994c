import type { EventHub } from '../events/event-hub.js'
import { type GuardPolicy, INTERNAL_GUARD } from '../guard/statement-guard.js'
import type { StorageHandle, StorageLocation } from '../storage/storage-adapter.js'
import { type HandleState, stateOf } from './handle-state.js'
import type { QueryLogger } from './query-log.js'
import type { ScopeResources } from './scope-resources.js'

/**
 * What Shardines' Kysely connections run against: one handle, seen from one
 * user of it (a scope, `withTenants`, apex, a migration run). Built once per
 * user; the connection objects are per statement or transaction.
 */
export interface HandleBinding {
  readonly handle: StorageHandle
  readonly state: HandleState
  /** Tenant id, `'apex'`, or a label for scratch handles: goes into logs and errors. */
  readonly label: string
  /**
   * One owner token for every connection of the binding (a migration run owns
   * its whole transaction), or null: each connection is its own owner and
   * joins a transaction only from inside that transaction's async context.
   */
  readonly owner: object | null
  /**
   * Whether the current async context runs inside the transaction (or
   * `connection()` callback) that `token` holds: its statements then run in
   * it instead of waiting for it to end.
   */
  readonly inContextOf: (token: object) => boolean
  /** Runs `fn` in an async context marked as inside `token`'s transaction or `connection()` callback. */
  readonly runInFrame: <T>(token: object, fn: () => T) => T
  /** When set, the binding refuses work once this returns true. */
  readonly isClosed: (() => boolean) | null
  /** Maps an attachable schema to the location to attach. */
  readonly locate: (schema: string) => StorageLocation
  readonly maxAttached: number
  /**
   * Set when the storage cannot attach databases: throws the typed error for
   * a statement that would need `schema` attached (`CrossDatabaseQueryError`).
   */
  readonly refuseAttach: ((schema: string) => never) | null
  /** False when the storage does not declare `syncReads`: prepared `executeSync` is then refused. */
  readonly syncReads: boolean
  readonly log: QueryLogger | null
  /**
   * The instance's event stream, for a binding whose work is reported
   * (tenant scopes, `shard.apex`): busy waits, guard refusals, attaches and,
   * while someone listens to them, statements. Null for private bindings.
   */
  readonly events: EventHub | null
  /** The observed scope the binding belongs to (`scopeId` of its events), 0 for none. */
  readonly scopeId: number
  /**
   * What the statement guard lets this binding's statements do. Scopes get
   * theirs from `scopeGuard`/`readOnlyGuard`; a private binding (migrations,
   * status) runs Shardines' own statements and gets `INTERNAL_GUARD`.
   */
  readonly guard: GuardPolicy
  /**
   * How long a statement retries (asynchronously, with backoff) while another
   * process holds the file's lock, in milliseconds, before `TenantBusyError`.
   */
  readonly busyTimeout: number
  /**
   * Set for connections that only read other files (withTenants): they refuse
   * transactions and never hold a read lock across awaits.
   */
  readonly readsOthersOnly: boolean
  /** What the scope opened that must end with it (transactions, `connection()` holds); null for bindings without a scope. */
  readonly resources: ScopeResources | null
}

/** What {@link bindHandle} takes: a label, and whatever differs from a private, non-attaching binding. */
export type BindingOptions = Pick<HandleBinding, 'label'> & Partial<Omit<HandleBinding, 'handle' | 'state' | 'label'>>

const attachesNothing = (schema: string): never => {
  throw new Error(`This connection does not attach other databases (asked for "${schema}").`)
}
const outsideEveryContext = (): boolean => false
const noFrame = <T>(_token: object, fn: () => T): T => fn()

/** The default when an adapter does not say (SQLite's own default in better-sqlite3). */
export const DEFAULT_BUSY_TIMEOUT = 5000

/**
 * Binds a handle for one user of it. The defaults describe a private binding
 * (migrations, status, schema inspection): a fresh owner per connection, no
 * async-context joining, never closed by a scope, attaching nothing,
 * unlogged, Shardines' own statements. Every binding has the same shape, so
 * the hot path sees one hidden class.
 */
export function bindHandle(handle: StorageHandle, options: BindingOptions): HandleBinding {
  return Object.freeze({
    handle,
    state: stateOf(handle),
    label: options.label,
    owner: options.owner ?? null,
    inContextOf: options.inContextOf ?? outsideEveryContext,
    runInFrame: options.runInFrame ?? noFrame,
    isClosed: options.isClosed ?? null,
    locate: options.locate ?? attachesNothing,
    maxAttached: options.maxAttached ?? 0,
    refuseAttach: options.refuseAttach ?? null,
    syncReads: options.syncReads ?? true,
    log: options.log ?? null,
    events: options.events ?? null,
    scopeId: options.scopeId ?? 0,
    guard: options.guard ?? INTERNAL_GUARD,
    busyTimeout: options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT,
    readsOthersOnly: options.readsOthersOnly ?? false,
    resources: options.resources ?? null,
  })
}

/**
 * The logger a statement of the binding is timed through: the instance's
 * statement logger while someone listens to `statement` events, else the
 * binding's own `log` (null: the untimed fast path).
 */
export function loggerOf(binding: HandleBinding): QueryLogger | null {
  const events = binding.events
  return events === null || events.statementLog === null ? binding.log : events.statementLog
}

/** The `scopeId` field of an event from the binding (none outside an observed scope). Slow paths only. */
export function inScope(binding: HandleBinding): { scopeId?: number } {
  return binding.scopeId === 0 ? {} : { scopeId: binding.scopeId }
}

/** Whether `owner` must wait before running a statement: another token holds the handle, and this is not its context. */
export function mustWait(binding: HandleBinding, owner: object): boolean {
  const holder = binding.state.txOwner
  return holder !== null && holder !== owner && !binding.inContextOf(holder)
}

/**
 * The token whose transaction or `connection()` callback the caller runs
 * inside (as the binding's owner or from its async context), or undefined.
 */
export function enclosingOwner(binding: HandleBinding): object | undefined {
  const holder = binding.state.txOwner
  if (holder === null) return undefined
  return holder === binding.owner || binding.inContextOf(holder) ? holder : undefined
}
