import { InvalidOptionsError, type MigrationSource, type NamedMigration, type StorageAdapter } from '@shardines/core'
import type { DateHandling, JsonHandling } from './sqlite-column-types.js'

/**
 * The part of a Shardines instance codegen needs: its loaded migrations, and
 * the storage adapter it was created with (every instance made by
 * `createShardines` carries it), whose scratch databases codegen migrates.
 */
export interface CodegenShard {
  readonly migrate: {
    list(): Promise<{ readonly apex: readonly NamedMigration[]; readonly tenant: readonly NamedMigration[] }>
  }
  /** The instance's storage; `options.storage` takes precedence. */
  readonly storage?: StorageAdapter
}

/** A value for both databases, or one per database. */
export type PerDatabase<T> = T | { apex?: T; tenant?: T }

/**
 * Options of {@link generateSchemas} and {@link verifySchemas}. Give either
 * `shard` (its configured migrations and its storage are used) or
 * `migrations` with `storage`.
 */
export interface CodegenOptions {
  /**
   * The app's Shardines instance: its migrations (`shard.migrate.list()`) and its storage, on
   * which codegen opens two scratch databases (`storage.openScratch()`); none of the app's
   * databases is opened. The instance stays open: close it yourself.
   */
  shard?: CodegenShard
  /** Migration sources, as in `createShardines({ migrations })`, when there is no instance at hand (give `storage` too). */
  migrations?: { apex?: MigrationSource; tenant?: MigrationSource }
  /**
   * The storage adapter whose scratch databases are migrated and introspected, e.g.
   * `sqliteStorage({ dir: './data' })` or `libsqlStorage({ mode: 'local', dir: './data' })`: only
   * `openScratch()` is called, and the scratch handles are closed afterwards (the adapter stays
   * open: close it yourself). Required with `migrations`; with `shard`, default the instance's storage.
   */
  storage?: StorageAdapter
  /** Folder of `apex.ts` and `tenant.ts` (created if missing). */
  outDir: string
  /** Name of the apex database interface. Default `'ApexDB'`. */
  apexTypeName?: string
  /** Name of the tenant database interface. Default `'TenantDB'`. */
  tenantTypeName?: string
  /** camelCase table and column names (pair with Kysely's `CamelCasePlugin` in `plugins`). Default false. */
  camelCase?: boolean
  /**
   * Column types by `'<table>.<column>'`, per database, as TypeScript source. An
   * override is the whole type: add `| null` for a nullable column, `Generated<…>` for a defaulted one;
   * e.g. `{ tenant: { 'documents.meta': 'JSONColumnType<{ tags: string[] }> | null' } }`.
   * Kysely's `ColumnType`, `JSONColumnType` and the generated `Generated` are in scope.
   */
  overrides?: { apex?: Readonly<Record<string, string>>; tenant?: Readonly<Record<string, string>> }
  /** Only tables matching this glob (micromatch, case-insensitive), e.g. `'{documents,comments}'`. */
  include?: PerDatabase<string>
  /** Leave out tables matching this glob, e.g. `'_*'`. */
  exclude?: PerDatabase<string>
  /** Columns declared DATE/DATETIME/TIMESTAMP/TIME: `'string'` (default) or `'number'`. */
  dates?: DateHandling
  /** Columns declared JSON: `'string'` (default) or `'parsed'` (`ColumnType<JsonValue, string, string>`). */
  json?: JsonHandling
}

/** The options with defaults applied and checked. */
export interface ResolvedCodegenOptions {
  readonly storage: StorageAdapter
  readonly outDir: string
  readonly apexTypeName: string
  readonly tenantTypeName: string
  readonly camelCase: boolean
  readonly overrides: {
    readonly apex: Readonly<Record<string, string>>
    readonly tenant: Readonly<Record<string, string>>
  }
  readonly include: { readonly apex: string | null; readonly tenant: string | null }
  readonly exclude: { readonly apex: string | null; readonly tenant: string | null }
  readonly dates: DateHandling
  readonly json: JsonHandling
}

const KNOWN = [
  'shard',
  'migrations',
  'storage',
  'outDir',
  'apexTypeName',
  'tenantTypeName',
  'camelCase',
  'overrides',
  'include',
  'exclude',
  'dates',
  'json',
] as const
const TYPE_NAME = /^[A-Za-z_$][\w$]*$/

