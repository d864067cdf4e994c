import type { CompiledQuery, QueryResult } from 'kysely'
import type { GuardPolicy } from '../guard/statement-guard.js'
import type {
  ArchivedTenant,
  DoctorOptions,
  DoctorReport,
  LayoutMigrationOptions,
  LayoutMigrationReport,
} from '../tenant/lifecycle-types.js'

/**
 * The name under which the shared catalogue database is addressed (`apex.<table>`),
 * reported in logs and passed to {@link StorageAdapter.locate}.
 */
export const APEX = 'apex'

declare const LOCATION: unique symbol

/**
 * Where a database is, as its adapter addresses it (a file path, a `file:` or
 * `libsql://` URL, …). Opaque to core: it only passes what
 * {@link StorageAdapter.locate} returned back to {@link StorageHandle.attach},
 * and shows it in reports.
 */
export type StorageLocation = string & { readonly [LOCATION]: true }

/**
 * What an adapter can do, declared rather than guessed from which methods
 * exist. Core checks at `createShardines` that every declared capability has
 * its methods, and refuses what a missing one would need with a typed error
 * before anything runs.
 */
export interface StorageCapabilities {
  /**
   * `ATTACH` on a handle: builder queries naming `apex.<table>`, `t.attach`,
   * `withTenants`, and model includes joined in one statement. Without it,
   * such queries get `CrossDatabaseQueryError` and includes across apex run
   * as separate queries.
   */
  readonly attach: boolean
  /** `executeQuerySync`, `executeTakeFirstSync` and `syncReader` on handles (prepared `executeSync`). */
  readonly syncReads: boolean
  /** `migrateInWorkers`: `migrate.all` on worker threads. */
  readonly workerMigrations: boolean
  /** `backup(name, destPath)`: an online copy written to a local path. */
  readonly backupToPath: boolean
  /** `export(name)`: an online copy streamed as the database file's bytes. */
  readonly exportStream: boolean
  /** `rename`. */
  readonly rename: boolean
  /** `archive`, `restore`, `listArchived` and `isArchived`. */
  readonly archive: boolean
  /** `doctor`. */
  readonly doctor: boolean
  /** `migrateLayout`. */
  readonly layoutMigration: boolean
  /** `rekey`: re-encrypts one tenant's database with the key the storage now gives it. */
  readonly rekey: boolean
}

/**
 * One open database connection, as core needs it. Core never sees the driver
 * (better-sqlite3, libSQL, …): an adapter wraps its connection in this shape,
 * much as Kysely's `SqliteDatabase` describes only the methods its driver uses.
 *
 * Contract: statements on one handle never interleave. A synchronous driver runs
 * each statement to completion inside `executeQuery` before it returns; an
 * asynchronous one must queue them in call order. Core relies on this to keep a
 * scope's statements out of another scope's open transaction.
 *
 * **The statement guard.** Every method that runs a statement takes the
 * caller's {@link GuardPolicy}. Before a statement first runs on the handle,
 * the adapter judges it with core's `judgeStatement` (pragmas from their text,
 * before anything is prepared; everything else from its compiled program) and
 * caches the verdict with the statement. Before every run it checks
 * `verdict.flags & guard.watch`: when that is not 0 it throws
 * `refuseStatement(verdict, guard)` for bits in `guard.denied` (running
 * nothing), and otherwise notes a temp write (see {@link leftovers}). After a
 * statement with `Does.SCHEMA_CHANGE` it drops its cached statements and
 * verdicts. Its own statements (attach, detach, reset) never pass a guard.
 */
