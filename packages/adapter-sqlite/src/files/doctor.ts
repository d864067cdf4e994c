import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ArchivedTenant, DoctorFinding, DoctorOptions, DoctorReport } from '@shardines/core'
import type { DriverConnection, SqliteDriver } from '../driver/sqlite-driver.js'
import { readIntent } from './lifecycle-lock.js'
import { inspectTenantFile, removeFile, removeFiles, sameInode } from './tenant-files.js'
import {
  ARCHIVE_META_SUFFIX,
  ARCHIVE_SUFFIX,
  BUCKET,
  leftoverOf,
  processAlive,
  STAGED_SUFFIX,
  type TenantPaths,
} from './tenant-paths.js'

/** What `doctor` needs from the adapter. */
export interface DoctorDeps {
  readonly paths: TenantPaths
  /** Takes and releases tenant `id`'s lifecycle lock: a stale one is recovered and broken on the way. */
  readonly repair: (id: string) => Promise<void>
  /** Completes an archive left half-done (under the tenant's lock). */
  readonly finishArchive: (id: string) => Promise<ArchivedTenant>
  /** The engine that opens files for their check. */
  readonly driver: SqliteDriver
}

const DEFAULT_GRACE_MS = 15 * 60 * 1000
/** An aside file of an atomic write (`<name>.<pid>-<random>.tmp`). */
const ASIDE = /\.(\d+)-[a-z0-9]+\.tmp$/
const SIDE = /^(.*\.sqlite3)-(wal|shm|journal)$/

/**
 * Checks the data folder, in this order (so that what a fix completes is not
 * reported again): lifecycle locks of processes that are gone (with `fix`,
 * their operation is completed or undone and the lock broken), records of
 * backups whose process is gone (their partial files), the tenants folders
 * (leftovers of killed creates, forks and restores; side files without their
 * database; stray files), the archive folder (archives left half-done, stray
 * records), then every tenant file: in both layouts at once, and SQLite's
 * `quick_check` (or `integrity_check`) through a private read-only connection.
 */
