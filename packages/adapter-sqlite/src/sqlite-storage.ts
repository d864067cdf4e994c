import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  APEX,
  InvalidOptionsError,
  isBusyError,
  type PoolStats,
  ShardinesClosedError,
  type StorageAdapter,
  StorageError,
  type StorageHandle,
  TenantBusyError,
  TenantExistsError,
  type TenantLease,
  TenantNotFoundError,
  type WorkerMigrationJob,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { TenantPaths, withSideFiles } from './files/tenant-paths.js'
import { HandlePool } from './handles/handle-pool.js'
import { isOutOfDescriptors, SqliteHandle } from './handles/sqlite-handle.js'
import { runWorkerMigrations } from './migration/worker-migration-runner.js'
import {
  type JournalMode,
  openPragmas,
  type ResolvedSqliteStorageOptions,
  resolveOptions,
  type SqliteStorageOptions,
} from './sqlite-storage-config.js'

/** SQLite's compile-time limit on attached databases in better-sqlite3's build. */
const MAX_ATTACHED = 10

/**
 * The better-sqlite3 storage adapter: `<dir>/apex.sqlite3` and one file per
 * tenant under `<dir>/tenants/`, an LRU of open tenant handles with pinning,
 * atomic create (build a temporary file, then link it into place), destroy,
 * sorted listing, online backup and fork.
 *
 * @example
 * ```ts
 * const shard = createShardines<ApexDB, TenantDB>({ storage: sqliteStorage({ dir: './data', maxOpen: 256 }) })
 * ```
 */
export function sqliteStorage(options: SqliteStorageOptions): StorageAdapter {
  return new SqliteStorage(resolveOptions(options))
}

class SqliteStorage implements StorageAdapter {
  readonly kind = 'sqlite'
  readonly maxAttached = MAX_ATTACHED
  get busyTimeout(): number {
    return this.#options.busyTimeout
  }
  readonly #options: ResolvedSqliteStorageOptions
  readonly #paths: TenantPaths
  readonly #pool: HandlePool
  readonly #doomed = new Set<string>()
  readonly #scratch = new Set<SqliteHandle>()
  #apex: SqliteHandle | undefined
  #tenantsDirReady = false
  #warnedDescriptors = false
  /** Given to handles: a write whose journal cannot be opened frees descriptors and retries. */
  readonly #freeDescriptorsFn = (): boolean => this.#freeDescriptors()
  #closed = false

  constructor(options: ResolvedSqliteStorageOptions) {
    this.#options = options
    this.#paths = new TenantPaths(options.dir)
    this.#pool = new HandlePool(options.maxOpen, (id) => this.#openTenant(id))
  }