export interface StorageHandle {
  /** `'apex'`, the tenant id, or a name for a scratch handle. */
  readonly name: string
  /** Runs one statement (through the handle's statement cache where it has one). */
  executeQuery<R>(query: CompiledQuery, guard: GuardPolicy): Promise<QueryResult<R>>
  /**
   * Optional: the same, synchronously, for drivers that run statements
   * synchronously (better-sqlite3). Core uses it to settle a statement in one
   * promise instead of two. It takes the SQL and parameters rather than a
   * {@link CompiledQuery}, so prepared queries need not build one per call.
   */
  executeQuerySync?<R>(sql: string, parameters: readonly unknown[], guard: GuardPolicy): QueryResult<R>
  /** Optional: the first row of a select, synchronously, without building the full row list. */
  executeTakeFirstSync?<R>(sql: string, parameters: readonly unknown[], guard: GuardPolicy): R | undefined
  /**
   * Optional: synchronous reads (`executeSync` / `executeTakeFirstSync` of
   * prepared queries). `separate: false` reads on this connection (inside its
   * open transaction, if the reader owns it); `separate: true` reads on a
   * separate read-only connection to the same database, for a reader that must
   * neither wait for nor see a transaction another scope has open here. The
   * adapter opens that connection on first use and closes it with the handle.
   */
  syncReader?(separate: boolean): SyncReader
  /** Schemas currently attached to this connection. */
  readonly attached: ReadonlySet<string>
  /**
   * Attaches the database at `location` (from {@link StorageAdapter.locate}) as
   * `schema`. `schema` is a validated tenant id or `'apex'`; the adapter passes
   * `location` to the database as a bound parameter. Only called when the
   * adapter declares the `attach` capability.
   *
   * Core serializes attaches and detaches per handle: it never calls `attach`
   * or `detach` while another of its attaches on the same handle is pending,
   * and never for a schema already in {@link attached}. An asynchronous
   * adapter adds the schema to `attached` before its promise resolves.
   */
  attach(schema: string, location: StorageLocation): void | Promise<void>
  /** Detaches `schema`; never called while a transaction is open on the handle. */
  detach(schema: string): void | Promise<void>
  /** Drops cached prepared statements and their verdicts (after schema changes, e.g. a migration). */
  clearStatementCache(): void
  /**
   * True once a guarded statement wrote the connection's `temp` database (a
   * temp table, trigger or view): state that must not reach a later scope.
   * The adapter resets it (see {@link resetConnection}) when the last lease
   * on the handle is released.
   */
  readonly leftovers: boolean
  /**
   * Drops what scopes left on the connection (every temp table, trigger and
   * view) and the statements cached with it, so that the next user sees a
   * clean connection; clears {@link leftovers}.
   */
  resetConnection(): void | Promise<void>
  /** True once the handle has been closed (evicted, destroyed or shut down). */
  readonly closed: boolean
}

/** A private handle from {@link StorageAdapter.openScratch}; its owner closes it. */
export interface ScratchHandle extends StorageHandle {
  close(): void | Promise<void>
}

/**
 * Synchronous, read-only statements on one connection (see
 * {@link StorageHandle.syncReader}). Each method refuses a statement that is
 * not read-only with an `InvalidOptionsError`, before running it.
 */
export interface SyncReader {
  all<R>(sql: string, parameters: readonly unknown[], guard: GuardPolicy): R[]
  first<R>(sql: string, parameters: readonly unknown[], guard: GuardPolicy): R | undefined
  /** Schemas attached to this connection. */
  readonly attached: ReadonlySet<string>
  /** Attaches `location` as `schema` (read-only on a separate reader). */
  attach(schema: string, location: StorageLocation): void
}

/** A pinned tenant handle: the pool never closes it until `release()`. */
export interface TenantLease {
  readonly handle: StorageHandle
  /**
   * Optional, set only when this acquisition opened the database (a pool
   * miss): its `user_version` as the adapter read it while opening (its first
   * read, which also proves the file is a whole database). Core's version
   * check uses it instead of running `pragma user_version` itself.
   */
  readonly versionStampAtOpen?: number | undefined
  /** Unpins the handle; call exactly once. */
  release(): void
}

/** Counters of the tenant handle pool since start (the apex handle is not counted). */
export interface PoolStats {
  /** Tenant handles open now. */
  readonly open: number
  /** Open handles held by a running scope or transaction. */
  readonly pinned: number
  readonly hits: number
  readonly misses: number
  readonly evictions: number
}

/** The storage adapter opened a tenant's database for the pool (a miss): the open, its pragmas and first read. */
export interface PoolOpenEvent {
  readonly type: 'pool:open'
  readonly tenantId: string
  readonly durationMs: number
}

/** The pool closed an unpinned tenant handle: the least recently used beyond `maxOpen`, or to free file descriptors. */
export interface PoolEvictEvent {
  readonly type: 'pool:evict'
  readonly tenantId: string
  readonly reason: 'lru' | 'descriptors'
  /** How long closing took (a WAL database checkpoints when its last connection closes). */
  readonly durationMs: number
}

/**
 * An open was tried again: the file was locked exclusively by another process
 * (`'locked'`, waiting off the event loop), or the process ran out of file
 * descriptors and the pool closed a handle first (`'descriptors'`).
 */
