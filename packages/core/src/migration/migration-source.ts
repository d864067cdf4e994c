import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Kysely } from 'kysely'
import { InvalidOptionsError } from '../errors.js'

/**
 * A migration: Kysely's `Migration` shape (`up`, optional `down`). Declared
 * here because Kysely 0.29 moved its own to `kysely/migration` while 0.28 has
 * it at the root; this one works with both, and Kysely's migration objects
 * (and `Migrator` providers) fit it.
 */
export interface Migration {
  up(db: Kysely<any>): Promise<void>
  down?(db: Kysely<any>): Promise<void>
}

/** Kysely's `MigrationProvider` shape: anything that lists migrations by name. */
export interface MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>>
}

/**
 * A set of migrations: a folder of migration modules (each exporting `up` and
 * optionally `down`), a Kysely `MigrationProvider`, or a record of name → migration.
 * Migrations run in name order, as with Kysely's `Migrator`.
 */
export type MigrationSource = string | MigrationProvider | Readonly<Record<string, Migration>>

/** A migration with its name, in the order they apply. */
export interface NamedMigration {
  readonly name: string
  readonly migration: Migration
}

/** The loaded, ordered set, with the version stamps used for the cheap up-to-date check. */
export interface MigrationSet {
  readonly migrations: readonly NamedMigration[]
  readonly names: readonly string[]
  /** `stamps[k]` identifies "the first k migrations applied" (0 for none). */
  readonly stamps: readonly number[]
  /** The stamp of the whole set: what an up-to-date database has in `user_version`. */
  readonly latestStamp: number
  readonly latest: string | null
}

export const EMPTY_MIGRATIONS: MigrationSource = Object.freeze({})

/** Loads and orders a {@link MigrationSource}; folders are read relative to the working directory. */
export async function loadMigrations(source: MigrationSource, what: string): Promise<MigrationSet> {
  const provider = toProvider(source, what)
  const record = await provider.getMigrations()
  const names = Object.keys(record).sort()
  const migrations = names.map((name) => {
    const migration = record[name]
    if (migration === undefined || typeof migration.up !== 'function') {
      throw new InvalidOptionsError(`The ${what} migration "${name}" has no up() function.`)
    }
    return Object.freeze({ name, migration })
  })
  const stamps = [0]
  for (let k = 1; k <= names.length; k++) stamps.push(versionStamp(names.slice(0, k)))
  return Object.freeze({
    migrations: Object.freeze(migrations),
    names: Object.freeze(names),
    stamps: Object.freeze(stamps),
    latestStamp: stamps[names.length] ?? 0,
    latest: names.at(-1) ?? null,
  })
}

function toProvider(source: MigrationSource, what: string): MigrationProvider {
  if (typeof source === 'string') {
    const folder = path.resolve(source)
    return { getMigrations: () => migrationsInFolder(folder) }
  }
  if (isProvider(source)) return source
  if (typeof source === 'object' && source !== null) {
    return { getMigrations: async () => ({ ...source }) }
  }
  throw new InvalidOptionsError(
    `migrations.${what} must be a folder path, a Kysely MigrationProvider, or a record of name → { up, down? }.`,
  )
}

/** A module is a migration file when it ends in .js/.ts/.mjs/.mts/.cjs/.cts (declarations excluded). */
const MIGRATION_FILE = /\.(?:[mc]?js|[mc]?ts)$/
const DECLARATION_FILE = /\.d\.[mc]?ts$/

/**
 * The migrations in a folder, as Kysely's `FileMigrationProvider` reads them:
 * each module's default export, or the module itself, when it has `up`; named
 * after the file without its extension.
 */
async function migrationsInFolder(folder: string): Promise<Record<string, Migration>> {
  const record: Record<string, Migration> = {}
  for (const file of (await fs.readdir(folder)).sort()) {
    if (!MIGRATION_FILE.test(file) || DECLARATION_FILE.test(file)) continue
    const module = (await import(pathToFileURL(path.join(folder, file)).href)) as {
      default?: Partial<Migration>
    } & Partial<Migration>
    const migration = typeof module.default?.up === 'function' ? module.default : module
    if (typeof migration.up === 'function') record[file.slice(0, file.lastIndexOf('.'))] = migration as Migration
  }
  return record
}

function isProvider(source: unknown): source is MigrationProvider {
  return typeof (source as MigrationProvider).getMigrations === 'function'
}

/**
 * A positive 31-bit FNV-1a hash of the applied migration names, kept in SQLite's
 * `user_version`: comparing one pragma with the latest stamp tells whether a
 * database is up to date, without reading the migration table on every open.
 */
export function versionStamp(names: readonly string[]): number {
  if (names.length === 0) return 0
  let hash = 0x811c9dc5
  const text = names.join('\n')
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 1 || 1
}

/** The set made of the first `k` migrations of `set` (a template at that version). */
export function prefixSet(set: MigrationSet, k: number): MigrationSet {
  const n = Math.max(0, Math.min(k, set.names.length))
  if (n === set.names.length) return set
  const names = set.names.slice(0, n)
  return Object.freeze({
    migrations: Object.freeze(set.migrations.slice(0, n)),
    names: Object.freeze(names),
    stamps: Object.freeze(set.stamps.slice(0, n + 1)),
    latestStamp: set.stamps[n] ?? 0,
    latest: names.at(-1) ?? null,
  })
}
