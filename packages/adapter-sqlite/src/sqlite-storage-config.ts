import { InvalidOptionsError } from '@shardines/core'
import type { SqliteDriver } from './driver/sqlite-driver.js'

/**
 * Operational defaults, stated once (Effect's SqliteClient habit):
 *
 * - **Tenant journal mode: `delete`** (the rollback journal). Measured in
 *   `bench/pool-churn.bench.ts` (docs/benchmarks.md): under LRU churn a WAL
 *   handle pays for a checkpoint and the removal of its `-wal`/`-shm` at every
 *   close and recreates them at every open: a miss costs ~510 µs against ~96 µs
 *   with the rollback journal (10,000 tenants, maxOpen 256). WAL is set at
 *   create (it is stored in the file); `truncate`/`persist` are not stored, so
 *   they are re-applied at every open. Choose `'wal'` for tenants that
 *   stay hot and see concurrent readers and writers from several processes.
 * - **Apex journal mode: `wal`**: one long-lived handle read by every tenant
 *   connection that attaches it, while the app writes to it.
 * - `busy_timeout` 5000 ms, `foreign_keys = ON`, `synchronous = NORMAL` for WAL
 *   and `FULL` for the rollback journal (NORMAL with a rollback journal can
 *   corrupt on power loss; FULL cannot).
 * - A per-handle statement cache of 200 statements, keyed by SQL: Kysely's
 *   SQLite driver prepares every statement anew.
 * - `maxOpen` 256 tenant handles (the apex handle is not counted).
 */
export interface SqliteStorageOptions {
  /** Folder of the databases: `<dir>/apex.sqlite3`, `<dir>/tenants/<id>.sqlite3`. */
  dir: string
  /** Tenant handles kept open (least recently used beyond it are closed unless pinned). Default 256. */
  maxOpen?: number
  /** Journal mode of tenant databases, set when each is created. Default `'delete'`. */
  journalMode?: JournalMode
  /** Journal mode of the apex database. Default `'wal'`. */
  apexJournalMode?: JournalMode
  /** `PRAGMA synchronous`; default `'normal'` under WAL, `'full'` otherwise. */
  synchronous?: 'off' | 'normal' | 'full' | 'extra'
  /**
   * How long a statement waits for another connection's lock, in milliseconds,
   * before `TenantBusyError`. Default 5000. The wait happens off the event
   * loop (asynchronous retries with backoff); SQLite's own `busy_timeout` is
   * kept at a few milliseconds on the main thread.
   */
  busyTimeout?: number
  /** Further pragmas run on every open, e.g. `{ cache_size: -1024 }`. Values must be numbers or simple words. */
  pragmas?: Readonly<Record<string, string | number>>
  /** Prepared statements cached per handle. Default 200; 0 disables the cache. */
  statementCacheSize?: number
  /** Where warnings go (e.g. "maxOpen is above the file-descriptor limit"). Default `console.warn`. */
  onWarning?: (message: string) => void
  /**
   * Where tenant files live under `<dir>/tenants/`: `'flat'` (default) keeps
   * them in that one folder; `'hashed'` spreads them over two levels of
   * subfolders from a hash of the id (`tenants/3f/a9/acme.sqlite3`), which
   * keeps directory operations fast at hundreds of thousands of tenants.
   * Either layout finds a tenant still in the other one, so `shardines layout
   * migrate` can move an existing folder while the app runs.
   */
  layout?: TenantLayout
}

export type TenantLayout = 'flat' | 'hashed'

export type JournalMode = 'wal' | 'delete' | 'truncate' | 'persist'

export interface ResolvedSqliteStorageOptions {
  readonly dir: string
  readonly maxOpen: number
  readonly journalMode: JournalMode
  readonly apexJournalMode: JournalMode
  readonly synchronous: SqliteStorageOptions['synchronous']
  readonly busyTimeout: number
  readonly pragmas: Readonly<Record<string, string | number>>
  readonly statementCacheSize: number
  readonly onWarning: (message: string) => void
  readonly layout: TenantLayout
}

