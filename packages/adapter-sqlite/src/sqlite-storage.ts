import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  APEX,
  type ArchivedTenant,
  type DoctorOptions,
  type DoctorReport,
  InvalidOptionsError,
  isBusyError,
  type LayoutMigrationOptions,
  type LayoutMigrationReport,
  type PoolStats,
  type ScratchHandle,
  ShardinesClosedError,
  type StorageAdapter,
  type StorageCapabilities,
  StorageError,
  type StorageHandle,
  type StorageLocation,
  type StoragePoolEvent,
  TenantArchivedError,
  TenantBusyError,
  TenantExistsError,
  type TenantLease,
  TenantNotFoundError,
  type WorkerMigrationJob,
} from '@shardines/core'
import { betterSqlite3Driver, type DriverConnection, type SqliteDriver } from './driver/sqlite-driver.js'
import {
  archivedIds,
  finishArchive,
  isArchivedFile,
  readArchiveRecord,
  writeFileAtomic,
} from './files/archive-files.js'
import { runDoctor } from './files/doctor.js'
import { type LifecycleIntent, LifecycleLocks } from './files/lifecycle-lock.js'
import {
  decompressFile,
  type FileIdentity,
  fsyncDirectory,
  inspectTenantFile,
  isSameFile,
  realpathOfExisting,
  removeFile,
  removeFiles,
  sameInode,
  storageFailure,
} from './files/tenant-files.js'
import { BUCKET, TenantPaths, withSideFiles } from './files/tenant-paths.js'
import { HandlePool } from './handles/handle-pool.js'
import { PoolObservers } from './handles/pool-observers.js'
import { isOutOfDescriptors, SqliteHandle } from './handles/sqlite-handle.js'
import { runWorkerMigrations } from './migration/worker-migration-runner.js'
import {
  type JournalMode,
  nativeBusyTimeout,
  openPragmas,
  type ResolvedSqliteStorageOptions,
  resolveOptions,
  type SqliteStorageOptions,
  tenantOpenPragmas,
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
  return new SqliteStorage(resolveOptions(options), { kind: 'sqlite', driver: betterSqlite3Driver() })
}

/**
 * An SQLite engine family member: the engine's driver and the name the
 * adapter reports (`StorageAdapter.kind`).
 */
export interface SqliteFamily {
  readonly kind: string
  readonly driver: SqliteDriver
  /** Capabilities this family lacks on top of the storage's (e.g. worker migrations without a worker-safe driver). */
  readonly without?: readonly (keyof StorageCapabilities)[]
}

/**
 * The file-based storage on any SQLite-family engine (see `SqliteDriver`):
 * what `sqliteStorage` is on better-sqlite3, and what
 * `@shardines/adapter-libsql`'s local mode is on libSQL.
 */
export function createSqliteFamilyStorage(family: SqliteFamily, options: SqliteStorageOptions): StorageAdapter {
  return new SqliteStorage(resolveOptions(options), family)
}

/** What the better-sqlite3 adapter can do: everything the contract describes. */
const CAPABILITIES: StorageCapabilities = Object.freeze({
  attach: true,
  syncReads: true,
  workerMigrations: true,
  backupToPath: true,
  exportStream: true,
  rename: true,
  archive: true,
  doctor: true,
  layoutMigration: true,
  rekey: false,
})

class SqliteStorage implements StorageAdapter {
  readonly kind: string
  readonly capabilities: StorageCapabilities
  readonly maxAttached = MAX_ATTACHED
  get busyTimeout(): number {
    return this.#options.busyTimeout
  }
  readonly #options: ResolvedSqliteStorageOptions
  readonly #driver: SqliteDriver
  readonly #paths: TenantPaths
  readonly #pool: HandlePool
  /** Core, while someone listens to its events (`observePool`). */
  readonly #observers = new PoolObservers()
  readonly #locks: LifecycleLocks
  /**
   * Tenants a lifecycle step of this process is taking away: new acquisitions
   * are refused at once (archive: `TenantArchivedError`, otherwise
   * `TenantNotFoundError`). `list()` leaves out only those being destroyed: a
   * tenant being renamed or archived stays listed until its file moves.
   */
  readonly #doomed = new Map<string, 'destroy' | 'rename' | 'archive'>()
  readonly #scratch = new Set<SqliteHandle>()
  /** Tenants being re-encrypted by this process: new acquisitions wait for these. */
  readonly #rekeying = new Map<string, Promise<void>>()
  #apex: SqliteHandle | undefined
  #tenantsDirReady = false
  #warnedDescriptors = false
  /** Given to handles: a write whose journal cannot be opened frees descriptors and retries. */
  readonly #freeDescriptorsFn = (): boolean => this.#freeDescriptors()
  #closed = false

