import { InvalidJobContextError } from '../errors.js'
import { assertTenantId } from './tenant-id.js'

/**
 * The tenant a background job belongs to, as captured by `shard.jobContext()`
 * when it is enqueued: plain JSON, to be stored with the job's payload and
 * given back to `shard.runJob(ctx, fn)`, which validates it again.
 */
export interface JobContext {
  /** The format's version (always 1 so far). */
  readonly shardines: 1
  /** The tenant the job runs in. */
  readonly tenant: string
}

const KEYS = new Set(['shardines', 'tenant'])

/** A job context for `tenantId` (already validated: it is the current scope's). */
export function jobContextOf(tenantId: string): JobContext {
  return Object.freeze({ shardines: 1, tenant: tenantId })
}

/**
 * The tenant id of a job context read back from a queue: refuses anything that
 * is not exactly what {@link jobContextOf} makes (`InvalidJobContextError`), and
 * a hostile or malformed tenant id (`InvalidTenantIdError`), before any file
 * is touched.
 */
export function tenantOfJobContext(ctx: unknown): string {
  if (ctx === null || typeof ctx !== 'object' || Array.isArray(ctx)) {
    throw new InvalidJobContextError(
      `is ${ctx === null ? 'null' : Array.isArray(ctx) ? 'an array' : typeof ctx}, not an object`,
    )
  }
  const prototype = Object.getPrototypeOf(ctx)
  if (prototype !== Object.prototype && prototype !== null) throw new InvalidJobContextError('is not a plain object')
  const record = ctx as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (!KEYS.has(key)) throw new InvalidJobContextError(`has an unknown key ${JSON.stringify(key.slice(0, 40))}`)
  }
  if (record.shardines !== 1) throw new InvalidJobContextError('has no known version (shardines: 1)')
  const tenant = record.tenant
  assertTenantId(tenant)
  return tenant
}
