import type { StatementRefusal } from '../errors.js'
import type { StoragePoolEvent } from '../storage/storage-adapter.js'

/**
 * Every event carries the database it is about: a tenant id, or `'apex'`.
 * Timings are in milliseconds (`performance.now()` differences). Events never
 * carry row data, statement parameters, SQL text or error messages (which may
 * quote either): an error is reported by its code.
 */
export interface EventBase {
  /** The tenant id, or `'apex'`. */
  readonly tenantId: string
}

/**
 * Set on events that happened inside a tenant scope whose `scope:start` was
 * reported: the same number as that scope's events, so a listener can tie a
 * statement (or a refusal, a busy wait, an attach) to its scope, as the
 * OpenTelemetry integration does to nest statement spans in scope spans.
 */
export interface InScope {
  readonly scopeId?: number
}

/** How an operation ended; `errorCode` is set when it failed (see {@link ShardinesEventError}). */
export type EventOutcome = 'ok' | 'error'

/**
 * A failure as events report it: the `code` of a `ShardinesError`
 * (`'TENANT_NOT_FOUND'`, `'MIGRATION_FAILED'`, …), else a string `code` the
 * error carries (`'SQLITE_CONSTRAINT_UNIQUE'`, `'ENOENT'`), else the error's
 * `name` (`'TypeError'`, `'Error'`).
 */
export type ShardinesEventError = string

/** `withTenant` began: the tenant id was valid and the instance open (before its handle is acquired). */
export interface ScopeStartEvent extends EventBase {
  readonly type: 'scope:start'
  /** Identifies this scope's events (unique per instance). */
  readonly scopeId: number
  /** The observed scope this one was opened in (a nested `withTenant`), if any. */
  readonly parentScopeId?: number
}

/** `withTenant` settled. Emitted only for scopes whose `scope:start` was emitted. */
export interface ScopeEndEvent extends EventBase {
  readonly type: 'scope:end'
  readonly scopeId: number
  /** From `scope:start` to the scope's end (its handle released). */
  readonly durationMs: number
  /** Of `durationMs`, the time until the handle was acquired: a budget slot, a pool miss, a lazy migration, a lock. */
  readonly acquireMs: number
  readonly outcome: EventOutcome
  readonly errorCode?: ShardinesEventError
}

/**
 * An acquisition that found no open handle and opened the database (a pool
 * miss), reported by core with the time the acquisition took: the open, its
 * pragmas, and any wait for another process's lock. Reported for adapters
 * that read the version stamp at open (`TenantLease.versionStampAtOpen`),
 * which both bundled adapters do. Hits are not events: read `shard.stats()`.
 */
export interface PoolMissEvent extends EventBase {
  readonly type: 'pool:miss'
  readonly durationMs: number
}

/**
 * A database was attached (read-only) to a tenant scope's connection, before
 * the statement that reads it or by `t.attach`. An attachment stays on the
 * handle, so this happens once per handle, and again after a write
 * transaction detached it. (`withTenants` reports no events of its own.)
 */
export interface AttachEvent extends EventBase, InScope {
  readonly type: 'attach'
  /** What was attached (`'apex'`). */
  readonly schema: string
  readonly durationMs: number
}

/**
 * One statement of a scope, `shard.apex` or a model ran (Shardines' own
 * statements, e.g. transaction control and migrations, are not reported).
 * Only built while someone listens to `'statement'` (or `'*'`): those
 * statements then take the timed path, which costs a little.
 */
export interface StatementEvent extends EventBase, InScope {
  readonly type: 'statement'
  /** `select`, `insert`, `update`, `delete`, `merge`, or `other` (DDL, raw SQL). */
  readonly operation: StatementOperation
  readonly durationMs: number
  readonly outcome: EventOutcome
  readonly errorCode?: ShardinesEventError
}

/** What a statement does, from Kysely's query node (raw SQL: `other`). */
export type StatementOperation = 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'other'

/** Why migrations ran. */
export type MigrationTrigger =
  /** `tenants.create`: the new tenant's template. */
  | 'create'
  /** `migrateOnOpen: 'lazy'`: a scope opened a tenant that was behind. */
  | 'open'
  /** `migrate.tenant(id)` or `migrate.apex()`. */
  | 'migrate'
  /** `migrate.all()` (on the main thread or on workers). */
  | 'all'