  constructor(options: ResolvedSqliteStorageOptions, family: SqliteFamily) {
    this.kind = family.kind
    this.#driver = family.driver
    this.capabilities = Object.freeze({
      ...CAPABILITIES,
      // Re-encryption is the driver's: an engine without encryption cannot rekey.
      rekey: family.driver.rekey !== undefined,
      ...Object.fromEntries((family.without ?? []).map((name) => [name, false])),
    })
    this.#options = options
    this.#paths = new TenantPaths(options.dir, options.layout)
    this.#pool = new HandlePool(
      options.maxOpen,
      (id) => this.#openTenant(id),
      (handle) => handle.identity === undefined || isSameFile(handle.file, handle.identity),
      this.#observers,
    )
    this.#locks = new LifecycleLocks(this.#paths, options.busyTimeout, (intent) => this.#recover(intent))
  }

  apex(): StorageHandle {
    this.#assertOpen()
    if (this.#apex === undefined || this.#apex.closed) {
      fs.mkdirSync(this.#paths.dir, { recursive: true })
      const db = this.#withDescriptorRetry(() => this.#driver.open(this.#paths.apex, { name: APEX }))
      const mode = this.#options.apexJournalMode
      db.pragma(`journal_mode = ${mode}`)
      db.exec(openPragmas(this.#options, mode))
      this.#apex = new SqliteHandle(APEX, db, this.#options.statementCacheSize, {
        driver: this.#driver,
        file: this.#paths.apex,
      })
    }
    return this.#apex
  }

  async acquire(tenantId: string): Promise<TenantLease> {
    this.#assertOpen()
    const rekeying = this.#rekeying.get(tenantId)
    if (rekeying !== undefined) await rekeying
    if (this.#doomed.has(tenantId)) throw this.#doomedError(tenantId)
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
    for (let attempt = 1; ; attempt++) {
      const left = this.#options.busyTimeout - (performance.now() - started)
      if (left <= 0) throw new TenantBusyError(tenantId, performance.now() - started, { cause: last })
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, left)))
      delay = Math.min(delay * 2, 50)
      this.#assertOpen()
      if (this.#observers.active) {
        this.#observers.emit({
          type: 'pool:retry',
          tenantId,
          reason: 'locked',
          attempt,
          waitedMs: performance.now() - started,
        })
      }
      if (this.#doomed.has(tenantId)) throw this.#doomedError(tenantId)
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
    return this.#liveFile(tenantId) !== undefined
  }

  async isArchived(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    return isArchivedFile(this.#paths, tenantId)
  }

  async create(tenantId: string, build: (handle: StorageHandle) => Promise<void>): Promise<void> {
    this.#assertOpen()
    this.#ensureTenantsDir()
    if (this.#liveFile(tenantId) !== undefined) throw new TenantExistsError(tenantId)
    await this.#locks.hold([tenantId], { op: 'create', id: tenantId }, async () => {
      if (this.#liveFile(tenantId) !== undefined) throw new TenantExistsError(tenantId)
      if (isArchivedFile(this.#paths, tenantId)) throw new TenantArchivedError(tenantId)
      const target = this.#paths.tenant(tenantId)
      const temporary = this.#temporary('creating', tenantId)
      try {
        const db = this.#withDescriptorRetry(() => this.#driver.open(temporary, { name: tenantId }))
        const handle = new SqliteHandle(tenantId, db, this.#options.statementCacheSize, {
          driver: this.#driver,
          file: temporary,
          freeDescriptors: this.#freeDescriptorsFn,
        })
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
    })
  }

  async destroy(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
    // New scopes are refused from this call on, before the lock is taken.
    this.#doomed.set(tenantId, 'destroy')
    try {
      return await this.#locks.hold([tenantId], { op: 'destroy', id: tenantId }, async () => {
        await this.#pool.closeWhenIdle(tenantId)
        let existed = false
        for (const file of this.#tenantFiles(tenantId)) {
          existed = true
          // Side files first: a crash in between leaves a whole database, never a file without its journal.
          for (const side of withSideFiles(file).slice(1)) removeFile(side)
          removeFile(file)
        }
        if (isArchivedFile(this.#paths, tenantId)) {
          existed = true
          removeFiles(this.#paths.staged(tenantId))
          removeFile(this.#paths.archived(tenantId))
          removeFile(this.#paths.archiveMeta(tenantId))
        }
        return existed
      })
    } finally {
      this.#doomed.delete(tenantId)
    }
  }

  async rename(from: string, to: string): Promise<void> {
    this.#assertOpen()
    if (this.#doomed.has(from)) throw new TenantNotFoundError(from)
    if (this.#liveFile(from) === undefined) throw this.#missing(from)
    // New scopes of `from` are refused from this call on, before the lock is taken.
    this.#doomed.set(from, 'rename')
    try {
      await this.#locks.hold([from, to], { op: 'rename', id: from, to }, async () => {
        const source = this.#liveFile(from)
        if (source === undefined) throw this.#missing(from)
        if (this.#liveFile(to) !== undefined || isArchivedFile(this.#paths, to)) throw new TenantExistsError(to)
        const target = this.#paths.tenant(to)
        await this.#pool.closeWhenIdle(from)
        await this.#whileQuiet(from, source, () => {
          fs.mkdirSync(path.dirname(target), { recursive: true })
          try {
            fs.linkSync(source, target)
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TenantExistsError(to)
            throw error
          }
          this.#syncDirectory(path.dirname(target))
          removeFile(source)
          this.#syncDirectory(path.dirname(source))
        })
        for (const side of withSideFiles(source).slice(1)) removeFile(side)
      })
    } finally {
      this.#doomed.delete(from)
    }
  }

  async rekey(tenantId: string, previousKey: string): Promise<void> {
    this.#assertOpen()
    const rekey = this.#driver.rekey
    if (rekey === undefined || !this.capabilities.rekey) {
      throw new InvalidOptionsError(`tenants.rekey(): the ${this.kind} storage does not encrypt databases.`)
    }
    if (this.#doomed.has(tenantId)) throw this.#doomedError(tenantId)
    if (this.#liveFile(tenantId) === undefined) throw this.#missing(tenantId)
    // New scopes of the tenant wait for the rekey (see acquire), then open it with its new key.
    let finished!: () => void
    const running = new Promise<void>((resolve) => {
      finished = resolve
    })
    const previous = this.#rekeying.get(tenantId)
    this.#rekeying.set(tenantId, running)
    try {
      await previous
      await this.#locks.hold([tenantId], { op: 'rekey', id: tenantId }, async () => {
        const file = this.#liveFile(tenantId)
        if (file === undefined) throw this.#missing(tenantId)
        await this.#pool.closeWhenIdle(tenantId)
        try {
          rekey.call(this.#driver, file, tenantId, previousKey, this.#options.busyTimeout)
        } catch (error) {
          if (isBusyError(error)) throw new TenantBusyError(tenantId, this.#options.busyTimeout, { cause: error })
          throw new StorageError(
            `Could not re-encrypt tenant "${tenantId}": ${(error as Error).message}. Its database is unchanged, still encrypted with the previous key.`,
            { tenantId, cause: error, reason: 'corrupt', driverCode: (error as { code?: string }).code },
          )
        }
      })
    } finally {
      if (this.#rekeying.get(tenantId) === running) this.#rekeying.delete(tenantId)
      finished()
    }
  }

  async archive(tenantId: string): Promise<ArchivedTenant> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
    if (this.#liveFile(tenantId) === undefined) throw this.#missing(tenantId)
    // New scopes are refused from this call on, before the lock is taken.
    this.#doomed.set(tenantId, 'archive')
    try {
      return await this.#locks.hold([tenantId], { op: 'archive', id: tenantId }, async () => {
        const source = this.#liveFile(tenantId)
        if (source === undefined) throw this.#missing(tenantId)
        if (isArchivedFile(this.#paths, tenantId)) {
          throw new StorageError(
            `Tenant "${tenantId}" is both live and archived; nothing was changed. Run shardines doctor to see both files.`,
            { tenantId },
          )
        }
        await this.#pool.closeWhenIdle(tenantId)
        fs.mkdirSync(this.#paths.archiveDir, { recursive: true })
        const staged = this.#paths.staged(tenantId)
        await this.#whileQuiet(tenantId, source, () => {
          // One rename takes it out of the live set; what follows only compresses it.
          fs.renameSync(source, staged)
          this.#syncDirectory(this.#paths.archiveDir)
          this.#syncDirectory(path.dirname(source))
        })
        for (const side of withSideFiles(source).slice(1)) removeFile(side)
        return await finishArchive(this.#paths, tenantId, this.#driver)
      })
    } finally {
      this.#doomed.delete(tenantId)
    }
  }

  async restore(tenantId: string): Promise<void> {
    this.#assertOpen()
    await this.#locks.hold([tenantId], { op: 'restore', id: tenantId }, async () => {
      if (this.#liveFile(tenantId) !== undefined) throw new TenantExistsError(tenantId)
      if (fs.existsSync(this.#paths.staged(tenantId))) await finishArchive(this.#paths, tenantId, this.#driver)
      const archived = this.#paths.archived(tenantId)
      if (!fs.existsSync(archived)) throw new TenantNotFoundError(tenantId)
      const target = this.#paths.tenant(tenantId)
      fs.mkdirSync(path.dirname(target), { recursive: true })
      const temporary = this.#temporary('restoring', tenantId)
      try {
        try {
          await decompressFile(archived, temporary)
        } catch (error) {
          throw new StorageError(
            `Could not restore tenant "${tenantId}": its archive ${archived} cannot be read (${(error as Error).message}). It stays archived.`,
            { tenantId, cause: error, reason: 'corrupt' },
          )
        }
        if (!this.#holdsDatabase(temporary, tenantId)) {
          throw new StorageError(
            `Could not restore tenant "${tenantId}": its archive ${archived} does not hold an SQLite database. It stays archived.`,
            { tenantId, reason: 'not-a-database' },
          )
        }
        this.#publish(temporary, target, tenantId)
        // Live from here on: the archive goes (a crash before this is finished by the next lock holder).
        removeFile(archived)
        removeFile(this.#paths.archiveMeta(tenantId))
        this.#syncDirectory(this.#paths.archiveDir)
      } finally {
        removeFiles(temporary)
      }
    })
  }

  async *listArchived(): AsyncIterable<ArchivedTenant> {
    this.#assertOpen()
    for (const id of await archivedIds(this.#paths)) {
      try {
        yield readArchiveRecord(this.#paths, id)
      } catch {
        // Restored meanwhile.
      }
    }
  }

  async doctor(options: DoctorOptions): Promise<DoctorReport> {
    this.#assertOpen()
    return runDoctor(
      {
        paths: this.#paths,
        repair: (id) => this.#locks.hold([id], { op: 'repair', id }, async () => undefined),
        driver: this.#driver,
        finishArchive: (id) =>
          this.#locks.hold([id], { op: 'archive', id }, () => finishArchive(this.#paths, id, this.#driver)),
      },
      options,
    )
  }

  async migrateLayout(options: LayoutMigrationOptions): Promise<LayoutMigrationReport> {
    this.#assertOpen()
    const layout = this.#paths.layout
    const other = layout === 'flat' ? 'hashed' : 'flat'
    let moved = 0
    let inPlace = 0
    const failed: { id: string; error: Error }[] = []
    for (const id of await this.#listIds()) {
      const source = this.#paths.inLayout(id, other)
      const target = this.#paths.inLayout(id, layout)
      let done: 'moved' | 'in-place'
      try {
        done = await this.#moveToLayout(id, source, target)
      } catch (error) {
        failed.push({ id, error: error as Error })
        continue
      }
      if (done === 'moved') moved++
      else inPlace++
      options.onProgress?.({ done: moved + inPlace + failed.length, id })
    }
    return { moved, inPlace, failed }
  }

  /** Moves one tenant's file between layouts under its lock (link, then unlink: resumable at every step). */
  #moveToLayout(id: string, source: string, target: string): Promise<'moved' | 'in-place'> {
    return this.#locks.hold([id], { op: 'layout', id, source, target }, async (): Promise<'moved' | 'in-place'> => {
      if (!fs.existsSync(source)) return 'in-place'
      if (fs.existsSync(target)) {
        if (!sameInode(source, target)) {
          throw new StorageError(
            `Tenant "${id}" has a file in both layouts (${source} and ${target}) that are not the same file; nothing was moved. Keep the right one and remove the other.`,
            { tenantId: id },
          )
        }
      } else {
        await this.#whileQuiet(id, source, () => {
          fs.mkdirSync(path.dirname(target), { recursive: true })
          fs.linkSync(source, target)
          this.#syncDirectory(path.dirname(target))
        })
      }
      // Both names are the same file now: dropping the old one moves it.
      removeFile(source)
      this.#syncDirectory(path.dirname(source))
      for (const side of withSideFiles(source).slice(1)) removeFile(side)
      return 'moved'
    })
  }

  async *list(): AsyncIterable<string> {
    this.#assertOpen()
    for (const id of await this.#listIds()) if (this.#doomed.get(id) !== 'destroy') yield id
  }

  /**
   * Every tenant id in either layout (flat files in `tenants/`, and files in
   * its two-hex-digit subfolders), sorted, without duplicates (a tenant whose
   * move to the other layout is under way has two names for one file).
   */
  async #listIds(): Promise<string[]> {
    const ids: string[] = []
    let top: fs.Dirent[]
    try {
      top = await fs.promises.readdir(this.#paths.tenantsDir, { withFileTypes: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
    for (const entry of top) {
      if (entry.isDirectory()) {
        if (!BUCKET.test(entry.name)) continue
        const level1 = path.join(this.#paths.tenantsDir, entry.name)
        for (const sub of await fs.promises.readdir(level1, { withFileTypes: true })) {
          if (!sub.isDirectory() || !BUCKET.test(sub.name)) continue
          for (const name of await fs.promises.readdir(path.join(level1, sub.name))) {
            const id = this.#paths.idOf(name)
            if (id !== undefined) ids.push(id)
          }
        }
      } else {
        const id = this.#paths.idOf(entry.name)
        if (id !== undefined) ids.push(id)
      }
    }
    ids.sort()
    let unique = 0
    for (let i = 0; i < ids.length; i++) if (i === 0 || ids[i] !== ids[i - 1]) ids[unique++] = ids[i] as string
    ids.length = unique
    return ids
  }

  async backup(name: string, destPath: string, options: { readonly overwrite?: boolean } = {}): Promise<void> {
    this.#assertOpen()
    if (name !== APEX && (this.#doomed.has(name) || this.#liveFile(name) === undefined)) {
      throw new TenantNotFoundError(name)
    }
    const dest = this.#backupDestination(name, destPath, options.overwrite === true)
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    const partial = `${dest}.partial-${process.pid}-${Date.now().toString(36)}`
    // Recorded in the data folder while it runs: a killed backup's partial file (outside the
    // folder) is found and removed by doctor.
    const record = path.join(this.#paths.backupsDir, `${path.basename(partial)}.json`)
    fs.mkdirSync(this.#paths.backupsDir, { recursive: true })
    writeFileAtomic(record, JSON.stringify({ pid: process.pid, partial }))
    try {
      await this.#copyLive(name, partial)
      fs.renameSync(partial, dest)
    } finally {
      removeFiles(partial)
      removeFile(record)
    }
  }

  /**
   * The live database's bytes: an online backup into a private temporary
   * folder (recorded in the data folder like a backup, so doctor finds a
   * killed export's copy), streamed, then removed.
   */
  async *export(name: string): AsyncGenerator<Uint8Array> {
    this.#assertOpen()
    if (name !== APEX && (this.#doomed.has(name) || this.#liveFile(name) === undefined)) {
      throw new TenantNotFoundError(name)
    }
    const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'shardines-export-'))
    const partial = path.join(staging, `${name}.sqlite3.partial-${process.pid}-${Date.now().toString(36)}`)
    const record = path.join(this.#paths.backupsDir, `${path.basename(partial)}.json`)
    fs.mkdirSync(this.#paths.backupsDir, { recursive: true })
    writeFileAtomic(record, JSON.stringify({ pid: process.pid, partial }))
    try {
      await this.#copyLive(name, partial)
      for await (const chunk of fs.createReadStream(partial)) yield chunk as Buffer
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
      removeFile(record)
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
    if (apexHandle !== undefined && base === realpathOfExisting(apexHandle.file)) return true
    for (const handle of this.#pool.handles()) if (base === realpathOfExisting(handle.file)) return true
    return false
  }

  async fork(fromId: string, toId: string): Promise<void> {
    this.#assertOpen()
    this.#ensureTenantsDir()
    if (this.#liveFile(toId) !== undefined) throw new TenantExistsError(toId)
    await this.#locks.hold([fromId, toId], { op: 'fork', id: toId }, async () => {
      if (this.#liveFile(toId) !== undefined) throw new TenantExistsError(toId)
      if (isArchivedFile(this.#paths, toId)) throw new TenantArchivedError(toId)
      const target = this.#paths.tenant(toId)
      const temporary = this.#temporary('forking', toId)
      try {
        await this.#copyLive(fromId, temporary)
        this.#driver.adoptCopy?.(temporary, fromId, toId)
        this.#publish(temporary, target, toId)
      } finally {
        removeFiles(temporary)
      }
    })
  }

  locate(name: string): StorageLocation {
    // Core attaches what it locates read-only (apex and other tenants from a scope).
    return this.#driver.attachLocation(this.#fileOf(name), true) as StorageLocation
  }

  /**
   * Whether `file` is a database the driver opens as tenant `tenantId`'s (its
   * schema can be read): an SQLite file, or an encrypted one with that
   * tenant's key, where the header check of a plain file would not do.
   */
  #holdsDatabase(file: string, tenantId: string): boolean {
    let db: DriverConnection | undefined
    try {
      db = this.#driver.open(file, { readonly: true, fileMustExist: true, name: tenantId })
      db.prepare('select count(*) from sqlite_master').get()
      return true
    } catch {
      return false
    } finally {
      db?.close()
    }
  }

  /** The database file of `'apex'` or a tenant (where it is now, in either layout). */
  #fileOf(name: string): string {
    if (name === APEX) return this.#paths.apex
    return this.#liveFile(name) ?? this.#paths.tenant(name)
  }

  openScratch(): ScratchHandle {
    this.#assertOpen()
    const db = this.#withDescriptorRetry(() => this.#driver.open(':memory:'))
    db.exec(openPragmas(this.#options, 'delete'))
    const scratches = this.#scratch
    const handle = new SqliteHandle('scratch', db, this.#options.statementCacheSize, {
      driver: this.#driver,
      file: ':memory:',
      onClose: () => scratches.delete(handle),
    })
    scratches.add(handle)
    return handle
  }

  stats(): PoolStats {
    return this.#pool.stats()
  }

  observePool(listener: (event: StoragePoolEvent) => void): () => void {
    return this.#observers.add(listener)
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
        fileOf: (id) => this.#liveFile(id) ?? this.#paths.tenant(id),
        // A worker blocks only itself: SQLite's own wait can be the whole busy timeout there.
        pragmas: openPragmas(this.#options, this.#options.journalMode, this.#options.busyTimeout),
        busyTimeout: this.#options.busyTimeout,
        statementCacheSize: Math.min(this.#options.statementCacheSize, 50),
        driver: this.#driver.workerModule,
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

  /** What a tenant's open runs after the constructor (worked out on the first open: it reads the build's defaults). */
  #tenantPragmas: string | undefined

  /**
   * Opens a tenant for the pool (a miss): checks what is at its path (see
   * `inspectTenantFile`), remembers the file's identity, opens it and runs the
   * pragmas (journal mode was set at create). Failures are this tenant's typed
   * errors; only running out of descriptors touches the pool.
   */
  #openTenant(tenantId: string): SqliteHandle {
    let file = this.#paths.tenant(tenantId)
    let identity: FileIdentity | undefined = inspectTenantFile(tenantId, file)
    if (identity === undefined) {
      file = this.#paths.otherLayout(tenantId)
      identity = inspectTenantFile(tenantId, file)
    }
    if (identity === undefined) throw this.#missing(tenantId)
    let db: DriverConnection
    let stamp = 0
    try {
      // The first read is inside the retry: it is when a WAL file opens its -wal and -shm (two
      // more descriptors) and can hit EMFILE. It reads user_version (core's version check, which
      // then runs no statement of its own), and SQLite checks the header and the file's size on
      // that read: a foreign, cut or unreadable file fails here, as this tenant's error.
      db = this.#withDescriptorRetry(
        () => {
          const opened = this.#driver.open(file, {
            fileMustExist: true,
            timeout: nativeBusyTimeout(this.#options),
            name: tenantId,
          })
          try {
            this.#tenantPragmas ??= tenantOpenPragmas(this.#options, this.#options.journalMode, this.#driver)
            const pragmas = this.#tenantPragmas
            if (pragmas !== '') opened.exec(pragmas)
            stamp = readStampAndSchema(opened)
          } catch (error) {
            opened.close()
            throw error
          }
          return opened
        },
        file,
        tenantId,
      )
    } catch (error) {
      if (!fs.existsSync(file)) throw this.#missing(tenantId)
      // Locked by another process: the caller (acquire) waits for it.
      if (isBusyError(error)) throw error
      throw storageFailure(tenantId, file, error)
    }
    return new SqliteHandle(tenantId, db, this.#options.statementCacheSize, {
      driver: this.#driver,
      file,
      freeDescriptors: this.#freeDescriptorsFn,
      identity,
      versionStampAtOpen: stamp,
    })
  }

  /** The error for a tenant a lifecycle step of this process is taking away. */
  #doomedError(tenantId: string): TenantArchivedError | TenantNotFoundError {
    return this.#doomed.get(tenantId) === 'archive'
      ? new TenantArchivedError(tenantId)
      : new TenantNotFoundError(tenantId)
  }

  /** The error for a tenant with no live file: archived, or not there at all. */
  #missing(tenantId: string): TenantArchivedError | TenantNotFoundError {
    return isArchivedFile(this.#paths, tenantId) ? new TenantArchivedError(tenantId) : new TenantNotFoundError(tenantId)
  }

  /** The tenant's live file: in the configured layout, else in the other one (not moved yet), else none. */
  #liveFile(tenantId: string): string | undefined {
    const file = this.#paths.tenant(tenantId)
    if (fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined) return file
    const other = this.#paths.otherLayout(tenantId)
    if (fs.lstatSync(other, { throwIfNoEntry: false }) !== undefined) return other
    return undefined
  }

  /** Every live file of the tenant (two during a layout move). */
  #tenantFiles(tenantId: string): string[] {
    return [this.#paths.tenant(tenantId), this.#paths.otherLayout(tenantId)].filter(
      (file) => fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined,
    )
  }

  /** A temporary file in the tenant's folder (created if missing). */
  #temporary(purpose: string, tenantId: string): string {
    const file = this.#paths.temporary(purpose, tenantId)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    return file
  }

  /**
   * Runs `move` while no other connection (in any process) is inside a
   * transaction on `file`, and with its write-ahead log checkpointed into it
   * (so the main file alone holds every committed page): a private connection
   * takes SQLite's exclusive lock, waiting up to `busyTimeout`
   * (`TenantBusyError`), and holds it while `move` runs.
   */
  async #whileQuiet(tenantId: string, file: string, move: () => void): Promise<void> {
    let db: DriverConnection
    try {
      db = this.#withDescriptorRetry(() => this.#driver.open(file, { fileMustExist: true, name: tenantId }), file)
    } catch (error) {
      throw storageFailure(tenantId, file, error)
    }
    try {
      db.pragma('busy_timeout = 0')
      const started = performance.now()
      let delay = 1
      for (;;) {
        let quiet = false
        try {
          const wal = db.pragma('journal_mode', { simple: true }) === 'wal'
          const checkpoint = wal ? (db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[])[0] : undefined
          if (checkpoint === undefined || checkpoint.busy === 0) {
            db.exec('begin exclusive')
            // Nobody can append to the log while the lock is held: an empty log stays empty.
            if (!wal || (fs.statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) === 0) quiet = true
            else db.exec('rollback')
          }
        } catch (error) {
          if (!isBusyError(error)) throw storageFailure(tenantId, file, error)
        }
        if (quiet) break
        const waited = performance.now() - started
        if (waited >= this.#options.busyTimeout) throw new TenantBusyError(tenantId, waited)
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay, this.#options.busyTimeout - waited)))
        delay = Math.min(delay * 2, 50)
      }
      try {
        move()
      } finally {
        if (db.inTransaction) db.exec('rollback')
      }
    } finally {
      db.close()
    }
  }

  /**
   * Completes or undoes what a process killed during a lifecycle step left
   * (called by the next holder of its lock; idempotent):
   * - rename: both names on one file → the old name goes (it had been linked);
   * - archive: a staged file → compressed into the archive;
   * - restore: live and archived both → the archive goes (it had been linked into place);
   * - destroy: whatever is left of the tenant's files goes;
   * - layout: both layouts' names on one file → the old one goes;
   * - create, fork: nothing (their temporary files are never visible; doctor removes them).
   */
  async #recover(intent: LifecycleIntent): Promise<void> {
    const id = intent.id
    switch (intent.op) {
      case 'rename': {
        if (intent.to === undefined) return
        const targets = this.#tenantFiles(intent.to)
        for (const source of this.#tenantFiles(id)) {
          if (targets.some((target) => sameInode(source, target))) removeFile(source)
        }
        this.#removeOrphanSides(id)
        return
      }
      case 'archive':
        if (fs.existsSync(this.#paths.staged(id))) await finishArchive(this.#paths, id, this.#driver)
        else removeFiles(this.#paths.staged(id)) // side files the staged file's readers left
        this.#removeOrphanSides(id)
        return
      case 'restore':
        if (this.#liveFile(id) !== undefined) {
          removeFile(this.#paths.archived(id))
          removeFile(this.#paths.archiveMeta(id))
        }
        return
      case 'destroy':
        for (const file of this.#tenantFiles(id)) {
          for (const side of withSideFiles(file).slice(1)) removeFile(side)
          removeFile(file)
        }
        return
      case 'layout':
        if (intent.source !== undefined && intent.target !== undefined && sameInode(intent.source, intent.target))
          removeFile(intent.source)
        this.#removeOrphanSides(id)
        return
      case 'create':
      case 'fork':
      case 'repair':
      // A killed rekey: SQLite's journal rolls its one transaction back, or it had committed.
      case 'rekey':
        return
    }
  }

  /**
   * Removes the `-wal`/`-shm`/`-journal` left at a tenant's paths (both
   * layouts) whose database is not there any more: a killed process moved the
   * file while its private connection had them open. Called under the
   * tenant's lock, so no live connection of Shardines' uses them.
   */
  #removeOrphanSides(tenantId: string): void {
    for (const layout of ['flat', 'hashed'] as const) {
      const file = this.#paths.inLayout(tenantId, layout)
      if (fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined) continue
      for (const side of withSideFiles(file).slice(1)) removeFile(side)
    }
  }

  #syncDirectory(dir: string): void {
    if (this.#options.synchronous !== 'off') fsyncDirectory(dir)
  }

  /**
   * Opens with retries when the process is out of file descriptors: each retry
   * closes the least recently used unpinned handle first, and the pool's limit
   * is lowered to what the process can hold (with one warning).
   */
  #withDescriptorRetry(open: () => DriverConnection, mustExist?: string, poolTenant?: string): DriverConnection {
    const started = performance.now()
    for (let attempt = 1; ; attempt++) {
      try {
        return open()
      } catch (error) {
        if (mustExist !== undefined && !fs.existsSync(mustExist)) throw error
        if (!isOutOfDescriptors(error) || !this.#freeDescriptors()) throw error
        if (poolTenant !== undefined && this.#observers.active) {
          this.#observers.emit({
            type: 'pool:retry',
            tenantId: poolTenant,
            reason: 'descriptors',
            attempt,
            waitedMs: performance.now() - started,
          })
        }
      }
    }
  }

  /**
   * The process ran out of file descriptors: closes unpinned handles down to a
   * lower `maxOpen` (warning once). False when every handle is pinned.
   */
  #freeDescriptors(): boolean {
    const openWhenOut = this.#pool.size
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
        `shardines: the process ran out of file descriptors with ${openWhenOut} tenant handles open; lowering maxOpen from ${this.#options.maxOpen} to ${this.#pool.maxOpen}. Raise the limit (ulimit -n) or lower maxOpen.`,
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
    let source: DriverConnection | undefined
    try {
      source = this.#withDescriptorRetry(() => this.#driver.open(this.#fileOf(name), { fileMustExist: true, name }))
      source.pragma(`busy_timeout = ${this.#options.busyTimeout}`)
      await this.#driver.backup(source, this.#fileOf(name), dest, name)
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
    this.#syncDirectory(path.dirname(target))
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

export type { JournalMode }

/**
 * Reads `user_version` (core's version stamp) and loads the schema in one read
 * transaction. Apart, they are two: the schema loads when the first statement
 * is prepared, in a transaction of its own (a lock, the hot-journal and WAL
 * checks, the change counter, an unlock: ten system calls). Together, the
 * first statement prepares without touching the file, so a miss costs the
 * same transactions as raw open + read + close.
 */
function readStampAndSchema(db: DriverConnection): number {
  // On a failure the caller closes the connection, which ends the transaction.
  db.exec('begin')
  // The read takes the shared lock; the next statement then loads the schema under it (its
  // prepare does; `limit 0` reads nothing more), and `exec` makes no statement object for it.
  const stamp = db.prepare('pragma user_version').pluck().get() as number
  db.exec('select 1 from sqlite_schema limit 0; commit')
  return stamp
}