/** Checks the options the way better-sqlite3 does: exact messages, misspellings named. */
export function resolveOptions(options: CodegenOptions): ResolvedCodegenOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(
      'generateSchemas(options) needs an options object with { shard, outDir } or { migrations, storage, outDir }.',
    )
  }
  for (const key of Object.keys(options)) {
    if ((KNOWN as readonly string[]).includes(key)) continue
    const near = KNOWN.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[-_]/g, ''))
    throw new InvalidOptionsError(
      near
        ? `Misspelled codegen option "${key}" should be "${near}".`
        : `Unknown codegen option "${key}"; the options are ${KNOWN.join(', ')}.`,
    )
  }
  if ((options.shard === undefined) === (options.migrations === undefined)) {
    throw new InvalidOptionsError(
      'Codegen needs exactly one of { shard } (your Shardines instance) or { migrations: { apex, tenant } }.',
    )
  }
  if (options.shard !== undefined && typeof options.shard.migrate?.list !== 'function') {
    throw new InvalidOptionsError('options.shard must be a Shardines instance (it has no migrate.list()).')
  }
  const storage = resolveStorage(options)
  if (typeof options.outDir !== 'string' || options.outDir === '') {
    throw new InvalidOptionsError('options.outDir must be the folder to write apex.ts and tenant.ts to, e.g. "db".')
  }
  const apexTypeName = options.apexTypeName ?? 'ApexDB'
  const tenantTypeName = options.tenantTypeName ?? 'TenantDB'
  for (const [key, name] of [
    ['apexTypeName', apexTypeName],
    ['tenantTypeName', tenantTypeName],
  ] as const) {
    if (typeof name !== 'string' || !TYPE_NAME.test(name)) {
      throw new InvalidOptionsError(`options.${key} must be a TypeScript identifier, not ${JSON.stringify(name)}.`)
    }
  }
  const dates = options.dates ?? 'string'
  if (dates !== 'string' && dates !== 'number') {
    throw new InvalidOptionsError(`options.dates must be 'string' or 'number', not ${JSON.stringify(dates)}.`)
  }
  const json = options.json ?? 'string'
  if (json !== 'string' && json !== 'parsed') {
    throw new InvalidOptionsError(`options.json must be 'string' or 'parsed', not ${JSON.stringify(json)}.`)
  }
  const overrides = options.overrides ?? {}
  for (const key of Object.keys(overrides)) {
    if (key !== 'apex' && key !== 'tenant') {
      throw new InvalidOptionsError(
        `Unknown key overrides.${key}; use overrides.apex and overrides.tenant, each { '<table>.<column>': 'Type' }.`,
      )
    }
  }
  for (const [side, record] of Object.entries(overrides)) {
    for (const [path, type] of Object.entries(record ?? {})) {
      if (!/^[^.]+\.[^.]+$/.test(path) || typeof type !== 'string' || type.trim() === '') {
        throw new InvalidOptionsError(
          `overrides.${side}[${JSON.stringify(path)}] must map '<table>.<column>' to a TypeScript type as a string.`,
        )
      }
    }
  }
  return Object.freeze({
    storage,
    outDir: options.outDir,
    apexTypeName,
    tenantTypeName,
    camelCase: options.camelCase === true,
    overrides: Object.freeze({ apex: { ...overrides.apex }, tenant: { ...overrides.tenant } }),
    include: perDatabase(options.include, 'include'),
    exclude: perDatabase(options.exclude, 'exclude'),
    dates,
    json,
  })
}

function perDatabase(
  value: PerDatabase<string> | undefined,
  key: string,
): { readonly apex: string | null; readonly tenant: string | null } {
  if (value === undefined) return { apex: null, tenant: null }
  if (typeof value === 'string') return { apex: value, tenant: value }
  if (typeof value === 'object' && value !== null && Object.keys(value).every((k) => k === 'apex' || k === 'tenant')) {
    return { apex: value.apex ?? null, tenant: value.tenant ?? null }
  }
  throw new InvalidOptionsError(`options.${key} must be a glob string, or { apex?: glob, tenant?: glob }.`)
}

/** The storage whose scratch databases codegen migrates: `options.storage`, else the instance's. */
function resolveStorage(options: CodegenOptions): StorageAdapter {
  if (options.storage !== undefined) {
    if (!isStorage(options.storage)) {
      throw new InvalidOptionsError(
        'options.storage must be a storage adapter such as sqliteStorage({ dir }) (it has no openScratch()).',
      )
    }
    return options.storage
  }
  const fromShard = options.shard?.storage
  if (fromShard !== undefined && isStorage(fromShard)) return fromShard
  throw new InvalidOptionsError(
    options.shard === undefined
      ? "Codegen migrates scratch databases through a storage adapter: with { migrations }, pass { storage } too, e.g. storage: sqliteStorage({ dir: './data' }) (codegen only calls its openScratch()), or pass { shard }, your Shardines instance."
      : "options.shard has no storage adapter (a Shardines instance from createShardines has one): pass { storage } too, e.g. storage: sqliteStorage({ dir: './data' }).",
  )
}

function isStorage(value: unknown): value is StorageAdapter {
  return typeof value === 'object' && value !== null && typeof (value as StorageAdapter).openScratch === 'function'
}
