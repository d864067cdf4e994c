import * as fs from 'node:fs'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import { StorageError, type StorageFailure } from '@shardines/core'
import { withSideFiles } from './tenant-paths.js'

/**
 * Which file a handle has open: device, inode and creation time, as `lstat`
 * reports them (the creation time tells a re-created file that got a freed
 * inode number back from the one it replaced, where the filesystem keeps it).
 */
export interface FileIdentity {
  readonly dev: number
  readonly ino: number
  readonly born: number
}

/**
 * Checks what is at a tenant's path before SQLite opens it: undefined when
 * nothing is there; a typed `StorageError` naming the tenant for a symbolic
 * link (it could lead out of the data folder), anything that is not a regular
 * file, and an empty file (Shardines never makes one: SQLite would take it for
 * a new, empty database). Otherwise the file's identity.
 */
export function inspectTenantFile(tenantId: string, file: string): FileIdentity | undefined {
  let stat: fs.Stats | undefined
  try {
    stat = fs.lstatSync(file, { throwIfNoEntry: false })
  } catch (error) {
    throw storageFailure(tenantId, file, error)
  }
  if (stat === undefined) return undefined
  if (stat.isSymbolicLink()) {
    throw new StorageError(
      `Tenant "${tenantId}"'s file ${file} is a symbolic link; Shardines opens only regular files inside its data folder. Replace the link with the file (or restore the tenant from a backup).`,
      { tenantId, reason: 'symlink' },
    )
  }
  if (!stat.isFile()) {
    throw new StorageError(
      `Tenant "${tenantId}"'s path ${file} is not a regular file (a ${stat.isDirectory() ? 'folder' : 'special file'}). Move it away, then restore the tenant from a backup or create it again.`,
      { tenantId, reason: 'not-a-file' },
    )
  }
  if (stat.size === 0) {
    throw new StorageError(
      `Tenant "${tenantId}"'s file ${file} is empty (0 bytes): not a database Shardines made (a copy cut short?). Restore it from a backup, or destroy the tenant and create it again.`,
      { tenantId, reason: 'empty-file' },
    )
  }
  if (stat.size < MIN_DATABASE_BYTES) {
    // SQLite would read the missing header as zeros and take the file for a new, empty database.
    throw new StorageError(
      `Tenant "${tenantId}"'s file ${file} has ${stat.size} bytes, less than one database page: not a database Shardines made (a copy cut short?). Restore it from a backup.`,
      { tenantId, reason: 'not-a-database' },
    )
  }
  return { dev: stat.dev, ino: stat.ino, born: stat.birthtimeMs }
}

/** SQLite's smallest page: a database with anything in it is at least one page long. */
const MIN_DATABASE_BYTES = 512

/** Whether `file` is still the file `identity` names (one `lstat`). */
export function isSameFile(file: string, identity: FileIdentity): boolean {
  const stat = fs.lstatSync(file, { throwIfNoEntry: false })
  return (
    stat !== undefined &&
    stat.ino === identity.ino &&
    stat.dev === identity.dev &&
    stat.birthtimeMs === identity.born &&
    stat.isFile() &&
    // Cut below one page in place (same file): reopened, and then refused as not a database.
    stat.size >= MIN_DATABASE_BYTES
  )
}

/** Whether two paths name the same file (both exist, same device and inode). */
export function sameInode(a: string, b: string): boolean {
  const sa = fs.statSync(a, { throwIfNoEntry: false })
  const sb = fs.statSync(b, { throwIfNoEntry: false })
  return sa !== undefined && sb !== undefined && sa.ino === sb.ino && sa.dev === sb.dev
}

/** A failure to open or read a tenant's file, classified, as that tenant's typed error. */
export function storageFailure(tenantId: string, file: string, error: unknown): StorageError {
  const code = (error as { code?: string }).code ?? ''
  const reason: StorageFailure =
    code === 'SQLITE_NOTADB'
      ? 'not-a-database'
      : code.startsWith('SQLITE_CORRUPT')
        ? 'corrupt'
        : code === 'EACCES' || code === 'EPERM' || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM'
          ? 'permission'
          : code === 'SQLITE_CANTOPEN'
            ? 'cannot-open'
            : 'io'
  const advice: Record<StorageFailure, string> = {
    'not-a-database': 'it is not an SQLite database (a truncated or foreign file?): restore it from a backup',
    corrupt: 'SQLite reports it corrupt: restore it from a backup (shardines doctor lists every damaged tenant)',
    permission: 'the process may not read or write it: fix its owner and mode',
    'cannot-open': 'SQLite cannot open it (permissions, or a missing folder): check the file and its folder',
    io: 'check the disk and the file',
    symlink: 'replace the link with the file',
    'not-a-file': 'move it away',
    'empty-file': 'restore it from a backup',
  }
  return new StorageError(
    `Could not open tenant "${tenantId}" (${file}): ${(error as Error).message ?? String(error)}; ${advice[reason]}.`,
    { tenantId, reason, cause: error, driverCode: code || undefined },
  )
}

export function removeFile(file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

/** Removes a database's side files, then the database (so a crash in between leaves the database to find). */
export function removeFiles(file: string): void {
  const [main, ...sides] = withSideFiles(file)
  for (const side of sides) removeFile(side)
  removeFile(main as string)
}

export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** gzip `source` into `dest` (created; flushed to disk before it resolves). */
export async function compressFile(source: string, dest: string): Promise<void> {
  await pipeline(
    fs.createReadStream(source),
    zlib.createGzip({ level: 6 }),
    fs.createWriteStream(dest, { flags: 'wx' }),
  )
  fsyncFile(dest)
}

/** gunzip `source` into `dest` (created; flushed to disk before it resolves). */
export async function decompressFile(source: string, dest: string): Promise<void> {
  await pipeline(fs.createReadStream(source), zlib.createGunzip(), fs.createWriteStream(dest, { flags: 'wx' }))
  fsyncFile(dest)
}

/** `file` with its longest existing ancestor resolved through symlinks (the rest appended as given). */
export function realpathOfExisting(file: string): string {
  let existing = file
  const rest: string[] = []
  for (;;) {
    try {
      return path.join(fs.realpathSync(existing), ...rest)
    } catch {
      const parent = path.dirname(existing)
      if (parent === existing) return file
      rest.unshift(path.basename(existing))
      existing = parent
    }
  }
}
