import { type AttachPolicy, AttachQueryCompiler } from '../attach/attach-query-compiler.js'
import { attachExplicitly } from '../connection/attachments.js'
import { bindHandle } from '../connection/handle-binding.js'
import { createBoundKysely } from '../connection/kysely-factory.js'
import { AttachLimitError, InvalidOptionsError } from '../errors.js'
import { readOnlyGuard } from '../guard/statement-guard.js'
import type { ShardinesContext } from '../shardines-context.js'
import { requireAttach } from '../storage/capabilities.js'
import { APEX, type ScratchHandle, type StorageLocation, type TenantLease } from '../storage/storage-adapter.js'
import type { TenantsScope } from './scope-types.js'
import { assertTenantId } from './tenant-id.js'

/**
 * `shard.withTenants(ids, fn)`: attaches several tenants (and apex, if used)
 * read-only to one scratch connection for joined queries, and resolves to what
 * `fn` returns. Each tenant is pinned (and readied by `migrateOnOpen`) while
 * `fn` runs; no current tenant is bound.
 */
export async function withTenants<const Ids extends readonly string[], T, TenantDB, ApexDB>(
  ctx: ShardinesContext,
  locate: (schema: string) => StorageLocation,
  ids: Ids,
  fn: (x: TenantsScope<Ids[number], TenantDB, ApexDB>) => T | Promise<T>,
): Promise<Awaited<T>> {
  ctx.assertOpen()
  if (!Array.isArray(ids) || ids.length === 0) {
    throw new InvalidOptionsError('withTenants(ids, fn) needs a non-empty array of tenant ids.')
  }
  for (const id of ids) assertTenantId(id)
  const unique = [...new Set(ids as readonly string[])]
  requireAttach(ctx.storage, `withTenants(${unique.join(', ')})`)
  if (unique.length > ctx.storage.maxAttached) {
    throw new AttachLimitError(unique.length, ctx.storage.maxAttached)
  }
  const leases: TenantLease[] = []
  let scratch: ScratchHandle | undefined
  let closed = false
  try {
    // Pinning each tenant keeps it from being destroyed mid-query and applies migrateOnOpen.
    for (const id of unique) leases.push(await ctx.acquire(id, true))
    scratch = await ctx.storage.openScratch()
    const label = `withTenants(${unique.join(', ')})`
    const policy: AttachPolicy = Object.freeze({
      label,
      readable: new Set([...unique, APEX]),
    })
    const binding = bindHandle(scratch, {
      label,
      owner: null,
      isClosed: () => closed,
      locate,
      maxAttached: ctx.storage.maxAttached,
      log: ctx.log,
      // Everything here is read-only, raw SQL included: the guard refuses any write.
      guard: readOnlyGuard(label),
      busyTimeout: ctx.storage.busyTimeout,
      readsOthersOnly: true,
    })
    const db = createBoundKysely<never>(binding, new AttachQueryCompiler(policy), ctx.plugins)
    const scope: TenantsScope<Ids[number], TenantDB, ApexDB> = Object.freeze({
      ids: Object.freeze([...unique]) as readonly Ids[number][],
      db: db as unknown as TenantsScope<Ids[number], TenantDB, ApexDB>['db'],
      attach: async (name: string) => {
        if (name !== APEX && !unique.includes(name)) {
          throw new InvalidOptionsError(
            `attach("${name}"): only apex and the ids given to withTenants can be attached.`,
          )
        }
        await attachExplicitly(binding, name)
      },
    })
    return await fn(scope)
  } finally {
    closed = true
    if (scratch) await scratch.close()
    for (const lease of leases) lease.release()
  }
}
