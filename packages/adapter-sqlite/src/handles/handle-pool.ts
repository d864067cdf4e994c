import type { PoolStats, TenantLease } from '@shardines/core'
import type { PoolObservers } from './pool-observers.js'
import type { SqliteHandle } from './sqlite-handle.js'

interface Entry {
  readonly id: string
  readonly handle: SqliteHandle
  refs: number
  /** Resolvers waiting for refs to reach 0 (destroy). */
  idle: Array<() => void>
  /**
   * Replaced while held: its file is no longer the tenant's (another process
   * destroyed, renamed or restored it). The scopes holding it finish on it;
   * it closes when the last one releases it, and nobody else gets it.
   */
  orphaned: boolean
}

/**
 * The open-handle LRU with pinning. A handle with a lease (a running scope or
 * transaction) is pinned and never closed; beyond `maxOpen`, the least recently
 * used unpinned handles are closed as soon as they are released. So open
 * handles stay at `maxOpen` plus those pinned.
 *
 * Recency is the insertion order of a Map: a hit moves the entry to the end.
 */
export class HandlePool {
  readonly #entries = new Map<string, Entry>()
  readonly #open: (id: string) => SqliteHandle
  readonly #isCurrent: (handle: SqliteHandle) => boolean
  /** Told of opens and evictions (when anyone observes). */
  readonly #observers: PoolObservers
  /** Entries replaced while held (see `Entry.orphaned`). */
  readonly #orphans = new Set<Entry>()
  #maxOpen: number
  #pinned = 0
  #hits = 0
  #misses = 0
  #evictions = 0

  /**
   * `open` opens a tenant's handle on a miss; `isCurrent` tells on a hit
   * whether the handle's file is still the tenant's file (another process may
   * have destroyed, renamed or replaced it): when not, the handle is dropped
   * and the tenant opened again.
   */
  constructor(
    maxOpen: number,
    open: (id: string) => SqliteHandle,
    isCurrent: (handle: SqliteHandle) => boolean,
    observers: PoolObservers,
  ) {
    this.#maxOpen = maxOpen
    this.#open = open
    this.#isCurrent = isCurrent
    this.#observers = observers
  }

  get size(): number {
    return this.#entries.size
  }

  /** Pins `id`'s handle, opening it on a miss. Synchronous: better-sqlite3 opens synchronously. */
  acquire(id: string): TenantLease {
    let entry = this.#entries.get(id)
    let opened = false
    if (entry !== undefined && !entry.handle.closed && !this.#isCurrent(entry.handle)) {
      // Never read or write a file that is no longer the tenant's: forget the handle (closing it
      // now, or when the scopes holding it end), then open whatever the tenant's path holds now.
      this.#forget(entry)
      entry = undefined
    }
    if (entry !== undefined && !entry.handle.closed) {
      this.#hits++
      this.#entries.delete(id)
      this.#entries.set(id, entry)
      if (entry.handle.attached.size > 0) {
        try {
          entry.handle.noticeOutsideSchemaChanges()
        } catch {
          // Locked by another process right now: the next verdict on this handle looks again.
        }
      }
    } else {
      // Opened before it is counted: a tenant whose file cannot be opened leaves the pool as it was.
      const observed = this.#observers.active
      const started = observed ? performance.now() : 0
      const handle = this.#open(id)
      if (observed) this.#observers.emit({ type: 'pool:open', tenantId: id, durationMs: performance.now() - started })
      this.#misses++
      entry = { id, handle, refs: 0, idle: [], orphaned: false }
      this.#entries.set(id, entry)
      opened = true
    }
    if (entry.refs++ === 0) this.#pinned++
    if (opened) this.#evictOverflow()
    return new Lease(this, entry, opened)
  }

