import { stateOf } from '../connection/handle-state.js'
import { TenantBusyError, TenantSchemaOutdatedError } from '../errors.js'
import type { ShardinesContext } from '../shardines-context.js'
import type { TenantLease } from '../storage/storage-adapter.js'
import { appliedMigrations } from './migration-status.js'
import { observeMigration } from './observe-migration.js'
import { readVersionStamp, runMigrations } from './run-migrations.js'

/**
 * Pins a tenant's handle; with `ready`, also applies `migrateOnOpen` the first
 * time the open handle is used (concurrent first users share one check). A
 * failed check or lazy migration releases the lease and rejects.
 */
export async function acquireTenant(ctx: ShardinesContext, tenantId: string, ready: boolean): Promise<TenantLease> {
  // Observed (when someone listens): a miss (the adapter read the version stamp while opening) is a
  // `pool:miss` event with the time it took; a lock that outlasted the busy timeout a `busy:timeout`.
  const started = ctx.events.emit === null ? 0 : performance.now()
  let lease: TenantLease
  try {
    lease = await ctx.storage.acquire(tenantId)
  } catch (error) {
    if (started !== 0 && error instanceof TenantBusyError) {
      ctx.events.emit?.({ type: 'busy:timeout', tenantId, waitedMs: error.waitedMs, inTransaction: false })
    }
    throw error
  }
  if (started !== 0 && lease.versionStampAtOpen !== undefined) {
    ctx.events.emit?.({ type: 'pool:miss', tenantId, durationMs: performance.now() - started })
  }
  if (!ready) return lease
  const state = stateOf(lease.handle)
  if (state.ready) return lease
  // A miss whose stamp (read while the adapter opened the file) is already the latest, once the
  // migration sets are loaded: ready at once, as migrateOnOpen would decide, without its promises.
  if (
    state.readying === null &&
    lease.versionStampAtOpen !== undefined &&
    (ctx.migrateOnOpen === 'off' || ctx.loadedMigrationSets()?.tenant.latestStamp === lease.versionStampAtOpen)
  ) {
    state.ready = true
    return lease
  }
  try {
    state.readying ??= migrateOnOpen(ctx, tenantId, lease).finally(() => {
      state.readying = null
    })
    await state.readying
    state.ready = true
    return lease
  } catch (error) {
    lease.release()
    throw error
  }
}

/** The version check on open (one pragma), then lazy migration or the 'check' error. */
async function migrateOnOpen(ctx: ShardinesContext, tenantId: string, lease: TenantLease): Promise<void> {
  if (ctx.migrateOnOpen === 'off') return
  const { tenant } = await ctx.migrationSets()
  // The adapter may have read the stamp while it opened the file (its first read): no statement then.
  const stamp = lease.versionStampAtOpen ?? (await readVersionStamp(lease.handle, ctx.storage.busyTimeout))
  if (stamp === tenant.latestStamp) return
  if (ctx.migrateOnOpen === 'check') {
    const applied = await appliedMigrations(lease.handle, tenantId, tenant)
    if (tenant.names.every((name, i) => applied[i] === name)) return
    throw new TenantSchemaOutdatedError(tenantId, applied.at(-1) ?? null, tenant.names.slice(applied.length))
  }
  const outcome = await observeMigration(ctx.events, 'open', () =>
    runMigrations(lease.handle, tenantId, tenant, ctx.log, ctx.storage),
  )
  if (outcome.error) throw outcome.error
}