  apex(): StorageHandle {
    this.#assertOpen()
    if (this.#apex === undefined || this.#apex.closed) {
      fs.mkdirSync(this.#paths.dir, { recursive: true })
      const db = this.#withDescriptorRetry(() => new Database(this.#paths.apex))
      const mode = this.#options.apexJournalMode
      db.pragma(`journal_mode = ${mode}`)
      db.exec(openPragmas(this.#options, mode))
      this.#apex = new SqliteHandle(APEX, db, this.#options.statementCacheSize)
    }
    return this.#apex
  }

  async acquire(tenantId: string): Promise<TenantLease> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
    try {
      return this.#pool.acquire(tenantId)
    } catch (error) {
      if (!isBusyError(error)) throw error
      return this.#acquireWhenUnlocked(tenantId, error)
    }
  }

  /**
   * Opening a file another process holds exclusively (the rollback journal's
   * EXCLUSIVE lock while it commits, or a `BEGIN EXCLUSIVE`) fails the open's
   * first read: retried off the event loop, with backoff, until `busyTimeout`.
   */
  async #acquireWhenUnlocked(tenantId: string, first: unknown): Promise<TenantLease> {
    const started = performance.now()
    let delay = 1
    let last = first
    for (;;) {
      const left = this.#options.busyTimeout - (performance.now() - started)
      if (left <= 0) throw new TenantBusyError(tenantId, performance.now() - started, { cause: last })
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)))
      delay = Math.min(delay * 2, 50)
      this.#assertOpen()
      if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
      try {
        return this.#pool.acquire(tenantId)
      } catch (error) {
        if (!isBusyError(error)) throw error
        last = error
      }
    }
  }

  async exists(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) return false
    return fs.existsSync(this.#paths.tenant(tenantId))
  }

  async create(tenantId: string, build: (handle: StorageHandle) => Promise<void>): Promise<void> {
    this.#assertOpen()
    const target = this.#paths.tenant(tenantId)
    this.#ensureTenantsDir()
    if (fs.existsSync(target)) throw new TenantExistsError(tenantId)
    const temporary = this.#paths.temporary('creating', tenantId)
    try {
      const db = this.#withDescriptorRetry(() => new Database(temporary))
      const handle = new SqliteHandle(tenantId, db, this.#options.statementCacheSize, this.#freeDescriptorsFn)
      try {
        db.pragma(`journal_mode = ${this.#options.journalMode}`)
        db.exec(openPragmas(this.#options, this.#options.journalMode))
        await build(handle)
      } finally {
        handle.close()
      }
      this.#publish(temporary, target, tenantId)
    } finally {
      removeFiles(temporary)
    }
  }

  async destroy(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
    this.#doomed.add(tenantId)
    try {
      await this.#pool.closeWhenIdle(tenantId)
      const file = this.#paths.tenant(tenantId)
      const existed = fs.existsSync(file)
      // Side files first: a crash in between leaves a whole database, never a file without its journal.
      for (const side of withSideFiles(file).slice(1)) removeFile(side)
      removeFile(file)
      return existed
    } finally {
      this.#doomed.delete(tenantId)
    }
  }

  async *list(): AsyncIterable<string> {
    this.#assertOpen()
    let dir: fs.Dir
    try {
      dir = await fs.promises.opendir(this.#paths.tenantsDir, { bufferSize: 1024 })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    const ids: string[] = []
    for await (const entry of dir) {
      const id = this.#paths.idOf(entry.name)
      if (id !== undefined && !this.#doomed.has(id)) ids.push(id)
    }
    ids.sort()
    yield* ids
  }

  async backup(name: string, destPath: string, options: { readonly overwrite?: boolean } = {}): Promise<void> {
    this.#assertOpen()
    if (name !== APEX && (this.#doomed.has(name) || !fs.existsSync(this.#paths.tenant(name)))) {
      throw new TenantNotFoundError(name)
    }
    const dest = this.#backupDestination(name, destPath, options.overwrite === true)
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    const partial = `${dest}.partial-${process.pid}-${Date.now().toString(36)}`
    try {
      await this.#copyLive(name, partial)
      fs.renameSync(partial, dest)
    } finally {
      removeFiles(partial)
    }
  }

  /**
   * Where a backup may go: outside the data folder (symlinks resolved), not an
   * existing file unless `overwrite`, never a live database. The path returned
   * has its existing part resolved, so a link swapped in later cannot redirect
   * the final rename into the data folder.
   */
  #backupDestination(name: string, destPath: string, overwrite: boolean): string {
    const requested = path.resolve(destPath)
    const dest = realpathOfExisting(requested)
    const dataDir = realpathOfExisting(path.resolve(this.#paths.dir))
    const what = name === APEX ? 'the apex database' : `tenant "${name}"`
    if (dest === dataDir || dest.startsWith(dataDir + path.sep)) {
      throw new InvalidOptionsError(
        `Refused to back up ${what} to ${requested}: it is inside the data folder ${dataDir}, where a backup could replace or be taken for a live database. Choose a path outside it.`,
      )
    }
    let stat: fs.Stats | undefined
    try {
      stat = fs.statSync(dest)
    } catch {
      // Nothing there: the common case.
    }
    if (stat !== undefined) {
      if (!stat.isFile()) {
        throw new InvalidOptionsError(`Refused to back up ${what} to ${requested}: it exists and is not a file.`)
      }
      if (!overwrite) {
        throw new InvalidOptionsError(
          `Refused to back up ${what} to ${requested}: the file exists. Pass { overwrite: true } (CLI: --overwrite) to replace it.`,
        )
      }
      if (this.#isLiveDatabase(dest)) {
        throw new InvalidOptionsError(
          `Refused to back up ${what} to ${requested}: it is a live database of this instance, and nothing is ever written over one.`,
        )
      }
    }
    return dest
  }

  /** Whether `file` (a resolved path) is the apex file, a tenant file or one of their side files. */
  #isLiveDatabase(file: string): boolean {
    const base = file.replace(/-(wal|shm|journal)$/, '')
    if (base === realpathOfExisting(this.#paths.apex)) return true
    const apexHandle = this.#apex
    if (apexHandle !== undefined && base === realpathOfExisting(apexHandle.db.name)) return true
    for (const handle of this.#pool.handles()) if (base === realpathOfExisting(handle.db.name)) return true
    return false
  }

  async fork(fromId: string, toId: string): Promise<void> {
    this.#assertOpen()
    const target = this.#paths.tenant(toId)
    this.#ensureTenantsDir()
    if (fs.existsSync(target)) throw new TenantExistsError(toId)
    const temporary = this.#paths.temporary('forking', toId)
    try {
      await this.#copyLive(fromId, temporary)
      this.#publish(temporary, target, toId)
    } finally {
      removeFiles(temporary)
    }
  }

  locate(name: string): string {
    return name === APEX ? this.#paths.apex : this.#paths.tenant(name)
  }

  openScratch(): StorageHandle {
    this.#assertOpen()
    const db = this.#withDescriptorRetry(() => new Database(':memory:'))
    db.exec(openPragmas(this.#options, 'delete'))
    const handle = new SqliteHandle('scratch', db, this.#options.statementCacheSize)
    this.#scratch.add(handle)
    return handle
  }

  closeScratch(handle: StorageHandle): void {
    const scratch = handle as SqliteHandle
    this.#scratch.delete(scratch)
    scratch.close()
  }

  stats(): PoolStats {
    return this.#pool.stats()
  }

  /** Migrates tenants on worker threads, each opening files with this adapter's pragmas and busy timeout. */
  migrateInWorkers(job: WorkerMigrationJob): Promise<void> {
    this.#assertOpen()
    // A worker changed the schema behind this process's handle: its cached statements and their
    // verdicts were judged against the old schema (an unqualified name may now resolve elsewhere).
    const onOutcome = (outcome: Parameters<WorkerMigrationJob['onOutcome']>[0]) => {
      if (outcome.status === 'migrated') this.#pool.peek(outcome.id)?.clearStatementCache()
      job.onOutcome(outcome)
    }
    return runWorkerMigrations(
      { ...job, onOutcome },
      {
        fileOf: (id) => this.#paths.tenant(id),
        // A worker blocks only itself: SQLite's own wait can be the whole busy timeout there.
        pragmas: openPragmas(this.#options, this.#options.journalMode, this.#options.busyTimeout),
        busyTimeout: this.#options.busyTimeout,
        statementCacheSize: Math.min(this.#options.statementCacheSize, 50),
      },
    )
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#pool.closeAll()
    for (const scratch of this.#scratch) scratch.close()
    this.#scratch.clear()
    this.#apex?.close()
  }

  /** Opens a tenant for the pool (a miss): open + pragmas; journal mode was set at create. */
  #openTenant(tenantId: string): SqliteHandle {
    const file = this.#paths.tenant(tenantId)
    let db: Database.Database
    try {
      // The pragmas are inside the retry: they make the first read, which is when a
      // WAL file opens its -wal and -shm (two more descriptors) and can hit EMFILE.
      db = this.#withDescriptorRetry(() => {
        const opened = new Database(file, { fileMustExist: true })
        try {
          opened.exec(openPragmas(this.#options, this.#options.journalMode))
        } catch (error) {
          opened.close()
          throw error
        }
        return opened
      }, file)
    } catch (error) {
      if (!fs.existsSync(file)) throw new TenantNotFoundError(tenantId)
      // Locked by another process: the caller (acquire) waits for it.
      if (isBusyError(error)) throw error
      throw new StorageError(`Could not open tenant "${tenantId}": ${(error as Error).message}`, {
        cause: error,
        tenantId,
      })
    }
    return new SqliteHandle(tenantId, db, this.#options.statementCacheSize, this.#freeDescriptorsFn)
  }

  /**
   * Opens with retries when the process is out of file descriptors: each retry
   * closes the least recently used unpinned handle first, and the pool's limit
   * is lowered to what the process can hold (with one warning).
   */
  #withDescriptorRetry(open: () => Database.Database, mustExist?: string): Database.Database {
    for (;;) {
      try {
        return open()
      } catch (error) {
        if (mustExist !== undefined && !fs.existsSync(mustExist)) throw error
        if (!isOutOfDescriptors(error) || !this.#freeDescriptors()) throw error
      }
    }
  }

  /**
   * The process ran out of file descriptors: closes unpinned handles down to a
   * lower `maxOpen` (warning once). False when every handle is pinned.
   */
  #freeDescriptors(): boolean {
    if (!this.#pool.evictOne()) return false
    // Leave headroom, not one spare descriptor: every handle in a write transaction opens a
    // journal too, and the process needs descriptors of its own.
    const limit = Math.max(1, Math.floor(this.#pool.size * 0.9) - this.#pool.stats().pinned)
    if (limit < this.#pool.maxOpen) {
      this.#pool.shrink(limit)
      while (this.#pool.size > limit && this.#pool.evictOne()) {}
    }
    if (!this.#warnedDescriptors) {
      this.#warnedDescriptors = true
      this.#options.onWarning(
        `shardines: the process ran out of file descriptors with ${this.#pool.size + 1} tenant handles open; lowering maxOpen from ${this.#options.maxOpen} to ${this.#pool.maxOpen}. Raise the limit (ulimit -n) or lower maxOpen.`,
      )
    }
    return true
  }

  /** A consistent copy of a live database through SQLite's online backup API. */
  async #copyLive(name: string, dest: string): Promise<void> {
    if (name !== APEX && this.#doomed.has(name)) throw new TenantNotFoundError(name)
    // The lease keeps the tenant from being destroyed mid-copy (and reports a missing tenant).
    const lease = name === APEX ? undefined : this.#pool.acquire(name)
    // The copy reads through a private connection: the shared handle may be inside a scope's open
    // transaction, and a backup through that connection fails (SQLITE_BUSY, which better-sqlite3
    // then reports as a finished backup with no file) or disturbs the transaction.
    let source: Database.Database | undefined
    try {
      source = this.#withDescriptorRetry(() => new Database(this.locate(name), { fileMustExist: true }))
      source.pragma(`busy_timeout = ${this.#options.busyTimeout}`)
      // All pages in one step, under one read lock: a stepwise copy restarts whenever another
      // connection commits, so it might never finish while a tenant keeps writing.
      await source.backup(dest, { progress: () => 0x7fffffff })
    } finally {
      source?.close()
      lease?.release()
    }
  }

  /** Links a finished temporary database into place: atomic, and fails if the name is taken. */
  #publish(temporary: string, target: string, tenantId: string): void {
    try {
      fs.linkSync(temporary, target)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TenantExistsError(tenantId)
      throw error
    }
    if (this.#options.synchronous !== 'off') fsyncDirectory(this.#paths.tenantsDir)
  }

  #ensureTenantsDir(): void {
    if (this.#tenantsDirReady) return
    fs.mkdirSync(this.#paths.tenantsDir, { recursive: true })
    this.#tenantsDirReady = true
  }

  #assertOpen(): void {
    if (this.#closed) throw new ShardinesClosedError()
  }
}

/** `file` with its longest existing ancestor resolved through symlinks (the rest appended as given). */
function realpathOfExisting(file: string): string {
  let existing = file
  const rest: string[] = []
  for (;;) {
    try {
      return path.join(fs.realpathSync(existing), ...rest)
    } catch {
      const parent = path.dirname(existing)
      if (parent === existing) return file
      rest.unshift(path.basename(existing))
      existing = parent
    }
  }
}

function removeFile(file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

function removeFiles(file: string): void {
  for (const f of withSideFiles(file)) removeFile(f)
}

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

export type { JournalMode }
