import type { StorageHandle } from '../storage/storage-adapter.js'

/**
 * What core tracks per open handle: who holds it exclusively, who waits for
 * it, and whether its schema version has been checked since it was opened.
 * Kept beside the handle (a WeakMap) so adapters need not know about it.
 */
export interface HandleState {
  /**
   * The token holding the handle exclusively, or null: the connection of an
   * open transaction, of a `connection()` callback, or a migration run. Only
   * statements carrying this token, or running in its async context, run
   * while it is set; everyone else waits.
   */
  txOwner: object | null
  /** Whether a transaction (BEGIN) is open on the handle. */
  inTransaction: boolean
  /** `connection()` callbacks holding the handle (the holder may begin and end transactions inside). */
  holds: number
  /** Nesting depth of Shardines' own savepoints inside an exclusive (migration) transaction. */
  savepoints: number
  /**
   * Schemas scopes attached explicitly (`t.attach`), with how many scopes hold
   * each: re-attached before a statement when something detached them.
   */
  readonly pinned: Map<string, number>
  /**
   * Set while one statement polls a lock another process holds on this
   * database: every other statement waits for it instead of each trying (and
   * each spending SQLite's native busy wait on the event loop). Resolves to
   * whether the lock was found free.
   */
  lockedOutside: Promise<boolean> | null
  /** Resolvers of those waiting for the handle to be free, first come first served. */
  readonly waiters: Array<() => void>
  /** True once the version check (lazy migration) passed for this open handle. */
  ready: boolean
  /** The check or lazy migration in progress, shared by concurrent first users. */
  readying: Promise<void> | null
}

const states = new WeakMap<StorageHandle, HandleState>()

export function stateOf(handle: StorageHandle): HandleState {
  let state = states.get(handle)
  if (state === undefined) {
    state = {
      txOwner: null,
      inTransaction: false,
      holds: 0,
      savepoints: 0,
      pinned: new Map(),
      lockedOutside: null,
      waiters: [],
      ready: false,
      readying: null,
    }
    states.set(handle, state)
  }
  return state
}

/**
 * Resolves when the handle is free. The continuation runs in the waiter's own
 * async context: it awaits a promise, and promise reactions keep the context
 * of whoever awaited, not of whoever resolved.
 */
export function whenNoTransaction(state: HandleState): Promise<void> {
  return new Promise<void>((resolve) => state.waiters.push(resolve))
}

/** Frees the handle and wakes every waiter; they re-check and queue again if they lose. */
export function endTransaction(state: HandleState): void {
  state.txOwner = null
  state.inTransaction = false
  state.holds = 0
  state.savepoints = 0
  const waiters = state.waiters.splice(0)
  for (const wake of waiters) wake()
}
