import * as fs from 'node:fs'
import type { ArchivedTenant } from '@shardines/core'
import type { SqliteDriver } from '../driver/sqlite-driver.js'
import { compressFile, fsyncDirectory, removeFile, removeFiles } from './tenant-files.js'
import { ARCHIVE_META_SUFFIX, ARCHIVE_SUFFIX, STAGED_SUFFIX, type TenantPaths } from './tenant-paths.js'

/** Core's migration table: the archive records the last applied migration as the tenant's version. */
const MIGRATION_TABLE = 'kysely_migration'

/**
 * Finishes archiving tenant `id` once its file has been moved to the archive
 * folder (`<id>.staged.sqlite3`): compresses it aside, records what it holds
 * (`<id>.json`), then renames the compressed copy into place and removes the
 * staged file. Each step is atomic or redone from the start, so it also
 * completes an archive a killed process left half-done. Resolves to the record.
 */
export async function finishArchive(paths: TenantPaths, id: string, driver: SqliteDriver): Promise<ArchivedTenant> {
  const staged = paths.staged(id)
  const final = paths.archived(id)
  if (fs.existsSync(staged) && !fs.existsSync(final)) {
    const { version, bytes } = describeDatabase(staged, id, driver)
    const compressing = paths.archiveTemporary('compressing', id)
    try {
      await compressFile(staged, compressing)
      const record: ArchivedTenant = {
        id,
        version,
        bytes,
        compressedBytes: fs.statSync(compressing).size,
        archivedAt: new Date().toISOString(),
      }
      writeFileAtomic(paths.archiveMeta(id), `${JSON.stringify(record, null, 2)}\n`)
      fs.renameSync(compressing, final)
      fsyncDirectory(paths.archiveDir)
    } finally {
      removeFile(compressing)
    }
  }
  removeFiles(staged)
  return readArchiveRecord(paths, id)
}

/** What `archive` recorded about tenant `id` (rebuilt from the file sizes if the record is missing). */
export function readArchiveRecord(paths: TenantPaths, id: string): ArchivedTenant {
  try {
    return JSON.parse(fs.readFileSync(paths.archiveMeta(id), 'utf8')) as ArchivedTenant
  } catch {
    const archived = fs.statSync(paths.archived(id), { throwIfNoEntry: false })
    if (archived !== undefined)
      return { id, version: null, bytes: 0, compressedBytes: archived.size, archivedAt: archived.mtime.toISOString() }
    // Staged, not compressed yet.
    const staged = fs.statSync(paths.staged(id))
    return { id, version: null, bytes: staged.size, compressedBytes: 0, archivedAt: staged.mtime.toISOString() }
  }
}

/** Whether tenant `id` is archived (compressed, or moved out of the live set and not compressed yet). */
export function isArchivedFile(paths: TenantPaths, id: string): boolean {
  return fs.existsSync(paths.archived(id)) || fs.existsSync(paths.staged(id))
}

/** The ids in the archive folder, sorted. */
export async function archivedIds(paths: TenantPaths): Promise<string[]> {
  let names: string[]
  try {
    names = await fs.promises.readdir(paths.archiveDir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const ids = new Set<string>()
  for (const name of names) {
    if (name.startsWith('.')) continue
    if (name.endsWith(ARCHIVE_SUFFIX)) ids.add(name.slice(0, -ARCHIVE_SUFFIX.length))
    // Out of the live set, not compressed yet: archived already (an archive under way, or one a
    // killed process left, which the next lock holder finishes).
    else if (name.endsWith(STAGED_SUFFIX)) ids.add(name.slice(0, -STAGED_SUFFIX.length))
  }
  return [...ids].sort()
}

/** The version (last applied migration) and size of a database file, read through a private read-only connection. */
function describeDatabase(file: string, id: string, driver: SqliteDriver): { version: string | null; bytes: number } {
  const bytes = fs.statSync(file).size
  const db = driver.open(file, { readonly: true, fileMustExist: true, name: id })
  try {
    const table = db.prepare("select 1 from sqlite_master where type = 'table' and name = ?").get(MIGRATION_TABLE)
    if (table === undefined) return { version: null, bytes }
    const row = db.prepare(`select name from "${MIGRATION_TABLE}" order by name desc limit 1`).get() as
      | { name: string }
      | undefined
    return { version: row?.name ?? null, bytes }
  } finally {
    db.close()
  }
}

/** Writes `file` whole or not at all (aside, flushed, then renamed over it). */
export function writeFileAtomic(file: string, text: string): void {
  const aside = `${file}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`
  try {
    const fd = fs.openSync(aside, 'wx')
    try {
      fs.writeFileSync(fd, text)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(aside, file)
  } finally {
    removeFile(aside)
  }
}

export { ARCHIVE_META_SUFFIX }
