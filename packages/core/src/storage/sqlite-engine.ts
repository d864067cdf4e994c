/**
 * What core knows of the SQLite engine family (better-sqlite3, libSQL): the
 * error codes it acts on. Kept in one place so an engine of another family
 * has one module to answer.
 */

/**
 * Whether an error means another connection holds the database's lock
 * (`SQLITE_BUSY` and its extended codes), so the same statement can simply
 * run again later. `SQLITE_BUSY_SNAPSHOT` is excluded: a WAL read transaction
 * that meets it must restart, and retrying the statement cannot help.
 */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_RECOVERY' || code === 'SQLITE_BUSY_TIMEOUT'
}
