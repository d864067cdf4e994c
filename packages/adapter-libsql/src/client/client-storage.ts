import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import {
  APEX,
  InvalidOptionsError,
  type PoolStats,
  type ScratchHandle,
  ShardinesClosedError,
  type StorageAdapter,
  type StorageCapabilities,
  StorageError,
  type StorageHandle,
  type StorageLocation,
  type StoragePoolEvent,
  TenantExistsError,
  type TenantLease,
  TenantNotFoundError,
} from '@shardines/core'
import type { CompiledQuery } from 'kysely'
import { vacuumInto } from '../local/vacuum.js'
import { fileUri } from '../sql-values.js'
import { ClientHandle, type ClientLike } from './client-handle.js'
import {
  type FileTemplate,
  filePathOf,
  fileTemplate,
  listFileTenants,
  TENANT_PLACEHOLDER,
  type TenantProvisioner,
  tenantFile,
} from './provisioner.js'

/** Options of `libsqlStorage({ mode: 'client', … })`. */
export interface LibsqlClientStorageOptions {
  readonly mode: 'client'
  /**
   * Each tenant's database URL: a template with `{tenant}` (e.g.
   * `libsql://{tenant}-myorg.turso.io`, `http://127.0.0.1:8080/v1/namespaces/{tenant}`,
   * `file:./data/tenants/{tenant}.db`) or a function of the tenant id.
   */
  readonly url: string | ((tenantId: string) => string)
  /** The apex database's URL. */
  readonly apexUrl: string
  /** The auth token for remote databases (Turso, sqld with auth): one for all, or per database (`'apex'` or a tenant id). */
  readonly authToken?: string | ((name: string) => string | undefined) | undefined
  /**
   * Embedded replicas: the remote primary each local `file:` database syncs
   * from (`syncUrl` of `@libsql/client`). Reads are served from the local
   * file; writes go to the primary.
   */
  readonly syncUrl?: ((name: string) => string | undefined) | undefined
  /** Creates, removes and lists tenant databases. Required unless `url` is a `file:` template. */
  readonly provisioner?: TenantProvisioner | undefined
  /** Tenant clients kept open (least recently used closed first, never one in use). Default 256. */
  readonly maxOpen?: number | undefined
  /** How long a statement meeting another connection's lock keeps retrying, ms. Default 5000. */
  readonly busyTimeout?: number | undefined
  /**
   * Whether tenant connections attach other databases (apex joins, `withTenants`).
   * Default: true for `file:` URLs, false otherwise (a remote database is a
   * server-side connection that cannot reach another database).
   */
  readonly attach?: boolean | undefined
  /** libSQL's encryption key for local files (encryption at rest). */
  readonly encryptionKey?: string | undefined
  /**
   * `pragma synchronous` for each tenant connection to a local file (run when
   * it opens); default: the engine's (`full` under the rollback journal).
   */
  readonly synchronous?: 'off' | 'normal' | 'full' | 'extra' | undefined
}

const CLIENT_OPTIONS: readonly (keyof LibsqlClientStorageOptions)[] = [
  'mode',
  'url',
  'apexUrl',
  'authToken',
  'syncUrl',
  'provisioner',
  'maxOpen',
  'busyTimeout',
  'attach',
  'encryptionKey',
  'synchronous',
]

/** One of the adapter's own statements, as a compiled query. */
function internal(sql: string): CompiledQuery {
  return { sql, parameters: [], query: undefined as never, queryId: undefined as never } as CompiledQuery
}

interface CreateClientConfig {
  url: string
  authToken?: string
  syncUrl?: string
  concurrency?: number
  timeout?: number
  encryptionKey?: string
}
type CreateClient = (config: CreateClientConfig) => ClientLike

let createClientFn: CreateClient | undefined