export async function runDoctor(deps: DoctorDeps, options: DoctorOptions): Promise<DoctorReport> {
  const { paths } = deps
  const fix = options.fix === true
  const grace = options.graceMs ?? DEFAULT_GRACE_MS
  const check = options.check ?? 'quick'
  const findings: DoctorFinding[] = []
  const now = Date.now()
  const add = (finding: DoctorFinding) => findings.push(finding)
  /** Leftovers nobody can be working on: their process is gone, or (no pid known) they are older than the grace period. */
  const abandoned = (file: string, pid: number | undefined) => {
    if (pid !== undefined) return !processAlive(pid)
    const stat = fs.statSync(file, { throwIfNoEntry: false })
    return stat !== undefined && now - stat.mtimeMs > grace
  }
  const leftover = (file: string, detail: string, tenantId?: string) => {
    if (fix) removeFile(file)
    add({ kind: 'leftover', path: file, tenantId, detail, fixed: fix, needsPerson: false })
  }

  // 1. Locks.
  for (const name of listNames(paths.locksDir)) {
    const file = path.join(paths.locksDir, name)
    if (name.endsWith('.lock')) {
      const intent = readIntent(file)
      if (intent === undefined || processAlive(intent.pid)) continue
      const id = name.slice(0, -'.lock'.length)
      if (fix) await deps.repair(id)
      add({
        kind: 'stale-lock',
        path: file,
        tenantId: id,
        detail: `${intent.op}${intent.to === undefined ? '' : ` to "${intent.to}"`} by process ${intent.pid}, which is gone${fix ? ': completed or undone, lock removed' : ''}`,
        fixed: fix,
        needsPerson: false,
      })
    } else if (name.endsWith('.lock.break')) {
      const intent = readIntent(file)
      if (intent !== undefined && !processAlive(intent.pid))
        leftover(file, 'the breaker of a lock, left by a killed process')
    } else {
      const aside = ASIDE.exec(name)
      if (aside !== null && abandoned(file, Number(aside[1])))
        leftover(file, 'a lock written aside by a killed process')
    }
  }

  // 2. Backups in progress whose process is gone.
  for (const name of listNames(paths.backupsDir)) {
    const file = path.join(paths.backupsDir, name)
    let record: { pid?: number; partial?: string } | undefined
    try {
      record = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: number; partial?: string }
    } catch {
      record = undefined
    }
    if (record?.pid !== undefined && processAlive(record.pid)) continue
    if (record === undefined && !abandoned(file, undefined)) continue
    if (typeof record?.partial === 'string') {
      if (fix) removeFiles(record.partial)
      add({
        kind: 'leftover',
        path: record.partial,
        detail: `the partial file of a backup by process ${record.pid}, which is gone`,
        fixed: fix,
        needsPerson: false,
      })
    }
    if (fix) removeFile(file)
  }

  // 3. Tenants folders.
  const tenantFiles = new Map<string, string[]>()
  const scanFolder = (dir: string, depth: number) => {
    for (const entry of listEntries(dir)) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (depth < 2 && BUCKET.test(entry.name)) scanFolder(file, depth + 1)
        else strayFile(file, 'a folder that is not part of either layout')
        continue
      }
      const id = paths.idOf(entry.name)
      if (id !== undefined && (depth === 0 || depth === 2)) {
        const files = tenantFiles.get(id) ?? []
        files.push(file)
        tenantFiles.set(id, files)
        continue
      }
      const made = leftoverOf(entry.name)
      if (made !== undefined) {
        if (abandoned(file, made.pid))
          leftover(file, `a temporary file of a ${made.purpose} by process ${made.pid}, which is gone`)
        continue
      }
      const side = SIDE.exec(entry.name)
      if (side !== null) {
        const database = side[1] as string
        if (!fs.existsSync(path.join(dir, database))) {
          // Nobody works on the tenant (no live holder of its lock): a killed process moved its file away.
          const owner = paths.idOf(database)
          const holder = owner === undefined ? undefined : readIntent(paths.lock(owner))
          const idle = owner !== undefined && (holder === undefined || !processAlive(holder.pid))
          if (idle || abandoned(file, undefined)) leftover(file, `a -${side[2]} file whose database is gone`)
        }
        continue
      }
      strayFile(file, 'not a tenant database (or not named as one)')
    }
  }
  function strayFile(file: string, detail: string) {
    add({ kind: 'stray-file', path: file, detail, fixed: false, needsPerson: true })
  }
  scanFolder(paths.tenantsDir, 0)

  // 4. The archive folder.
  for (const name of listNames(paths.archiveDir)) {
    const file = path.join(paths.archiveDir, name)
    if (name.endsWith(ARCHIVE_SUFFIX)) {
      const id = name.slice(0, -ARCHIVE_SUFFIX.length)
      const holder = readIntent(paths.lock(id))
      // A restore killed after linking the file into place: its stale lock says so, and fix settles it.
      const interruptedRestore = holder !== undefined && holder.op === 'restore' && !processAlive(holder.pid)
      if (tenantFiles.has(id) && !interruptedRestore && !(fix && holder?.op === 'restore')) {
        add({
          kind: 'duplicate',
          path: file,
          tenantId: id,
          detail: `tenant "${id}" is both live and archived: keep one (destroy the live one, or remove this archive)`,
          fixed: false,
          needsPerson: true,
        })
      }
      continue
    }
    if (name.endsWith(STAGED_SUFFIX)) {
      const id = name.slice(0, -STAGED_SUFFIX.length)
      const holder = readIntent(paths.lock(id))
      if (holder !== undefined && processAlive(holder.pid)) continue // being archived now
      if (fix) await deps.finishArchive(id)
      add({
        kind: 'leftover',
        path: file,
        tenantId: id,
        detail: `an archive of "${id}" left half-done${fix ? ': completed' : ''}`,
        fixed: fix,
        needsPerson: false,
      })
      continue
    }
    if (name.endsWith(ARCHIVE_META_SUFFIX)) {
      const id = name.slice(0, -ARCHIVE_META_SUFFIX.length)
      if (!fs.existsSync(paths.archived(id)) && !fs.existsSync(paths.staged(id)) && abandoned(file, undefined))
        leftover(file, 'the record of an archive that is gone', id)
      continue
    }
    const side = SIDE.exec(name)
    if (side !== null) {
      // The staged file's side files, left when a killed process had it open.
      const database = side[1] as string
      if (!fs.existsSync(path.join(paths.archiveDir, database))) {
        const owner = database.endsWith(STAGED_SUFFIX) ? database.slice(0, -STAGED_SUFFIX.length) : undefined
        const holder = owner === undefined ? undefined : readIntent(paths.lock(owner))
        if ((owner !== undefined && (holder === undefined || !processAlive(holder.pid))) || abandoned(file, undefined))
          leftover(file, `a -${side[2]} file whose database is gone`)
      }
      continue
    }
    const made = leftoverOf(name)
    if (made !== undefined) {
      if (abandoned(file, made.pid))
        leftover(file, `a temporary file of a ${made.purpose} by process ${made.pid}, which is gone`)
      continue
    }
    const aside = ASIDE.exec(name)
    if (aside !== null) {
      if (abandoned(file, Number(aside[1]))) leftover(file, 'a record written aside by a killed process')
      continue
    }
    strayFile(file, 'not an archive of a tenant')
  }

  // 5. Each tenant's file(s).
  for (const [id, files] of tenantFiles) {
    if (files.length > 1) {
      const [first, second] = files as [string, string]
      if (sameInode(first, second)) {
        // A layout move left half-done: both names are one file; the configured layout's stays.
        const old = files.find((f) => f !== paths.tenant(id)) ?? second
        const holder = readIntent(paths.lock(id))
        if (holder !== undefined && processAlive(holder.pid)) continue
        if (fix) {
          removeFile(old)
          files.splice(files.indexOf(old), 1)
        }
        add({
          kind: 'leftover',
          path: old,
          tenantId: id,
          detail: "a second name of the tenant's file, left by a layout move",
          fixed: fix,
          needsPerson: false,
        })
      } else {
        add({
          kind: 'duplicate',
          path: second,
          tenantId: id,
          detail: `tenant "${id}" has two different files (${first} and ${second}): keep the right one, remove the other`,
          fixed: false,
          needsPerson: true,
        })
      }
    }
    if (check === 'none') continue
    for (const file of files) {
      const problem = checkDatabase(deps.driver, id, file, check)
      if (problem !== undefined)
        add({ kind: 'damaged', path: file, tenantId: id, detail: problem, fixed: false, needsPerson: true })
    }
  }
  return {
    tenants: tenantFiles.size,
    findings,
    needsPerson: findings.filter((f) => f.needsPerson && !f.fixed).length,
  }
}

/** What is wrong with a tenant's database, or undefined when its check passes. */
function checkDatabase(driver: SqliteDriver, id: string, file: string, check: 'quick' | 'full'): string | undefined {
  try {
    inspectTenantFile(id, file)
  } catch (error) {
    return (error as Error).message
  }
  let db: DriverConnection | undefined
  try {
    db = driver.open(file, { readonly: true, fileMustExist: true, name: id })
    db.pragma('busy_timeout = 1000')
    const rows = db.pragma(check === 'full' ? 'integrity_check' : 'quick_check', { simple: false }) as Record<
      string,
      string
    >[]
    const messages = rows.map((row) => Object.values(row)[0])
    if (messages.length === 1 && messages[0] === 'ok') return undefined
    return `${check === 'full' ? 'integrity_check' : 'quick_check'} failed: ${messages.slice(0, 5).join('; ')}`
  } catch (error) {
    return `cannot be read: ${(error as Error).message}`
  } finally {
    db?.close()
  }
}

function listNames(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort()
  } catch {
    return []
  }
}

function listEntries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))
  } catch {
    return []
  }
}