export interface PoolRetryEvent {
  readonly type: 'pool:retry'
  readonly tenantId: string
  readonly reason: 'locked' | 'descriptors'
  /** 1 for the first retry. */
  readonly attempt: number
  /** Since the first try. */
  readonly waitedMs: number
}

/** What an adapter reports about its tenant handle pool (see {@link StorageAdapter.observePool}). */
export type StoragePoolEvent = PoolOpenEvent | PoolEvictEvent | PoolRetryEvent

/**
 * What a storage backend provides. `@shardines/adapter-sqlite` implements it on
 * better-sqlite3 and `@shardines/adapter-libsql` on libSQL; each passes the
 * same behaviour suite (`test/conformance`).
 *
 * Tenant ids reaching an adapter have already been validated by core.
 */
export interface StorageAdapter {
  /** A short name for messages and logs, e.g. `'sqlite'`. */
  readonly kind: string
  /** What this adapter can do (see {@link StorageCapabilities}). */
  readonly capabilities: StorageCapabilities
  /** How many databases one connection can attach (10 in better-sqlite3's build; 0 without the `attach` capability). */
  readonly maxAttached: number
  /**
   * How long a statement that finds a database locked by another connection
   * keeps retrying, in milliseconds, before `TenantBusyError`. Core retries
   * asynchronously with backoff, so the adapter's own (native) busy wait must
   * stay short: a native wait blocks the event loop for every tenant.
   */
  readonly busyTimeout: number

  /** The apex handle, opened (and created) on first use; lives until `close()`. */
  apex(): StorageHandle
  /**
   * Pins the tenant's handle, opening it on a pool miss (evicting the least
   * recently used unpinned handle beyond `maxOpen`). Rejects with
   * `TenantNotFoundError` when the tenant has no database or is being destroyed.
   */
  acquire(tenantId: string): Promise<TenantLease>
  exists(tenantId: string): Promise<boolean>
  /**
   * Creates the tenant atomically: `build` runs on a handle to a private
   * temporary database (e.g. to apply migrations), which then appears under the
   * tenant's name in one step. Rejects with `TenantExistsError` if the tenant
   * exists (also when another process won the race), leaving nothing behind.
   */
  create(tenantId: string, build: (handle: StorageHandle) => Promise<void>): Promise<void>
  /**
   * Refuses new acquisitions of the tenant at once, waits for current leases to
   * be released, closes the handle and removes the database and its side files.
   * Resolves to whether a database existed.
   */
  destroy(tenantId: string): Promise<boolean>
  /** Every tenant id, sorted, streamed. */
  list(): AsyncIterable<string>
  /**
   * Optional (capability `backupToPath`): an online, consistent copy of a live
   * database (`'apex'` or a tenant id) at `destPath`. Refuses
   * (`InvalidOptionsError`, nothing written) a destination inside the
   * adapter's data folder, an existing file unless `overwrite`, and anything
   * that is a live database of this adapter.
   */
  backup?(name: string, destPath: string, options?: { readonly overwrite?: boolean }): Promise<void>
  /**
   * Optional (capability `exportStream`): an online, consistent copy of a live
   * database (`'apex'` or a tenant id), streamed as the bytes of an SQLite
   * database file. The snapshot is taken before the first chunk is yielded;
   * whatever the adapter staged is removed when the iteration ends or is
   * abandoned.
   */
  export?(name: string): AsyncIterable<Uint8Array>
  /** A consistent copy of tenant `fromId` created as tenant `toId` (atomic, like `create`). */
  fork(fromId: string, toId: string): Promise<void>
  /**
   * Optional (capability `rename`; `tenants.rename` refuses without it): gives tenant `from` the id
   * `to`, atomically across processes. New acquisitions of `from` fail at
   * once; it waits for current leases (and for other processes' transactions
   * on the file), then moves the file. `TenantExistsError` when `to` exists
   * (live or archived), `TenantNotFoundError` / `TenantArchivedError` for `from`.
   */
  rename?(from: string, to: string): Promise<void>
  /**
   * Optional (capability `archive`, with `restore`, `listArchived`, `isArchived`): moves a tenant out of the live set into the archive (compressed,
   * its schema version recorded), waiting like `rename`. Acquisitions then
   * fail with `TenantArchivedError`.
   */
  archive?(tenantId: string): Promise<ArchivedTenant>
  /** Optional: brings an archived tenant back into the live set (atomic; `TenantExistsError` if the id is live). */
  restore?(tenantId: string): Promise<void>
  /** Optional: the archived tenants, sorted by id. */
  listArchived?(): AsyncIterable<ArchivedTenant>
  /** Optional: whether the tenant is archived. */
  isArchived?(tenantId: string): Promise<boolean>
  /**
   * Optional (capability `doctor`): checks the data folder (leftovers of killed operations, stale
   * locks, stray files, each tenant's file) and, with `fix`, repairs what is
   * safe to repair. Versions are checked by core.
   */
  doctor?(options: DoctorOptions): Promise<DoctorReport>
  /**
   * Optional (capability `rekey`): re-encrypts tenant `tenantId`'s database,
   * now encrypted with `previousKey`, with the key the storage's key resolver
   * gives it now. New scopes of the tenant wait meanwhile; it waits for running
   * ones (and other processes' transactions), like `rename`. Keys are never
   * put in messages.
   */
  rekey?(tenantId: string, previousKey: string): Promise<void>
  /** Optional (capability `layoutMigration`): moves every tenant file into the configured layout (resumable; safe while the app runs). */
  migrateLayout?(options: LayoutMigrationOptions): Promise<LayoutMigrationReport>
  /** What another handle passes to `attach` to reach `'apex'` or a tenant (opaque to core). */
  locate(name: string): StorageLocation
  /**
   * A private, empty handle that nothing else sees: `withTenants` attaches
   * tenants to it read-only; `migrate.status` and codegen migrate a template
   * on it. The caller closes it.
   */
  openScratch(): ScratchHandle | Promise<ScratchHandle>
  stats(): PoolStats
  /**
   * Optional: reports the pool's opens, evictions and retries to `listener`
   * until the returned function is called. Core subscribes while someone
   * listens to `shard.on(…)` and unsubscribes when the last listener leaves,
   * so an adapter should cost nothing without an observer (check, then build
   * the event). `listener` never throws. Without this method the instance
   * still reports misses (from acquisitions) and counters (`stats()`).
   */
  observePool?(listener: (event: StoragePoolEvent) => void): () => void
  /** Closes every handle. */
  close(): Promise<void>
  /**
   * Optional (capability `workerMigrations`): migrates tenants on worker
   * threads (`migrate.all` uses it when the tenant migrations are importable
   * from a worker). Without it `migrate.all` runs on the main thread.
   */
  migrateInWorkers?(job: WorkerMigrationJob): Promise<void>
}