  release(entry: Entry): void {
    if (--entry.refs > 0) return
    if (entry.idle.length > 0) {
      for (const wake of entry.idle.splice(0)) wake()
    }
    if (entry.orphaned) {
      entry.orphaned = false
      this.#orphans.delete(entry)
      this.#pinned--
      entry.handle.close()
      return
    }
    // closeAll() already closed and forgot this entry and reset the counter: a late release must not drive it below 0.
    if (this.#entries.get(entry.id) !== entry) return
    this.#pinned--
    // What the scopes left on the connection (temp tables, triggers, views) never reaches the next one.
    if (entry.handle.leftovers) this.#reset(entry)
    if (this.#entries.size > this.#maxOpen) this.#evictOverflow()
  }

  /** Closes one unpinned handle (the least recently used) to free file descriptors; false if every handle is pinned. */
  evictOne(): boolean {
    for (const entry of this.#entries.values()) {
      if (entry.refs === 0) {
        this.#evict(entry, 'descriptors')
        return true
      }
    }
    return false
  }

  /** Waits until nobody holds `id`, then closes and forgets its handle. */
  async closeWhenIdle(id: string): Promise<void> {
    const entry = this.#entries.get(id)
    if (entry === undefined) return
    while (entry.refs > 0) await new Promise<void>((resolve) => entry.idle.push(resolve))
    if (this.#entries.get(id) === entry) this.#close(entry)
  }

  /** The open handle of `id`, if any, without pinning it or counting a hit. */
  peek(id: string): SqliteHandle | undefined {
    return this.#entries.get(id)?.handle
  }

  /** The open handles (for checks such as "is this path a live database?"). */
  *handles(): IterableIterator<SqliteHandle> {
    for (const entry of this.#entries.values()) yield entry.handle
  }

  /** Lowers `maxOpen` (after the process ran out of file descriptors). */
  shrink(maxOpen: number): void {
    this.#maxOpen = Math.max(1, maxOpen)
  }

  get maxOpen(): number {
    return this.#maxOpen
  }

  stats(): PoolStats {
    return {
      open: this.#entries.size,
      pinned: this.#pinned,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    }
  }

  closeAll(): void {
    for (const entry of [...this.#entries.values()]) this.#close(entry)
    for (const entry of this.#orphans) {
      entry.orphaned = false
      entry.handle.close()
    }
    this.#orphans.clear()
    this.#pinned = 0
  }

  #evictOverflow(): void {
    if (this.#entries.size <= this.#maxOpen) return
    for (const entry of this.#entries.values()) {
      if (this.#entries.size <= this.#maxOpen) break
      if (entry.refs === 0) this.#evict(entry, 'lru')
    }
  }

  /** Resets a handle's leftovers, or closes it when they cannot be dropped (e.g. a kept stream still reads them). */
  #reset(entry: Entry): void {
    try {
      entry.handle.resetConnection()
    } catch {
      this.#close(entry)
    }
  }

  /** Drops an entry whose file is no longer the tenant's: closed now if nobody holds it, else at its last release. */
  #forget(entry: Entry): void {
    this.#entries.delete(entry.id)
    if (entry.refs === 0) {
      entry.handle.close()
    } else {
      entry.orphaned = true
      this.#orphans.add(entry)
    }
  }

  /** Closes an unpinned handle to make room, counted (and reported) as an eviction. */
  #evict(entry: Entry, reason: 'lru' | 'descriptors'): void {
    this.#evictions++
    if (!this.#observers.active) {
      this.#close(entry)
      return
    }
    const started = performance.now()
    this.#close(entry)
    this.#observers.emit({ type: 'pool:evict', tenantId: entry.id, reason, durationMs: performance.now() - started })
  }

  #close(entry: Entry): void {
    this.#entries.delete(entry.id)
    entry.handle.close()
  }
}

class Lease implements TenantLease {
  readonly handle: SqliteHandle
  readonly versionStampAtOpen: number | undefined
  readonly #pool: HandlePool
  readonly #entry: Entry
  #released = false

  constructor(pool: HandlePool, entry: Entry, opened: boolean) {
    this.#pool = pool
    this.#entry = entry
    this.handle = entry.handle
    this.versionStampAtOpen = opened ? entry.handle.versionStampAtOpen : undefined
  }

  release(): void {
    if (this.#released) return
    this.#released = true
    this.#pool.release(this.#entry)
  }
}
