/**
 * The storage behaviour suite's target for `@shardines/adapter-sqlite`: the
 * adapter over a fresh folder, and the suite's view of that folder through
 * better-sqlite3 and the flat file layout (`<dir>/apex.sqlite3`,
 * `<dir>/tenants/<id>.sqlite3`).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { type SqliteStorageOptions, sqliteStorage } from '@shardines/adapter-sqlite'
import type {
  StorageAdapter,
  StorageBehaviourTarget,
  StorageCapabilities,
  StorageTargetOptions,
  StorageTestSupport,
  StoredFile,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { mainFileOf, openPathsUnder } from '../../helpers/open-files.js'
import { snapshotTree } from '../../helpers/tree-snapshot.js'

/** The journal mode each variant name stands for. */
const JOURNAL_VARIANTS: Readonly<Record<string, SqliteStorageOptions['journalMode']>> = {
  'delete journal': 'delete',
  'wal journal': 'wal',
}

/** The suite's target options as sqliteStorage options. */
export function sqliteOptionsFor(dir: string, options: StorageTargetOptions = {}): SqliteStorageOptions {
  const out: SqliteStorageOptions = { dir }
  if (options.maxOpen !== undefined) out.maxOpen = options.maxOpen
  if (options.unsynced) out.synchronous = 'off'
  if (options.variant !== undefined) {
    const journalMode = JOURNAL_VARIANTS[options.variant]
    if (journalMode === undefined) throw new Error(`unknown sqlite target variant "${options.variant}"`)
    out.journalMode = journalMode
  }
  return out
}

/** Where the flat layout keeps `name` ('apex' or a tenant id). */
export function sqliteFileOf(dir: string, name: string): string {
  return name === 'apex' ? path.join(dir, 'apex.sqlite3') : path.join(dir, 'tenants', `${name}.sqlite3`)
}

/** Rows of `sql` on a separate read-only better-sqlite3 connection to `file`. */
function readRows(file: string, sql: string): Record<string, unknown>[] {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return db.prepare(sql).all() as Record<string, unknown>[]
  } finally {
    db.close()
  }
}

export const sqliteSupport: StorageTestSupport = {
  async rawRows(dir, name, sql) {
    return readRows(sqliteFileOf(dir, name), sql)
  },
  async rowsOfCopy(file, sql) {
    return readRows(file, sql)
  },
  async corrupt(dir, tenantId) {
    // Not a database: the header (and every page after it) overwritten.
    fs.writeFileSync(sqliteFileOf(dir, tenantId), 'x'.repeat(4096))
  },
  async remove(dir, tenantId) {
    const file = sqliteFileOf(dir, tenantId)
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true })
  },
  openTenantDatabases(dir) {
    // Distinct database files (side files count as their database) this process has descriptors on (Linux /proc/self/fd).
    const paths = openPathsUnder(dir)
    if (paths === undefined) return undefined
    return new Set(paths.map(mainFileOf).filter((f) => !/apex/.test(path.basename(f)))).size
  },
  storedFiles(dir) {
    return snapshotTree(dir, { sizes: true }).map((entry): StoredFile => {
      if (entry.endsWith('/')) return { path: entry }
      const at = entry.lastIndexOf(' ')
      return { path: entry.slice(0, at), size: Number(entry.slice(at + 1)) }
    })
  },
}

/** `@shardines/adapter-sqlite` with every capability, in both tenant journal modes. */
export const sqliteTarget: StorageBehaviourTarget = {
  name: 'sqlite',
  create: (dir, options) => sqliteStorage(sqliteOptionsFor(dir, options)),
  variants: Object.keys(JOURNAL_VARIANTS),
  support: sqliteSupport,
}

/**
 * The same adapter declaring fewer capabilities (and `maxAttached` 0 without
 * `attach`): runs the suite's branches for adapters that lack them (e.g.
 * `CrossDatabaseQueryError`, includes across apex as separate queries, typed
 * refusals of lifecycle calls) on a driver that could do them.
 */
export function sqliteTargetWithout(name: string, off: readonly (keyof StorageCapabilities)[]): StorageBehaviourTarget {
  return {
    ...sqliteTarget,
    name,
    // The journal modes are the full target's concern.
    variants: [],
    create: (dir, options) => withoutCapabilities(sqliteStorage(sqliteOptionsFor(dir, options)), off),
  }
}

/** `storage` declaring the capabilities in `off` as missing; everything else goes to `storage` itself. */
function withoutCapabilities(storage: StorageAdapter, off: readonly (keyof StorageCapabilities)[]): StorageAdapter {
  const capabilities: StorageCapabilities = Object.freeze({
    ...storage.capabilities,
    ...Object.fromEntries(off.map((name) => [name, false])),
  })
  return new Proxy(storage, {
    get(target, property) {
      if (property === 'capabilities') return capabilities
      if (property === 'maxAttached' && !capabilities.attach) return 0
      // The adapter keeps its state in private fields: its methods and getters run on the adapter itself.
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
