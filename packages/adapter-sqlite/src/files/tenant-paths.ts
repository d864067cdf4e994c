import * as path from 'node:path'
import { isValidTenantId } from '@shardines/core'
import type { TenantLayout } from '../sqlite-storage-config.js'

export const TENANT_SUFFIX = '.sqlite3'
/** The hashed layout's subfolders: two hex digits at each of two levels. */
export const BUCKET = /^[0-9a-f]{2}$/

/** An archived tenant: its database, gzip-compressed. */
export const ARCHIVE_SUFFIX = '.sqlite3.gz'
/** What `archive` records next to it (the schema version, sizes, when). */
export const ARCHIVE_META_SUFFIX = '.json'
/** A tenant file being archived (moved out of the live set, not compressed yet). */
export const STAGED_SUFFIX = '.staged.sqlite3'

/**
 * FNV-1a (32 bits) of a tenant id: the hashed layout's subfolders. Stable by
 * contract: changing it would hide every tenant filed under the old hash.
 */
export function layoutHash(id: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0')
}

/**
 * The file layout:
 * - `<dir>/apex.sqlite3`;
 * - tenants under `<dir>/tenants/`: `<id>.sqlite3` (flat) or `<h1>/<h2>/<id>.sqlite3`
 *   (hashed: two hex bytes of {@link layoutHash});
 * - archived tenants under `<dir>/archive/`: `<id>.sqlite3.gz` and `<id>.json`;
 * - lifecycle locks under `<dir>/.shardines/locks/<id>.lock`.
 * Temporary files start with a dot and carry the pid of the process that made
 * them, so `doctor` can tell a leftover of a killed process from work in progress.
 */
export class TenantPaths {
  readonly dir: string
  readonly tenantsDir: string
  readonly archiveDir: string
  readonly locksDir: string
  /** Records of backups in progress (their partial files are outside the data folder). */
  readonly backupsDir: string
  readonly apex: string
  readonly layout: TenantLayout

  constructor(dir: string, layout: TenantLayout = 'flat') {
    this.dir = path.resolve(dir)
    this.layout = layout
    this.tenantsDir = path.join(this.dir, 'tenants')
    this.archiveDir = path.join(this.dir, 'archive')
    this.locksDir = path.join(this.dir, '.shardines', 'locks')
    this.backupsDir = path.join(this.dir, '.shardines', 'backups')
    this.apex = path.join(this.dir, `apex${TENANT_SUFFIX}`)
  }

  /** The file of a tenant in the configured layout. `id` must already be validated. */
  tenant(id: string): string {
    return this.inLayout(id, this.layout)
  }

  /** The file of a tenant in the other layout (where `layout migrate` may not have moved it from yet). */
  otherLayout(id: string): string {
    return this.inLayout(id, this.layout === 'flat' ? 'hashed' : 'flat')
  }

  inLayout(id: string, layout: TenantLayout): string {
    return path.join(this.folderOf(id, layout), `${id}${TENANT_SUFFIX}`)
  }

  /** The folder a tenant's file (and its temporary files) lives in. */
  folderOf(id: string, layout: TenantLayout = this.layout): string {
    if (layout === 'flat') return this.tenantsDir
    const hash = layoutHash(id)
    return path.join(this.tenantsDir, hex2(hash >>> 24), hex2(hash >>> 16))
  }

  /** A private temporary file in the tenant's folder, invisible to `list()` (leading dot; see `leftoverOf`). */
  temporary(purpose: string, id: string): string {
    return path.join(this.folderOf(id), `.${purpose}-${id}-${nonce()}${TENANT_SUFFIX}`)
  }

  archived(id: string): string {
    return path.join(this.archiveDir, `${id}${ARCHIVE_SUFFIX}`)
  }

  archiveMeta(id: string): string {
    return path.join(this.archiveDir, `${id}${ARCHIVE_META_SUFFIX}`)
  }

  staged(id: string): string {
    return path.join(this.archiveDir, `${id}${STAGED_SUFFIX}`)
  }

  /** A private temporary file in the archive folder (e.g. a compressed copy being written). */
  archiveTemporary(purpose: string, id: string): string {
    return path.join(this.archiveDir, `.${purpose}-${id}-${nonce()}`)
  }

  lock(id: string): string {
    return path.join(this.locksDir, `${id}.lock`)
  }

  /** The id for a file name in a tenants folder, or undefined for anything else (including names no API would accept). */
  idOf(fileName: string): string | undefined {
    if (fileName.startsWith('.') || !fileName.endsWith(TENANT_SUFFIX)) return undefined
    const id = fileName.slice(0, -TENANT_SUFFIX.length)
    return isValidTenantId(id) ? id : undefined
  }
}

/** `<pid>-<time>-<random>`: unique, and says which process made the file. */
function nonce(): string {
  return `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
}

/**
 * What a temporary file's name says: the operation and the pid of the process
 * that made it (`.creating-acme-4242-….sqlite3`, `backup.partial-4242-…`).
 */
export function leftoverOf(fileName: string): { readonly purpose: string; readonly pid: number } | undefined {
  const dotted = /^\.([a-z]+)-[a-z0-9][a-z0-9_-]*-(\d+)-[a-z0-9]+-[a-z0-9]+(\.sqlite3)?(-wal|-shm|-journal)?$/.exec(
    fileName,
  )
  if (dotted !== null) return { purpose: dotted[1] as string, pid: Number(dotted[2]) }
  const partial = /\.partial-(\d+)-[a-z0-9]+(-wal|-shm|-journal)?$/.exec(fileName)
  if (partial !== null) return { purpose: 'partial', pid: Number(partial[1]) }
  return undefined
}

/** Whether a process with this pid is running (on this machine). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A database file and the side files SQLite may keep next to it. */
export function withSideFiles(file: string): string[] {
  return [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]
}
