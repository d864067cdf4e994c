import { InvalidOptionsError } from '../errors.js'
import type { ShardinesContext } from '../shardines-context.js'
import { assertTenantId } from '../tenant/tenant-id.js'
import { type MigrateAllOptions, type MigrationSources, migrateAll, migrateTenantHere } from './migrate-all.js'
import type { MigrationReport, StatusReport, TenantStatus } from './migration-reports.js'
import type { NamedMigration } from './migration-source.js'
import { summarise, tenantStatus } from './migration-status.js'
import { observeMigration } from './observe-migration.js'
import { type MigrationOutcome, runMigrations } from './run-migrations.js'

export type { MigrateAllOptions } from './migrate-all.js'
export type { MigrationReport, StatusReport } from './migration-reports.js'

/** Options of `migrate.status()`. */
export interface MigrationStatusOptions {
  /** Tenants inspected at once (default 4). */
  concurrency?: number
  /** Called after each tenant. */
  onProgress?: (progress: { done: number; total: number; id: string }) => void
}

/** `shard.migrate`. */
export interface MigrateApi {
  /** Applies pending apex migrations in one transaction; throws `MigrationError` if one fails (nothing applied). */
  apex(): Promise<MigrationOutcome>
  /** Applies a tenant's pending migrations in one transaction; throws `MigrationError` if one fails. */
  tenant(id: string): Promise<MigrationOutcome>
  /**
   * Migrates every tenant, on worker threads when the migrations are importable
   * (a folder, or `migrations.tenantModule`), each in its own transaction. Never
   * throws for a tenant's failure: the failed tenant stays at its version and
   * its row in the report carries a `MigrationError`.
   *
   * @example
   * ```ts
   * const report = await shard.migrate.all({ onProgress: ({ done, total }) => console.log(`${done}/${total}`) })
   * if (report.failed > 0) console.error(report.tenants.filter((t) => t.error).map((t) => t.error!.message))
   * ```
   */
  all(options?: MigrateAllOptions): Promise<MigrationReport>
  /**
   * Each tenant's version, pending migrations and schema drift (compared with a
   * fresh template at the same version), plus tenants per version (`rollout`).
   *
   * @example
   * ```ts
   * const { latest, rollout, tenants } = await shard.migrate.status()
   * // rollout: [{ version: '002_comments', tenants: 120 }, { version: '003_tags', tenants: 9880 }]
   * ```
   */
  status(options?: MigrationStatusOptions): Promise<StatusReport>
  /** The configured migrations, loaded and in the order they apply (used by codegen and the CLI). */
  list(): Promise<{ readonly apex: readonly NamedMigration[]; readonly tenant: readonly NamedMigration[] }>
}

export function createMigrateApi(ctx: ShardinesContext, sources: MigrationSources = {}): MigrateApi {
  return Object.freeze({
    async apex(): Promise<MigrationOutcome> {
      ctx.assertOpen()
      const { apex } = await ctx.migrationSets()
      const outcome = await observeMigration(ctx.events, 'migrate', () =>
        runMigrations(ctx.storage.apex(), 'apex', apex, ctx.log, ctx.storage),
      )
      if (outcome.error) throw outcome.error
      return outcome
    },
    async tenant(id: string): Promise<MigrationOutcome> {
      ctx.assertOpen()
      assertTenantId(id)
      if (ctx.insideScopeOf(id)) {
        // Its transaction would queue behind the caller's own scope (and its open transaction, if any).
        throw new InvalidOptionsError(
          `migrate.tenant("${id}") was called inside a scope of tenant "${id}"; migrate it outside withTenant("${id}", …) (a scope of a behind tenant is migrated on open by migrateOnOpen: 'lazy').`,
        )
      }
      const outcome = await observeMigration(ctx.events, 'migrate', () => migrateTenantHere(ctx, id))
      if (outcome.error) throw outcome.error
      return outcome
    },
    async list() {
      const { apex, tenant } = await ctx.migrationSets()
      return { apex: apex.migrations, tenant: tenant.migrations }
    },
    all(options: MigrateAllOptions = {}): Promise<MigrationReport> {
      return migrateAll(ctx, sources, options)
    },
    async status(options: MigrationStatusOptions = {}): Promise<StatusReport> {
      ctx.assertOpen()
      const concurrency = options.concurrency ?? 4
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new InvalidOptionsError(
          `migrate.status: concurrency must be a whole number of at least 1, not ${String(options.concurrency)}.`,
        )
      }
      const { tenant } = await ctx.migrationSets()
      const ids: string[] = []
      for await (const id of ctx.storage.list()) ids.push(id)
      const rows: TenantStatus[] = new Array(ids.length)
      let next = 0
      let done = 0
      const lane = async (): Promise<void> => {
        while (next < ids.length) {
          const index = next++
          const id = ids[index] as string
          rows[index] = await tenantStatus(ctx, tenant, id)
          options.onProgress?.({ done: ++done, total: ids.length, id })
        }
      }
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, ids.length)) }, lane))
      return summarise(tenant, rows)
    },
  })
}