function loadClient(): CreateClient {
  if (createClientFn === undefined) {
    try {
      createClientFn = (createRequire(import.meta.url)('@libsql/client') as { createClient: CreateClient }).createClient
    } catch (error) {
      throw new InvalidOptionsError(
        `libsqlStorage({ mode: "client" }) needs the @libsql/client package: npm i @libsql/client (${(error as Error).message})`,
      )
    }
  }
  return createClientFn
}

/** SQLite's limit on attached databases in libSQL's build. */
const MAX_ATTACHED = 10
/** libSQL's own busy wait on the main thread, in ms: short, as core waits the rest asynchronously. */
const NATIVE_BUSY_WAIT_MS = 5

interface Entry {
  readonly id: string
  readonly handle: ClientHandle
  refs: number
  /** Set on the first lease after opening: the stamp read while opening. */
  stamp: number | undefined
  /** Resolved when refs reaches 0 (destroy waits for it). */
  idle: (() => void)[]
}

/**
 * The libSQL client mode: one database per tenant through `@libsql/client`
 * (asynchronous handles), addressed by a URL template, created and removed by
 * a provisioner (the adapter's own for `file:` templates).
 */
export class LibsqlClientStorage implements StorageAdapter {
  readonly kind = 'libsql-client'
  readonly capabilities: StorageCapabilities
  readonly maxAttached: number
  readonly busyTimeout: number
  readonly #options: LibsqlClientStorageOptions
  readonly #createClient: CreateClient
  readonly #files: FileTemplate | undefined
  readonly #provisioner: TenantProvisioner | undefined
  readonly #maxOpen: number
  readonly #entries = new Map<string, Entry>()
  readonly #opening = new Map<string, Promise<Entry>>()
  readonly #doomed = new Set<string>()
  readonly #scratch = new Set<ClientHandle>()
  #apex: ClientHandle | undefined
  #hits = 0
  #misses = 0
  #evictions = 0
  #closed = false
  /** Core, while someone listens to its events (`observePool`); empty: nothing is timed or built. */
  #observers: ReadonlyArray<(event: StoragePoolEvent) => void> = []

  constructor(options: LibsqlClientStorageOptions) {
    for (const key of Object.keys(options)) {
      if (!CLIENT_OPTIONS.includes(key as keyof LibsqlClientStorageOptions)) {
        throw new InvalidOptionsError(
          `Unknown libsqlStorage({ mode: "client" }) option "${key}"; the options are ${CLIENT_OPTIONS.join(', ')}.`,
        )
      }
    }
    this.#options = options
    this.#createClient = loadClient()
    const template = typeof options.url === 'string' ? options.url : undefined
    if (template !== undefined && !template.includes(TENANT_PLACEHOLDER)) {
      throw new InvalidOptionsError(
        `libsqlStorage({ url }) must contain ${TENANT_PLACEHOLDER} or be a function of the tenant id (got ${JSON.stringify(template)}).`,
      )
    }
    if (typeof options.apexUrl !== 'string' || options.apexUrl === '') {
      throw new InvalidOptionsError('libsqlStorage({ mode: "client" }) needs apexUrl, the apex database URL.')
    }
    // A file: template without a provisioner: the adapter creates, lists and removes the files
    // itself. With a provisioner (e.g. embedded replicas of remote primaries) the files are libSQL's.
    this.#files =
      template?.startsWith('file:') && options.provisioner === undefined ? fileTemplate(template) : undefined
    this.#provisioner = options.provisioner
    if (this.#files === undefined && this.#provisioner === undefined) {
      throw new InvalidOptionsError(
        'libsqlStorage({ mode: "client" }) with a remote URL needs a provisioner (create, destroy, exists, list), e.g. on Turso\'s platform API; see the @shardines/adapter-libsql README.',
      )
    }
    const local = this.#files !== undefined && options.apexUrl.startsWith('file:')
    if (options.attach === true && !local) {
      throw new InvalidOptionsError(
        'libsqlStorage({ attach: true }) needs file: URLs for apex and the tenants: a remote database cannot attach another.',
      )
    }
    const attach = options.attach ?? local
    this.maxAttached = attach ? MAX_ATTACHED : 0
    this.busyTimeout = options.busyTimeout ?? 5000
    this.#maxOpen = options.maxOpen ?? 256
    this.capabilities = Object.freeze({
      attach,
      syncReads: false,
      workerMigrations: false,
      backupToPath: local,
      exportStream: local,
      rename: false,
      archive: false,
      doctor: false,
      layoutMigration: false,
      rekey: false,
    })
  }