const KNOWN = [
  'dir',
  'maxOpen',
  'journalMode',
  'apexJournalMode',
  'synchronous',
  'busyTimeout',
  'pragmas',
  'statementCacheSize',
  'onWarning',
  'layout',
]
const JOURNAL_MODES: readonly JournalMode[] = ['wal', 'delete', 'truncate', 'persist']
const PRAGMA_NAME = /^[a-z_]+$/
const PRAGMA_VALUE = /^-?[0-9]+$|^[a-z_]+$/i

export function resolveOptions(options: SqliteStorageOptions): ResolvedSqliteStorageOptions {
  if (typeof options !== 'object' || options === null || typeof options.dir !== 'string' || options.dir === '') {
    throw new InvalidOptionsError('sqliteStorage(options) needs { dir }: the folder that holds the databases.')
  }
  for (const key of Object.keys(options)) {
    if (KNOWN.includes(key)) continue
    const near = KNOWN.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[-_]/g, ''))
    throw new InvalidOptionsError(
      near
        ? `Misspelled option "${key}" should be "${near}".`
        : `Unknown sqliteStorage option "${key}"; the options are ${KNOWN.join(', ')}.`,
    )
  }
  const maxOpen = options.maxOpen ?? 256
  if (!Number.isInteger(maxOpen) || maxOpen < 1) {
    throw new InvalidOptionsError(
      `sqliteStorage: maxOpen must be a whole number of at least 1, not ${String(options.maxOpen)}.`,
    )
  }
  for (const [key, mode] of [
    ['journalMode', options.journalMode],
    ['apexJournalMode', options.apexJournalMode],
  ] as const) {
    if (mode !== undefined && !JOURNAL_MODES.includes(mode)) {
      throw new InvalidOptionsError(
        `sqliteStorage: ${key} must be one of ${JOURNAL_MODES.join(', ')}, not ${JSON.stringify(mode)}.`,
      )
    }
  }
  if (options.synchronous !== undefined && !['off', 'normal', 'full', 'extra'].includes(options.synchronous)) {
    throw new InvalidOptionsError(
      `sqliteStorage: synchronous must be off, normal, full or extra, not ${JSON.stringify(options.synchronous)}.`,
    )
  }
  const pragmas = options.pragmas ?? {}
  for (const [name, value] of Object.entries(pragmas)) {
    if (!PRAGMA_NAME.test(name) || !PRAGMA_VALUE.test(String(value))) {
      throw new InvalidOptionsError(
        `sqliteStorage: pragma ${JSON.stringify(name)} = ${JSON.stringify(value)} is not a simple pragma setting.`,
      )
    }
  }
  const busyTimeout = options.busyTimeout ?? 5000
  if (!Number.isInteger(busyTimeout) || busyTimeout < 0) {
    throw new InvalidOptionsError('sqliteStorage: busyTimeout must be a whole number of milliseconds.')
  }
  const statementCacheSize = options.statementCacheSize ?? 200
  if (!Number.isInteger(statementCacheSize) || statementCacheSize < 0) {
    throw new InvalidOptionsError('sqliteStorage: statementCacheSize must be a whole number (0 disables the cache).')
  }
  if (options.layout !== undefined && options.layout !== 'flat' && options.layout !== 'hashed') {
    throw new InvalidOptionsError(
      `sqliteStorage: layout must be 'flat' or 'hashed', not ${JSON.stringify(options.layout)}.`,
    )
  }
  return Object.freeze({
    dir: options.dir,
    layout: options.layout ?? 'flat',
    maxOpen,
    journalMode: options.journalMode ?? 'delete',
    apexJournalMode: options.apexJournalMode ?? 'wal',
    synchronous: options.synchronous,
    busyTimeout,
    pragmas: Object.freeze({ ...pragmas }),
    statementCacheSize,
    onWarning: options.onWarning ?? ((message: string) => console.warn(message)),
  })
}

/**
 * How long SQLite itself waits for another connection's lock on the main
 * thread, in milliseconds. Its wait blocks the thread, and with it every other
 * tenant's requests; so it is kept short, and core retries a locked statement
 * asynchronously with backoff up to `busyTimeout` (measured: with the whole
 * `busyTimeout` here, another process holding one tenant's lock stalled
 * every other tenant's queries for that long). Worker threads, which block
 * only themselves, wait the whole `busyTimeout`.
 */