/**
 * Where a worker thread imports the tenant migrations from (functions cannot
 * cross threads): a folder of migration modules, or a module whose `tenant`
 * (or default) export is a migration source.
 */
export interface WorkerMigrationSource {
  readonly kind: 'folder' | 'module'
  /** An absolute path or `file:` URL. */
  readonly location: string
  /** A module URL whose `register()` each worker calls first (e.g. tsx's `tsx/esm/api`, for `.ts` migrations). */
  readonly loader?: string | undefined
}

/** A serialisable error, as a worker posts it; core rebuilds a `MigrationError` around it. */
export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly code?: string | undefined
  readonly stack?: string | undefined
}

/** One tenant's outcome as a worker reports it (plain data). */
export interface SerializedMigrationOutcome {
  readonly id: string
  readonly from: string | null
  readonly to: string | null
  readonly status: 'migrated' | 'up-to-date' | 'failed'
  /** The failing migration (when one failed) and the cause. */
  readonly error?: { readonly migration: string | undefined; readonly cause: SerializedError } | undefined
  /** Optional: how long the run took on the worker, in milliseconds (reported in `migration` events). */
  readonly durationMs?: number | undefined
}

/** What core asks of {@link StorageAdapter.migrateInWorkers}. */
export interface WorkerMigrationJob {
  /** Tenants to migrate (validated ids). */
  readonly ids: readonly string[]
  /** Worker threads to start (at most one per id). */
  readonly workers: number
  readonly source: WorkerMigrationSource
  /** The migration names the main thread loaded: a worker that loads others refuses to run. */
  readonly names: readonly string[]
  /** Stops handing out tenants once aborted; tenants already running finish. */
  readonly signal?: AbortSignal | undefined
  /** Called on the main thread once per finished tenant, in completion order. */
  onOutcome(outcome: SerializedMigrationOutcome): void
}
