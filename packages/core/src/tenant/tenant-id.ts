import { InvalidTenantIdError } from '../errors.js'
import { RESERVED_SCHEMAS } from '../storage/sqlite-engine.js'

/** Names SQLite or Shardines use for their own databases; never a tenant id. */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = RESERVED_SCHEMAS

/** The longest tenant id accepted. */
export const MAX_TENANT_ID_LENGTH = 64

const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/

/** Whether `id` is a valid tenant id (see {@link assertTenantId}). */
export function isValidTenantId(id: unknown): id is string {
  return typeof id === 'string' && TENANT_ID.test(id) && !RESERVED_TENANT_IDS.has(id)
}

/**
 * Throws {@link InvalidTenantIdError} unless `id` is 1–64 characters of
 * `a-z 0-9 _ -`, starts with a letter or digit, and is not reserved. Runs before
 * anything touches the filesystem, so a hostile id never becomes a path.
 */
export function assertTenantId(id: unknown): asserts id is string {
  if (isValidTenantId(id)) return
  throw new InvalidTenantIdError(id, tenantIdProblem(id))
}

function tenantIdProblem(id: unknown): string {
  if (typeof id !== 'string') return 'it is not a string'
  if (id.length === 0) return 'it is empty'
  if (id.length > MAX_TENANT_ID_LENGTH) return `it is ${id.length} characters long (64 at most)`
  if (RESERVED_TENANT_IDS.has(id)) return `"${id}" is reserved`
  if (/[A-Z]/.test(id) && isValidTenantId(id.toLowerCase()))
    return `it has upper-case letters (tenant ids are lower case: "${id.toLowerCase()}")`
  if (/^[A-Z]/.test(id)) return 'it has upper-case letters (tenant ids are lower case)'
  if (!/^[a-z0-9]/.test(id)) return 'it must start with a letter a-z or a digit'
  const bad = [...id].find((c) => !/[a-z0-9_-]/.test(c)) ?? ''
  const code = `U+${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`
  // Only printable ASCII is shown as itself: a raw control or bidi character would garble the log line.
  return /^[\x20-\x7e]$/.test(bad) ? `it contains ${JSON.stringify(bad)} (${code})` : `it contains ${code}`
}
