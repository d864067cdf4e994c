import type { StorageAdapter } from './storage-adapter.js'

/**
 * What an adapter gives the storage behaviour suite (`test/conformance`): a
 * way to make fresh adapters, and a few ways to look at its storage from
 * outside Shardines. The suite is a function of this target alone: it uses
 * the public API for everything else and gates tests on the adapter's
 * declared `capabilities`, so it imports no driver and knows no file layout.
 *
 * Types only: an adapter's own test code implements them with its driver.
 */
export interface StorageBehaviourTarget {
  /** A short name for test titles, e.g. `'sqlite'`, `'libsql local'`, `'libsql client'`. */
  readonly name: string
  /**
   * A fresh adapter over the storage addressed by `dir`, a new temporary
   * folder the suite made and removes. Called again with the same `dir` (after
   * the first adapter was closed, or alongside it, as a second process would
   * be), it addresses the same databases.
   */
  create(dir: string, options?: StorageTargetOptions): StorageAdapter
  /**
   * Named configurations that change how a database is stored, e.g. `['delete
   * journal', 'wal journal']`: the tests whose outcome depends on it (destroy,
   * backup, export) run once under each, passed back as
   * {@link StorageTargetOptions.variant}, with the variant in the title. Empty
   * or absent: once, in the default configuration.
   */
  readonly variants?: readonly string[]
  readonly support: StorageTestSupport
}

/** What the suite asks of {@link StorageBehaviourTarget.create}; an adapter ignores what it has no use for. */
export interface StorageTargetOptions {
  /** Tenant handles kept open (the pool's `maxOpen`), when the adapter has a pool. */
  readonly maxOpen?: number
  /**
   * The test does not test durability: skip syncing to disk where the adapter
   * can (e.g. `synchronous: 'off'`), so that fsyncs do not dominate its run time.
   */
  readonly unsynced?: boolean
  /** One of {@link StorageBehaviourTarget.variants}; undefined: the default configuration. */
  readonly variant?: string
}

/**
 * The suite's view of the storage behind Shardines' back, with the adapter's
 * own driver. `dir` is the folder given to {@link StorageBehaviourTarget.create};
 * `name` is a tenant id or `'apex'`.
 */
export interface StorageTestSupport {
  /**
   * Runs `sql` (a read) on the stored database `name` through a separate
   * connection, and returns its rows: what is really stored, whatever
   * Shardines reports.
   */
  rawRows(dir: string, name: string, sql: string): Promise<Record<string, unknown>[]>
  /**
   * Opens a database copy that `tenants.backup()` wrote or `tenants.export()`
   * streamed into the local file `file`, runs `sql` (a read) on it, and
   * returns its rows.
   */
  rowsOfCopy(file: string, sql: string): Promise<Record<string, unknown>[]>
  /** Damages the stored database of tenant `tenantId` so that opening or reading it fails (e.g. overwrites its header). */
  corrupt(dir: string, tenantId: string): Promise<void>
  /** Removes the stored database of tenant `tenantId` behind the adapter's back, as another process would. */
  remove(dir: string, tenantId: string): Promise<void>
  /**
   * How many tenant databases this process really holds open right now (open
   * files, connections), to check the pool's counters against; undefined when
   * the target cannot tell (the suite then skips those assertions).
   */
  openTenantDatabases?(dir: string): number | undefined
  /**
   * Everything the adapter keeps under `dir`: each folder (its relative path
   * ending in `/`) and each file (its relative path and size), for "nothing
   * created, removed or left behind" checks. Undefined when the storage is not
   * a local folder (the suite then checks through `list()` and `exists()` only).
   */
  storedFiles?(dir: string): readonly StoredFile[] | undefined
}

/** One entry of {@link StorageTestSupport.storedFiles}. */
export interface StoredFile {
  /** Relative to `dir`, with `/` separators; a folder's ends in `/`. */
  readonly path: string
  /** A file's size in bytes; undefined for a folder. */
  readonly size?: number | undefined
}