/** One database's migration run ended (per tenant; `'apex'` for `migrate.apex()`). */
export interface MigrationEvent extends EventBase {
  readonly type: 'migration'
  readonly trigger: MigrationTrigger
  /** The last applied migration before the run (null for none). */
  readonly from: string | null
  /** The last applied migration after it; equals `from` when it failed. */
  readonly to: string | null
  readonly status: 'migrated' | 'up-to-date' | 'failed'
  /** The run's duration (on a worker thread, measured there). */
  readonly durationMs: number
  /** The failing migration's name, when one failed. */
  readonly migration?: string | undefined
  readonly errorCode?: ShardinesEventError
  /** In `migrate.all`: tenants finished so far (this one included) and the run's total. */
  readonly progress?: { readonly done: number; readonly total: number }
}

/** The lifecycle operations that are events, as `tenant:<operation>`. */
export type LifecycleOperation = 'create' | 'destroy' | 'fork' | 'backup' | 'rename' | 'archive' | 'restore' | 'rekey'

/** A lifecycle operation of `shard.tenants` settled. */
export interface LifecycleEvent extends EventBase {
  readonly type: `tenant:${LifecycleOperation}`
  readonly durationMs: number
  readonly outcome: EventOutcome
  readonly errorCode?: ShardinesEventError
  /** The other tenant: `fork`'s new tenant, `rename`'s new id. */
  readonly target?: string
}

/**
 * A statement found the database locked by another connection (another
 * process), waited off the event loop, and then ran (or failed for another
 * reason). Busy waits that end in a timeout are `busy:timeout` instead.
 */
export interface BusyWaitEvent extends EventBase, InScope {
  readonly type: 'busy:wait'
  readonly waitedMs: number
  /** How many times it was tried again. */
  readonly attempts: number
}

/** A statement (or an open) gave up on another connection's lock: `TenantBusyError`. */
export interface BusyTimeoutEvent extends EventBase, InScope {
  readonly type: 'busy:timeout'
  readonly waitedMs: number
  /** True when it was inside a transaction, which SQLite does not let wait (it failed at once). */
  readonly inTransaction: boolean
}

/**
 * The ATTACH compiler or the statement guard refused a statement of a tenant
 * scope or of `shard.apex` (`StatementRefusedError`, `ReadOnlyAttachmentError`).
 * Nothing ran. Emitted whether or not the caller catches the error.
 */
export interface GuardRefusalEvent extends EventBase, InScope {
  readonly type: 'guard:refusal'
  readonly errorCode: 'STATEMENT_REFUSED' | 'READ_ONLY_ATTACHMENT'
  /** What was refused: a {@link StatementRefusal}, or `'write-attached'` for a write to an attached database. */
  readonly refusal: StatementRefusal | 'write-attached'
  /** The attached database a `write-attached` or `fall-through` statement reached. */
  readonly schema?: string | undefined
}

/**
 * Everything `shard.on` reports, discriminated by `type`. The pool's opens,
 * evictions and retries come from the storage adapter
 * ({@link StoragePoolEvent}); the rest from core.
 */
export type ShardinesEvent =
  | ScopeStartEvent
  | ScopeEndEvent
  | StoragePoolEvent
  | PoolMissEvent
  | AttachEvent
  | StatementEvent
  | MigrationEvent
  | LifecycleEvent
  | BusyWaitEvent
  | BusyTimeoutEvent
  | GuardRefusalEvent

/** The `type` of every event. */
export type ShardinesEventType = ShardinesEvent['type']

/** The event of one `type` (`'*'`: any event). */
export type ShardinesEventOf<K extends ShardinesEventType | '*'> = K extends '*'
  ? ShardinesEvent
  : Extract<ShardinesEvent, { readonly type: K }>

/** A listener of `shard.on(type, listener)`. */
export type ShardinesEventListener<K extends ShardinesEventType | '*' = '*'> = (event: ShardinesEventOf<K>) => void

/** Every event type, in the order the docs list them (checked by `shard.on`). */
export const EVENT_TYPES: readonly ShardinesEventType[] = Object.freeze([
  'scope:start',
  'scope:end',
  'pool:open',
  'pool:miss',
  'pool:evict',
  'pool:retry',
  'attach',
  'statement',
  'migration',
  'tenant:create',
  'tenant:destroy',
  'tenant:fork',
  'tenant:backup',
  'tenant:rename',
  'tenant:archive',
  'tenant:restore',
  'tenant:rekey',
  'busy:wait',
  'busy:timeout',
  'guard:refusal',
] satisfies ShardinesEventType[])
