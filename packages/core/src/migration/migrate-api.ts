import { availableParallelism } from 'node:os'
import { stateOf } from '../connection/handle-state.js'
import { MigrationError } from '../errors.js'
import type { ShardinesContext } from '../shardines-context.js'
import { assertTenantId } from '../tenant/tenant-id.js'
import type { NamedMigration } from './migration-source.js'
import { type MigrationOutcome, runMigrations } from './run-migrations.js'

/** What `migrate.all` returns. */
export interface MigrationReport {
  readonly migrated: number
  readonly upToDate: number
  readonly failed: number
  readonly tenants: readonly MigrationOutcome[]
}

export interface MigrateAllOptions {
  /** Tenants migrated at once (default: one per core). */
  concurrency?: number
  onProgress?: (progress: { done: number; total: number; id: string; status: MigrationOutcome['status'] }) => void
  /** Stops starting new tenants once aborted; the report covers those that ran. */
  signal?: AbortSignal
}

/** `shard.migrate`. */
export interface MigrateApi {
  /** Applies pending apex migrations in one transaction; throws `MigrationError` if one fails (nothing applied). */
  apex(): Promise<MigrationOutcome>
  /** Applies a tenant's pending migrations in one transaction; throws `MigrationError` if one fails. */
  tenant(id: string): Promise<MigrationOutcome>
  /** Migrates every tenant; never throws for a tenant's failure (see the report). */
  all(options?: MigrateAllOptions): Promise<MigrationReport>
  /** The configured migrations, loaded and in the order they apply (used by codegen and the CLI). */
  list(): Promise<{ readonly apex: readonly NamedMigration[]; readonly tenant: readonly NamedMigration[] }>
}

export function createMigrateApi(ctx: ShardinesContext): MigrateApi {
  const migrateTenant = async (id: string): Promise<MigrationOutcome> => {
    const { tenant } = await ctx.migrationSets()
    const lease = await ctx.acquire(id, false)
    try {
      const outcome = await runMigrations(lease.handle, id, tenant, ctx.log)
      if (outcome.status !== 'failed') stateOf(lease.handle).ready = true
      return outcome
    } finally {
      lease.release()
    }
  }
  return Object.freeze({
    async apex(): Promise<MigrationOutcome> {
      ctx.assertOpen()
      const { apex } = await ctx.migrationSets()
      const outcome = await runMigrations(ctx.storage.apex(), 'apex', apex, ctx.log)
      if (outcome.error) throw outcome.error
      return outcome
    },
    async tenant(id: string): Promise<MigrationOutcome> {
      ctx.assertOpen()
      assertTenantId(id)
      const outcome = await migrateTenant(id)
      if (outcome.error) throw outcome.error
      return outcome
    },
    async list() {
      const { apex, tenant } = await ctx.migrationSets()
      return { apex: apex.migrations, tenant: tenant.migrations }
    },
    async all(options: MigrateAllOptions = {}): Promise<MigrationReport> {
      ctx.assertOpen()
      const ids: string[] = []
      for await (const id of ctx.storage.list()) ids.push(id)
      const concurrency = Math.max(1, Math.floor(options.concurrency ?? availableParallelism()))
      const tenants: MigrationOutcome[] = new Array(ids.length)
      let next = 0
      let done = 0
      const worker = async (): Promise<void> => {
        while (next < ids.length && !options.signal?.aborted) {
          const index = next++
          const id = ids[index] as string
          let outcome: MigrationOutcome
          try {
            outcome = await migrateTenant(id)
          } catch (error) {
            outcome = { id, from: null, to: null, status: 'failed', error: new MigrationError(id, undefined, error) }
          }
          tenants[index] = outcome
          done++
          options.onProgress?.({ done, total: ids.length, id, status: outcome.status })
        }
      }
      await Promise.all(Array.from({ length: concurrency }, worker))
      const ran = tenants.filter((t) => t !== undefined)
      return {
        migrated: ran.filter((t) => t.status === 'migrated').length,
        upToDate: ran.filter((t) => t.status === 'up-to-date').length,
        failed: ran.filter((t) => t.status === 'failed').length,
        tenants: ran,
      }
    },
  })
}
