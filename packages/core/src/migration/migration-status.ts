import { bindHandle } from '../connection/handle-binding.js'
import { createBoundKysely, plainCompiler } from '../connection/kysely-factory.js'
import type { ShardinesContext } from '../shardines-context.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import type { RolloutStep, StatusReport, TenantStatus } from './migration-reports.js'
import { type MigrationSet, prefixSet } from './migration-source.js'
import { readAppliedMigrations, readVersionStamp, runMigrations } from './run-migrations.js'
import { schemaFingerprint } from './schema-fingerprint.js'

/**
 * Fingerprints of fresh templates, per migration set and version (the number
 * of migrations applied): built once in a scratch in-memory database, then
 * compared with every tenant at that version.
 */
const templates = new WeakMap<MigrationSet, Map<number, Promise<string>>>()

export function templateFingerprint(ctx: ShardinesContext, set: MigrationSet, k: number): Promise<string> {
  let perVersion = templates.get(set)
  if (perVersion === undefined) {
    perVersion = new Map()
    templates.set(set, perVersion)
  }
  let fingerprint = perVersion.get(k)
  if (fingerprint === undefined) {
    fingerprint = buildTemplate(ctx, prefixSet(set, k), k)
    perVersion.set(k, fingerprint)
    fingerprint.catch(() => perVersion.delete(k))
  }
  return fingerprint
}

async function buildTemplate(ctx: ShardinesContext, set: MigrationSet, k: number): Promise<string> {
  const scratch = await ctx.storage.openScratch()
  try {
    const label = `template@${set.latest ?? '(none)'}`
    if (k > 0) {
      const outcome = await runMigrations(scratch, label, set, null)
      if (outcome.error) throw outcome.error
    }
    return await schemaFingerprint(scratch, label)
  } finally {
    await scratch.close()
  }
}

/** Reads one tenant's version and compares its schema with the template at that version. */
export async function tenantStatus(ctx: ShardinesContext, set: MigrationSet, id: string): Promise<TenantStatus> {
  let lease: Awaited<ReturnType<ShardinesContext['acquire']>>
  try {
    lease = await ctx.acquire(id, false)
  } catch (error) {
    return { id, version: null, pending: [...set.names], drift: false, error: messageOf(error) }
  }
  try {
    const applied = await appliedMigrations(lease.handle, id, set)
    const prefix = isPrefix(applied, set.names)
    const version = applied.at(-1) ?? null
    if (!prefix) {
      // Ahead of this code (a newer release migrated it): nothing pending, nothing to compare with.
      const ahead = isPrefix(set.names, applied)
      return { id, version, pending: [], drift: !ahead }
    }
    const pending = set.names.slice(applied.length)
    const [actual, expected] = await Promise.all([
      schemaFingerprint(lease.handle, id),
      templateFingerprint(ctx, set, applied.length),
    ])
    return { id, version, pending, drift: actual !== expected }
  } catch (error) {
    return { id, version: null, pending: [...set.names], drift: false, error: messageOf(error) }
  } finally {
    lease.release()
  }
}

/**
 * The applied migrations: from the `user_version` stamp when it matches a
 * known prefix (one pragma), else from the `kysely_migration` table.
 */
export async function appliedMigrations(
  handle: StorageHandle,
  id: string,
  set: MigrationSet,
): Promise<readonly string[]> {
  const stamp = await readVersionStamp(handle)
  if (stamp !== 0) {
    const k = set.stamps.indexOf(stamp)
    if (k > 0) return set.names.slice(0, k)
  }
  const binding = bindHandle(handle, { label: id })
  return readAppliedMigrations(createBoundKysely(binding, plainCompiler(), []))
}

/** Builds the report: the rollout counts in migration order, unknown versions last. */
export function summarise(set: MigrationSet, tenants: readonly TenantStatus[]): StatusReport {
  const counts = new Map<string | null, number>()
  for (const t of tenants) {
    if (t.error !== undefined) continue
    counts.set(t.version, (counts.get(t.version) ?? 0) + 1)
  }
  const rollout: RolloutStep[] = []
  for (const version of [null, ...set.names]) {
    const n = counts.get(version)
    if (n !== undefined) rollout.push({ version, tenants: n })
    counts.delete(version)
  }
  for (const [version, n] of [...counts].sort()) rollout.push({ version, tenants: n })
  return {
    latest: set.latest,
    tenants,
    rollout,
    drifted: tenants.filter((t) => t.drift).length,
  }
}

function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
