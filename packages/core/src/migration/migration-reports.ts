import type { MigrationOutcome } from './run-migrations.js'

/**
 * What `migrate.all` returns: counts, and one row per tenant that ran (sorted
 * by id). A failed row has `to === from` and a `MigrationError` in `error`.
 */
export interface MigrationReport {
  readonly migrated: number
  readonly upToDate: number
  readonly failed: number
  readonly tenants: readonly MigrationOutcome[]
  /**
   * Where the migrations ran: on `workers` threads, or on the main thread and why
   * (e.g. migrations given as objects, which cannot cross to a worker thread).
   */
  readonly runner: MigrationRunnerInfo
}

export type MigrationRunnerInfo =
  | { readonly kind: 'workers'; readonly workers: number }
  | { readonly kind: 'main-thread'; readonly reason: string }

/** One tenant in a {@link StatusReport}. */
export interface TenantStatus {
  readonly id: string
  /** The last applied migration (null for none). */
  readonly version: string | null
  /** Migrations this code has that the tenant has not applied, in order. */
  readonly pending: readonly string[]
  /**
   * True when the tenant's schema (tables, columns, indexes, foreign keys,
   * triggers, views) differs from a fresh template migrated to the same version,
   * or when its applied migrations are not a prefix of this code's.
   */
  readonly drift: boolean
  /** Set when the tenant could not be inspected (then `drift` is false and `version` null). */
  readonly error?: string
}

/** How many tenants are at one version: the progress of a rollout. */
export interface RolloutStep {
  readonly version: string | null
  readonly tenants: number
}

/** What `migrate.status()` returns. */
export interface StatusReport {
  /** The last migration this code knows (null when there are none). */
  readonly latest: string | null
  readonly tenants: readonly TenantStatus[]
  /**
   * Tenants per version in migration order (oldest first), then versions this
   * code does not know (tenants migrated by a newer release). During an
   * expand/contract rollout it shows how many tenants are still at N-1.
   */
  readonly rollout: readonly RolloutStep[]
  /** Tenants flagged with drift. */
  readonly drifted: number
}
