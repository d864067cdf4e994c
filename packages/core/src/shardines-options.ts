import type { KyselyPlugin } from 'kysely'
import type { ShardinesLogConfig } from './connection/query-log.js'
import { InvalidOptionsError } from './errors.js'
import type { MigrationSource } from './migration/migration-source.js'
import { checkCapabilities } from './storage/capabilities.js'
import type { StorageAdapter } from './storage/storage-adapter.js'
import type { ScopeBudgets } from './tenant/budgets.js'

/** What `migrateOnOpen` does with a tenant that is behind the latest migration when it is opened. */
export type MigrateOnOpen = 'lazy' | 'check' | 'off'

/** Options of {@link createShardines}. */
export interface ShardinesOptions<Models = unknown> {
  /** Where the databases live, e.g. `sqliteStorage({ dir: './data', maxOpen: 256 })`. */
  storage: StorageAdapter
  /** Migrations for the apex database and for every tenant (the tenant template). */
  migrations?: {
    apex?: MigrationSource
    tenant?: MigrationSource
    /**
     * A module (path or `file:` URL) whose `tenant` or default export is the tenant
     * migration source. Worker threads import it, so `migrate.all` can use them
     * even when `tenant` is given as objects (functions cannot cross threads).
     */
    tenantModule?: string | URL
  }
  /**
   * `'lazy'` (default): migrate a behind tenant on first open; `'check'`: throw
   * `TenantSchemaOutdatedError`; `'off'`: do nothing. The check costs one pragma per pool miss.
   */
  migrateOnOpen?: MigrateOnOpen
  /** Model declarations (`apex(...)` / `tenanted(...)`), by name. */
  models?: Models
  /** Query logging in the shape of Kysely's `log`, each event tagged with its tenant id or `'apex'`. */
  log?: ShardinesLogConfig
  /** Kysely plugins applied to every tenant and apex query (e.g. `CamelCasePlugin`). */
  plugins?: readonly KyselyPlugin[]
  /**
   * Limits on concurrent scopes with a wait queue and a timeout: `perTenant`
   * (one tenant's scopes; `TenantBusyError` after `timeout`), `pinned` (all
   * tenants' scopes, each pinning a handle; `PoolExhaustedError`). Default: none.
   */
  budgets?: ScopeBudgets
}

const KNOWN = ['storage', 'migrations', 'migrateOnOpen', 'models', 'log', 'plugins', 'budgets'] as const
const MIGRATE_ON_OPEN: readonly MigrateOnOpen[] = ['lazy', 'check', 'off']

/** Checks options the way better-sqlite3 does: exact messages, misspellings named. */
export function validateOptions(options: ShardinesOptions<unknown>): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('createShardines(options) needs an options object with at least { storage }.')
  }
  for (const key of Object.keys(options)) {
    if ((KNOWN as readonly string[]).includes(key)) continue
    const near = KNOWN.find((k) => k.toLowerCase() === key.toLowerCase().replace(/[-_]/g, ''))
    throw new InvalidOptionsError(
      near
        ? `Misspelled option "${key}" should be "${near}".`
        : `Unknown option "${key}"; the options are ${KNOWN.join(', ')}.`,
    )
  }
  const storage = options.storage as unknown as Record<string, unknown> | undefined
  if (!storage || typeof storage.acquire !== 'function' || typeof storage.apex !== 'function') {
    throw new InvalidOptionsError(
      'options.storage must be a storage adapter, e.g. sqliteStorage({ dir: "./data" }) from @shardines/adapter-sqlite.',
    )
  }
  checkCapabilities(options.storage)
  if (options.migrateOnOpen !== undefined && !MIGRATE_ON_OPEN.includes(options.migrateOnOpen)) {
    throw new InvalidOptionsError(
      `options.migrateOnOpen must be one of ${MIGRATE_ON_OPEN.map((m) => `'${m}'`).join(', ')}, not ${JSON.stringify(options.migrateOnOpen)}.`,
    )
  }
  const migrations = options.migrations as Record<string, unknown> | undefined
  if (migrations !== undefined) {
    for (const key of Object.keys(migrations)) {
      if (key !== 'apex' && key !== 'tenant' && key !== 'tenantModule') {
        throw new InvalidOptionsError(
          `Unknown key migrations.${key}; use migrations.apex, migrations.tenant and migrations.tenantModule.`,
        )
      }
    }
  }
}
