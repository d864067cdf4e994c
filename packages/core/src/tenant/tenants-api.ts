import { InvalidOptionsError } from '../errors.js'
import { runMigrations } from '../migration/run-migrations.js'
import type { ShardinesContext } from '../shardines-context.js'
import { APEX } from '../storage/storage-adapter.js'
import { assertTenantId } from './tenant-id.js'

/** `shard.tenants`: the tenant lifecycle. Every id is validated before the filesystem is touched. */
export interface TenantsApi {
  /**
   * Creates the tenant's database with every tenant migration applied, atomically:
   * it appears complete or not at all. `TenantExistsError` if it exists (also
   * when another process created it first).
   */
  create(id: string): Promise<void>
  exists(id: string): Promise<boolean>
  /** Every tenant id, sorted. */
  list(): AsyncIterable<string>
  /**
   * New scopes get `TenantNotFoundError` at once; waits for running scopes to
   * end, then closes the handle and removes the file and its `-wal`/`-shm`.
   * Resolves to whether the tenant existed.
   */
  destroy(id: string): Promise<boolean>
  /**
   * An online, consistent copy of a live tenant (or `'apex'`) at `destPath`.
   * Refused with `InvalidOptionsError` (nothing written) when `destPath` is
   * inside the data folder, or is an existing file and `overwrite` is not
   * set; nothing is ever written over a live tenant or apex database.
   */
  backup(id: string, destPath: string, options?: BackupOptions): Promise<void>
  /** Creates tenant `toId` as a consistent copy of `fromId` (e.g. a staging copy). */
  fork(fromId: string, toId: string): Promise<void>
}

/** Options of {@link TenantsApi.backup}. */
export interface BackupOptions {
  /** Replace an existing file at the destination (never a live database). Default false. */
  readonly overwrite?: boolean
}

export function createTenantsApi(ctx: ShardinesContext): TenantsApi {
  return Object.freeze({
    async create(id: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(id)
      const { tenant } = await ctx.migrationSets()
      await ctx.storage.create(id, async (handle) => {
        const outcome = await runMigrations(handle, id, tenant, ctx.log, ctx.storage)
        if (outcome.error) throw outcome.error
      })
    },
    async exists(id: string): Promise<boolean> {
      ctx.assertOpen()
      assertTenantId(id)
      return ctx.storage.exists(id)
    },
    list(): AsyncIterable<string> {
      ctx.assertOpen()
      return ctx.storage.list()
    },
    async destroy(id: string): Promise<boolean> {
      ctx.assertOpen()
      assertTenantId(id)
      if (ctx.insideScopeOf(id)) {
        // destroy waits for the tenant's scopes to end, and the caller is one of them.
        throw new InvalidOptionsError(
          `tenants.destroy("${id}") was called inside a scope of tenant "${id}" and would wait for itself forever. Call it outside withTenant("${id}", …).`,
        )
      }
      return ctx.storage.destroy(id)
    },
    async backup(id: string, destPath: string, options: BackupOptions = {}): Promise<void> {
      ctx.assertOpen()
      if (id !== APEX) assertTenantId(id)
      if (typeof destPath !== 'string' || destPath.length === 0) {
        throw new InvalidOptionsError(`tenants.backup("${id}", destPath) needs a destination path.`)
      }
      await ctx.storage.backup(id, destPath, { overwrite: options.overwrite === true })
    },
    async fork(fromId: string, toId: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(fromId)
      assertTenantId(toId)
      await ctx.storage.fork(fromId, toId)
    },
  })
}