export const NATIVE_BUSY_WAIT_MS = 5

/**
 * The pragmas run at every open of a file in `journalMode` (the journal mode
 * itself is set at create). `nativeBusyWait` is SQLite's own busy timeout for
 * that connection: {@link NATIVE_BUSY_WAIT_MS} on the main thread.
 */
export function openPragmas(
  options: ResolvedSqliteStorageOptions,
  journalMode: JournalMode,
  nativeBusyWait: number = NATIVE_BUSY_WAIT_MS,
): string {
  const synchronous = options.synchronous ?? (journalMode === 'wal' ? 'normal' : 'full')
  const lines = [
    `pragma busy_timeout = ${Math.min(nativeBusyWait, options.busyTimeout)}`,
    'pragma foreign_keys = on',
    `pragma synchronous = ${synchronous}`,
  ]
  // Only WAL is stored in the file; truncate and persist revert to delete at every open.
  if (journalMode === 'truncate' || journalMode === 'persist') lines.push(`pragma journal_mode = ${journalMode}`)
  for (const [name, value] of Object.entries(options.pragmas)) lines.push(`pragma ${name} = ${value}`)
  return `${lines.join(';\n')};`
}

const SYNCHRONOUS_LEVEL = { off: 0, normal: 1, full: 2, extra: 3 } as const

/** What this SQLite build sets by default on a new connection (read once per process). */
interface BuildDefaults {
  readonly foreignKeys: boolean
  /** `synchronous` of a rollback-journal database, and of a WAL one (SQLite switches when it opens a WAL file). */
  readonly synchronous: number
  readonly walSynchronous: number
}

const defaultsByDriver = new Map<string, BuildDefaults>()

function buildDefaults(driver: SqliteDriver): BuildDefaults {
  const known = defaultsByDriver.get(driver.name)
  if (known !== undefined) return known
  let defaults: BuildDefaults
  const db = driver.open(':memory:')
  try {
    const options = (db.pragma('compile_options') as { compile_options: string }[]).map((r) => r.compile_options)
    const synchronous = db.pragma('synchronous', { simple: true }) as number
    const wal = options.find((o) => o.startsWith('DEFAULT_WAL_SYNCHRONOUS='))
    defaults = {
      foreignKeys: db.pragma('foreign_keys', { simple: true }) === 1,
      synchronous,
      walSynchronous: wal === undefined ? synchronous : Number(wal.slice('DEFAULT_WAL_SYNCHRONOUS='.length)),
    }
  } finally {
    db.close()
  }
  defaultsByDriver.set(driver.name, defaults)
  return defaults
}

/**
 * The pragmas a pool miss runs on a rollback-journal tenant: those of
 * {@link openPragmas} that change something in this build (better-sqlite3's
 * turns foreign keys on and defaults to `synchronous = FULL`), so a miss with
 * the default options runs none (measured: they were a fifth of a miss). The
 * busy timeout is given to the constructor instead (`nativeBusyTimeout`).
 * May be empty.
 */
export function tenantOpenPragmas(
  options: ResolvedSqliteStorageOptions,
  journalMode: JournalMode,
  driver: SqliteDriver,
): string {
  const build = buildDefaults(driver)
  const lines: string[] = []
  if (!build.foreignKeys) lines.push('pragma foreign_keys = on')
  const synchronous = SYNCHRONOUS_LEVEL[options.synchronous ?? (journalMode === 'wal' ? 'normal' : 'full')]
  if (synchronous !== (journalMode === 'wal' ? build.walSynchronous : build.synchronous))
    lines.push(`pragma synchronous = ${synchronous}`)
  if (journalMode === 'truncate' || journalMode === 'persist') lines.push(`pragma journal_mode = ${journalMode}`)
  for (const [name, value] of Object.entries(options.pragmas)) lines.push(`pragma ${name} = ${value}`)
  return lines.length === 0 ? '' : `${lines.join(';\n')};`
}

/** SQLite's own busy wait on the main thread (see NATIVE_BUSY_WAIT_MS), for the connection's constructor. */
export function nativeBusyTimeout(options: ResolvedSqliteStorageOptions): number {
  return Math.min(NATIVE_BUSY_WAIT_MS, options.busyTimeout)
}
