import * as fs from 'node:fs'
import * as path from 'node:path'
import { TenantBusyError } from '@shardines/core'
import { processAlive, type TenantPaths } from './tenant-paths.js'

/** A lifecycle operation, as its lock file records it (the intent a recovery completes or undoes). */
export interface LifecycleIntent {
  readonly op: 'create' | 'fork' | 'destroy' | 'rename' | 'archive' | 'restore' | 'layout' | 'repair' | 'rekey'
  /** The tenant the operation is about (`from` for a rename). */
  readonly id: string
  /** A rename's new id. */
  readonly to?: string | undefined
  /** A layout move's source and target files. */
  readonly source?: string | undefined
  readonly target?: string | undefined
  readonly pid: number
  readonly started: number
}

/** Completes or undoes what a killed process left half-done (files only; idempotent). */
export type Recover = (intent: LifecycleIntent) => Promise<void>

/**
 * Per-tenant locks across processes, held while a tenant's file changes place
 * (create, fork, destroy, rename, archive, restore, a layout move). A lock is
 * a file under `<dir>/.shardines/locks/`, made whole in one step (written
 * aside, then hard-linked into place: the link fails if the lock is held), and
 * it records the operation. A lock whose process is gone (killed mid-way) is
 * broken by the next process that wants it, after `recover` has completed or
 * undone the operation it records. Waiting for a live holder lasts at most
 * `busyTimeout`, then `TenantBusyError`.
 */
export class LifecycleLocks {
  readonly #paths: TenantPaths
  readonly #busyTimeout: number
  readonly #recover: Recover
  #dirReady = false

  constructor(paths: TenantPaths, busyTimeout: number, recover: Recover) {
    this.#paths = paths
    this.#busyTimeout = busyTimeout
    this.#recover = recover
  }

  /** Runs `fn` holding the locks of `ids` (taken in sorted order, so two operations never deadlock). */
  async hold<T>(
    ids: readonly string[],
    intent: Omit<LifecycleIntent, 'pid' | 'started'>,
    fn: () => Promise<T>,
  ): Promise<T> {
    const full: LifecycleIntent = { ...intent, pid: process.pid, started: Date.now() }
    const taken: string[] = []
    try {
      for (const id of [...new Set(ids)].sort()) {
        await this.#take(id, full)
        taken.push(id)
      }
      return await fn()
    } finally {
      for (const id of taken) removeQuietly(this.#paths.lock(id))
    }
  }

  /** The intent recorded by `id`'s lock, if one is held (by anyone). */
  read(id: string): LifecycleIntent | undefined {
    return readIntent(this.#paths.lock(id))
  }

  async #take(id: string, intent: LifecycleIntent): Promise<void> {
    this.#ensureDir()
    const lock = this.#paths.lock(id)
    const started = performance.now()
    let delay = 1
    for (;;) {
      if (linkWhole(lock, intent)) return
      const holder = readIntent(lock)
      if (holder === undefined && !fs.existsSync(lock)) continue // released meanwhile
      if (holder !== undefined && !processAlive(holder.pid)) {
        // Killed mid-way: finish (or undo) its work, then break its lock. One process at a time
        // does that, holding the lock's breaker, so two recoveries never run at once.
        await this.#breakStale(lock, holder, intent)
        continue
      }
      const waited = performance.now() - started
      if (waited >= this.#busyTimeout) throw new TenantBusyError(id, waited)
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, this.#busyTimeout - waited)))
      delay = Math.min(delay * 2, 50)
    }
  }

  async #breakStale(lock: string, holder: LifecycleIntent, intent: LifecycleIntent): Promise<void> {
    const breaker = `${lock}.break`
    if (!linkWhole(breaker, intent)) {
      const other = readIntent(breaker)
      // A breaker left by a process killed while it recovered: remove it, the next try recovers again.
      if (other !== undefined && !processAlive(other.pid) && sameIntent(readIntent(breaker), other))
        removeQuietly(breaker)
      else await new Promise((resolve) => setTimeout(resolve, 2))
      return
    }
    try {
      if (!sameIntent(readIntent(lock), holder)) return // someone else broke it already
      await this.#recover(holder)
      removeQuietly(lock)
    } finally {
      removeQuietly(breaker)
    }
  }

  #ensureDir(): void {
    if (this.#dirReady) return
    fs.mkdirSync(this.#paths.locksDir, { recursive: true })
    this.#dirReady = true
  }
}

/** Creates `file` holding `intent`, whole, unless it exists (written aside, then hard-linked into place). */
function linkWhole(file: string, intent: LifecycleIntent): boolean {
  const aside = `${file}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`
  fs.writeFileSync(aside, JSON.stringify(intent))
  try {
    fs.linkSync(aside, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return false
  } finally {
    removeQuietly(aside)
  }
}

/** The intent in a lock file; undefined when there is none or it cannot be read whole. */
export function readIntent(file: string): LifecycleIntent | undefined {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  try {
    const value = JSON.parse(text) as LifecycleIntent
    return typeof value.op === 'string' && typeof value.pid === 'number' ? value : undefined
  } catch {
    return undefined
  }
}

function sameIntent(a: LifecycleIntent | undefined, b: LifecycleIntent | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.pid === b.pid && a.started === b.started && a.op === b.op && a.id === b.id
}

/** Lock files (and their torn leftovers) in the locks folder: `doctor` reports those of dead processes. */
export function lockFiles(paths: TenantPaths): string[] {
  try {
    return fs.readdirSync(paths.locksDir).map((name) => path.join(paths.locksDir, name))
  } catch {
    return []
  }
}

export function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