  #urlOf(name: string): string {
    if (name === APEX) return this.#options.apexUrl
    const { url } = this.#options
    return typeof url === 'string' ? url.replaceAll(TENANT_PLACEHOLDER, name) : url(name)
  }

  #client(name: string, url: string): ClientLike {
    const token = this.#options.authToken
    const authToken = typeof token === 'function' ? token(name) : token
    const syncUrl = this.#options.syncUrl?.(name)
    return this.#createClient({
      url,
      // One connection: attachments, temp objects and transactions live on it.
      concurrency: 1,
      timeout: Math.min(NATIVE_BUSY_WAIT_MS, this.busyTimeout),
      ...(authToken === undefined ? {} : { authToken }),
      ...(syncUrl === undefined ? {} : { syncUrl }),
      ...(this.#options.encryptionKey === undefined || !url.startsWith('file:')
        ? {}
        : { encryptionKey: this.#options.encryptionKey }),
    })
  }

  /** A handle on `url`, whose guard reads programs on a second client to the same database. */
  #handle(name: string, url: string): ClientHandle {
    return new ClientHandle(name, this.#client(name, url), () => this.#client(name, url), {
      commitWait: this.busyTimeout,
      nativeWait: Math.min(NATIVE_BUSY_WAIT_MS, this.busyTimeout),
    })
  }

  apex(): StorageHandle {
    this.#assertOpen()
    if (this.#apex === undefined || this.#apex.closed) {
      if (this.#options.apexUrl.startsWith('file:')) {
        fs.mkdirSync(path.dirname(filePathOf(this.#options.apexUrl)), { recursive: true })
      }
      this.#apex = this.#handle(APEX, this.#options.apexUrl)
    }
    return this.#apex
  }

  async acquire(tenantId: string): Promise<TenantLease> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
    let entry = this.#entries.get(tenantId)
    if (entry !== undefined && !entry.handle.closed) {
      this.#hits++
      this.#entries.delete(tenantId)
      this.#entries.set(tenantId, entry)
    } else {
      let opening = this.#opening.get(tenantId)
      if (opening === undefined) {
        opening = this.#open(tenantId).finally(() => this.#opening.delete(tenantId))
        this.#opening.set(tenantId, opening)
      }
      const opened = await opening
      if (this.#doomed.has(tenantId)) throw new TenantNotFoundError(tenantId)
      // Counted in the pool only now, pinned in the same step: nothing can evict it in between.
      entry = this.#entries.get(tenantId)
      if (entry === undefined || entry.handle.closed) {
        entry = opened
        this.#entries.set(tenantId, entry)
      }
    }
    entry.refs++
    const stamp = entry.stamp
    entry.stamp = undefined
    this.#evictOverflow()
    const held = entry
    let released = false
    return {
      handle: held.handle,
      versionStampAtOpen: stamp,
      release: () => {
        if (released) return
        released = true
        if (--held.refs === 0) {
          for (const wake of held.idle.splice(0)) wake()
          this.#evictOverflow()
        }
      },
    }
  }

  /** Opens a tenant (a miss): checks it exists, opens its client, reads its version stamp. */
  async #open(tenantId: string): Promise<Entry> {
    const started = this.#observers.length > 0 ? performance.now() : 0
    let before: fs.Stats | undefined
    if (this.#files !== undefined) {
      const file = tenantFile(this.#files, tenantId)
      before = fs.statSync(file, { throwIfNoEntry: false })
      if (before === undefined || !before.isFile()) throw new TenantNotFoundError(tenantId)
    }
    let handle: ClientHandle | undefined
    let stamp: number
    try {
      handle = this.#handle(tenantId, this.#urlOf(tenantId))
      if (this.#options.synchronous !== undefined) {
        await handle.executeQuery(internal(`pragma synchronous = ${this.#options.synchronous}`), INTERNAL)
      }
      const result = await handle.executeQuery<{ user_version: number }>(internal('pragma user_version'), INTERNAL)
      stamp = Number(result.rows[0]?.user_version ?? 0)
    } catch (error) {
      await handle?.close()
      if (error instanceof TenantNotFoundError) throw error
      throw new StorageError(`Tenant "${tenantId}": its database could not be opened: ${(error as Error).message}`, {
        tenantId,
        cause: error,
        reason: 'cannot-open',
        driverCode: (error as { code?: string }).code,
      })
    }
    if (this.#files !== undefined && before !== undefined) {
      // libSQL creates a missing file on open: if the tenant was removed meanwhile, say so (and
      // remove the empty file this open made, which no create would have left).
      const file = tenantFile(this.#files, tenantId)
      const after = fs.statSync(file, { throwIfNoEntry: false })
      if (after === undefined || after.ino !== before.ino || after.dev !== before.dev) {
        await handle.close()
        if (after !== undefined && after.size === 0) fs.rmSync(file, { force: true })
        throw new TenantNotFoundError(tenantId)
      }
    }
    this.#misses++
    if (started > 0) this.#report({ type: 'pool:open', tenantId, durationMs: performance.now() - started })
    return { id: tenantId, handle, refs: 0, stamp, idle: [] }
  }

  #evictOverflow(): void {
    if (this.#entries.size <= this.#maxOpen) return
    for (const entry of this.#entries.values()) {
      if (this.#entries.size <= this.#maxOpen) break
      if (entry.refs > 0) continue
      this.#entries.delete(entry.id)
      this.#evictions++
      if (this.#observers.length === 0) {
        void entry.handle.close()
      } else {
        const started = performance.now()
        const report = () =>
          this.#report({
            type: 'pool:evict',
            tenantId: entry.id,
            reason: 'lru',
            durationMs: performance.now() - started,
          })
        void entry.handle.close().finally(report)
      }
    }
  }

  observePool(listener: (event: StoragePoolEvent) => void): () => void {
    this.#observers = [...this.#observers, listener]
    return () => {
      this.#observers = this.#observers.filter((l) => l !== listener)
    }
  }

  #report(event: StoragePoolEvent): void {
    for (const listener of this.#observers) {
      try {
        listener(event)
      } catch {
        // An observer's failure is its own: the pool goes on.
      }
    }
  }

  async exists(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) return false
    if (this.#files !== undefined)
      return fs.statSync(tenantFile(this.#files, tenantId), { throwIfNoEntry: false })?.isFile() === true
    return (this.#provisioner as TenantProvisioner).exists(tenantId)
  }

  async create(tenantId: string, build: (handle: StorageHandle) => Promise<void>): Promise<void> {
    this.#assertOpen()
    if (this.#files !== undefined) return this.#createFile(this.#files, tenantId, build)
    const provisioner = this.#provisioner as TenantProvisioner
    if (await provisioner.exists(tenantId)) throw new TenantExistsError(tenantId)
    try {
      await provisioner.create(tenantId)
    } catch (error) {
      if (await provisioner.exists(tenantId)) throw new TenantExistsError(tenantId)
      throw error
    }
    // A remote database cannot appear atomically: until it is built, this process refuses scopes on it.
    this.#doomed.add(tenantId)
    const handle = this.#handle(tenantId, this.#urlOf(tenantId))
    try {
      await build(handle)
    } catch (error) {
      await handle.close()
      await provisioner.destroy(tenantId).catch(() => undefined)
      throw error
    } finally {
      this.#doomed.delete(tenantId)
    }
    await handle.close()
  }

  /** Builds the database in a temporary file, then links it into place: atomic, and EEXIST means taken. */
  async #createFile(
    files: FileTemplate,
    tenantId: string,
    build: (handle: StorageHandle) => Promise<void>,
  ): Promise<void> {
    fs.mkdirSync(files.dir, { recursive: true })
    const target = tenantFile(files, tenantId)
    if (fs.existsSync(target)) throw new TenantExistsError(tenantId)
    const staging = path.join(files.dir, `.creating-${tenantId}-${process.pid}-${Math.random().toString(36).slice(2)}`)
    try {
      const handle = this.#handle(tenantId, `file:${staging}`)
      try {
        await build(handle)
      } finally {
        await handle.close()
      }
      try {
        fs.linkSync(staging, target)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TenantExistsError(tenantId)
        throw error
      }
    } finally {
      for (const side of ['', '-journal', '-wal', '-shm']) fs.rmSync(`${staging}${side}`, { force: true })
    }
  }

  async destroy(tenantId: string): Promise<boolean> {
    this.#assertOpen()
    if (this.#doomed.has(tenantId)) return false
    this.#doomed.add(tenantId)
    try {
      await this.#opening.get(tenantId)?.catch(() => undefined)
      const entry = this.#entries.get(tenantId)
      if (entry !== undefined) {
        while (entry.refs > 0) await new Promise<void>((resolve) => entry.idle.push(resolve))
        this.#entries.delete(tenantId)
        await entry.handle.close()
      }
      if (this.#files !== undefined) {
        const file = tenantFile(this.#files, tenantId)
        const existed = fs.existsSync(file)
        for (const side of ['', '-journal', '-wal', '-shm']) fs.rmSync(`${file}${side}`, { force: true })
        return existed
      }
      return await (this.#provisioner as TenantProvisioner).destroy(tenantId)
    } finally {
      this.#doomed.delete(tenantId)
    }
  }

  async *list(): AsyncGenerator<string> {
    this.#assertOpen()
    let ids: string[]
    if (this.#files !== undefined) ids = listFileTenants(this.#files)
    else {
      ids = []
      const listed = await (this.#provisioner as TenantProvisioner).list()
      for await (const id of listed as AsyncIterable<string>) ids.push(id)
    }
    ids.sort()
    for (const id of ids) if (!this.#doomed.has(id)) yield id
  }

  /** A consistent copy of a local database (`VACUUM INTO`, one read transaction) at `dest`, through a private client. */
  async #copyLocal(name: string, dest: string): Promise<void> {
    const lease = name === APEX ? undefined : await this.acquire(name)
    try {
      // On a worker thread: @libsql/client runs a local statement synchronously underneath.
      await vacuumInto({
        via: 'client',
        source: `file:${this.#localFileOf(name)}`,
        dest,
        busyTimeout: this.busyTimeout,
        encryptionKey: this.#options.encryptionKey,
      })
    } finally {
      lease?.release()
    }
  }

  #localFileOf(name: string): string {
    const url = this.#urlOf(name)
    if (!url.startsWith('file:')) {
      throw new InvalidOptionsError(`The libsql client storage copies only local (file:) databases, not ${url}.`)
    }
    return filePathOf(url)
  }

  async backup(name: string, destPath: string, options: { readonly overwrite?: boolean } = {}): Promise<void> {
    this.#assertOpen()
    if (name !== APEX && !(await this.exists(name))) throw new TenantNotFoundError(name)
    const dest = path.resolve(destPath)
    const dataDirs = [path.dirname(this.#localFileOf(APEX)), this.#files?.dir].filter((d) => d !== undefined)
    for (const dir of dataDirs) {
      if (dest === dir || dest.startsWith(dir + path.sep)) {
        throw new InvalidOptionsError(
          `Refused to back up ${name === APEX ? 'the apex database' : `tenant "${name}"`} to ${dest}: it is inside the data folder ${dir}. Choose a path outside it.`,
        )
      }
    }
    if (fs.existsSync(dest) && options.overwrite !== true) {
      throw new InvalidOptionsError(
        `Refused to back up to ${dest}: the file exists (pass { overwrite: true } to replace it).`,
      )
    }
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    const partial = `${dest}.partial-${process.pid}-${Date.now().toString(36)}`
    try {
      await this.#copyLocal(name, partial)
      fs.renameSync(partial, dest)
    } finally {
      fs.rmSync(partial, { force: true })
    }
  }

  async *export(name: string): AsyncGenerator<Uint8Array> {
    this.#assertOpen()
    if (name !== APEX && !(await this.exists(name))) throw new TenantNotFoundError(name)
    const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'shardines-export-'))
    try {
      const copy = path.join(staging, 'copy.db')
      await this.#copyLocal(name, copy)
      for await (const chunk of fs.createReadStream(copy)) yield chunk as Buffer
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
    }
  }

  async fork(fromId: string, toId: string): Promise<void> {
    this.#assertOpen()
    if (this.#files === undefined) {
      throw new InvalidOptionsError(
        `tenants.fork("${fromId}", "${toId}") is not supported by the libsql client storage on remote databases: copy the database with your provider (Turso: create the database with seed { type: "database", name }).`,
      )
    }
    const files = this.#files
    if (!(await this.exists(fromId))) throw new TenantNotFoundError(fromId)
    const target = tenantFile(files, toId)
    if (fs.existsSync(target)) throw new TenantExistsError(toId)
    const staging = path.join(files.dir, `.forking-${toId}-${process.pid}-${Math.random().toString(36).slice(2)}`)
    try {
      await this.#copyLocal(fromId, staging)
      try {
        fs.linkSync(staging, target)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TenantExistsError(toId)
        throw error
      }
    } finally {
      fs.rmSync(staging, { force: true })
    }
  }

  locate(name: string): StorageLocation {
    const url = this.#urlOf(name)
    // Attached read-only: SQLite itself then refuses writes to it, behind the statement guard.
    return (url.startsWith('file:') ? fileUri(filePathOf(url), 'ro') : url) as StorageLocation
  }

  openScratch(): ScratchHandle {
    this.#assertOpen()
    const scratches = this.#scratch
    // The scratch database is empty and private: its mirror is another empty in-memory database
    // (withTenants attaches the same tenants to both).
    const handle: ClientHandle = new ClientHandle(
      'scratch',
      this.#createClient({ url: ':memory:' }),
      () => this.#createClient({ url: ':memory:' }),
      { commitWait: this.busyTimeout, nativeWait: NATIVE_BUSY_WAIT_MS, onClose: () => scratches.delete(handle) },
    )
    scratches.add(handle)
    return handle
  }

  stats(): PoolStats {
    let pinned = 0
    for (const entry of this.#entries.values()) if (entry.refs > 0) pinned++
    return { open: this.#entries.size, pinned, hits: this.#hits, misses: this.#misses, evictions: this.#evictions }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const closing: Promise<void>[] = []
    for (const entry of this.#entries.values()) closing.push(entry.handle.close())
    this.#entries.clear()
    for (const scratch of this.#scratch) closing.push(scratch.close())
    if (this.#apex !== undefined) closing.push(this.#apex.close())
    await Promise.allSettled(closing)
  }

  #assertOpen(): void {
    if (this.#closed) throw new ShardinesClosedError()
  }
}

/** The guard policy of the adapter's own statements: nothing denied. */
const INTERNAL = Object.freeze({ denied: 0, watch: 0, label: 'shardines' })
