/** An archived tenant, as `tenants.archive` recorded it. */
export interface ArchivedTenant {
  readonly id: string
  /** Its schema version when archived: the last applied migration's name (null for none). */
  readonly version: string | null
  /** Size of the database, and of its compressed archive, in bytes. */
  readonly bytes: number
  readonly compressedBytes: number
  /** When it was archived (ISO 8601). */
  readonly archivedAt: string
}

/** Options of `tenants.doctor`. */
export interface DoctorOptions {
  /** Remove what can be removed safely (leftovers, stale locks, finished halves of killed operations). Default false. */
  readonly fix?: boolean
  /**
   * Leftovers whose maker cannot be told alive or dead (no pid in the name)
   * are only touched once older than this, in milliseconds. Default 15 minutes.
   * Leftovers of a process that is gone are removed at once with `fix`.
   */
  readonly graceMs?: number
  /** How to check each tenant's database: `'quick'` (`quick_check`, default), `'full'` (`integrity_check`), or `'none'`. */
  readonly check?: 'quick' | 'full' | 'none'
}

/**
 * One thing `doctor` found:
 * - `leftover`: a temporary file of a create, fork, restore, archive or backup whose process is gone;
 * - `stale-lock`: a lifecycle lock of a process that is gone (its operation is completed or undone by `--fix`);
 * - `stray-file`: a file in the data folder that is not a tenant, an archive or Shardines' own;
 * - `damaged`: a tenant whose file cannot be opened or whose check fails;
 * - `version`: a tenant whose applied migrations this code does not know, or whose schema drifted;
 * - `behind`: a tenant with pending migrations (it migrates when next opened; informational);
 * - `duplicate`: a tenant both live and archived, or in both layouts, that `--fix` cannot settle.
 */
export interface DoctorFinding {
  readonly kind: 'leftover' | 'stale-lock' | 'stray-file' | 'damaged' | 'version' | 'behind' | 'duplicate'
  readonly path: string
  readonly tenantId?: string | undefined
  readonly detail: string
  /** Whether `fix` dealt with it (removed, completed). */
  readonly fixed: boolean
  /** Whether a person must look at it (doctor then exits non-zero). */
  readonly needsPerson: boolean
}

export interface DoctorReport {
  /** Tenants checked. */
  readonly tenants: number
  readonly findings: readonly DoctorFinding[]
  /** Findings that need a person and were not fixed. */
  readonly needsPerson: number
}

/** Options of `tenants.migrateLayout`. */
export interface LayoutMigrationOptions {
  /** Called once per tenant moved or found already in place. */
  readonly onProgress?: (progress: { readonly done: number; readonly id: string }) => void
}

export interface LayoutMigrationReport {
  /** Tenant files moved into the configured layout. */
  readonly moved: number
  /** Tenant files already there. */
  readonly inPlace: number
  /** Tenants that could not be moved (left where they were), each with its error. */
  readonly failed: readonly { readonly id: string; readonly error: Error }[]
}
