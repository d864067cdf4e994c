import type { StorageHandle } from '../storage/storage-adapter.js'

/**
 * What core tracks per open handle: who holds its transaction, who waits for
 * it, and whether its schema version has been checked since it was opened.
 * Kept beside the handle (a WeakMap) so adapters need not know about it.
 */
export interface HandleState {
  /** The owner token of the open transaction, or null. */
  txOwner: object | null
  /** Nesting depth of savepoints inside an exclusive (migration) transaction. */
  savepoints: number
  /** Resolvers of those waiting for the transaction to end, first come first served. */
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
    state = { txOwner: null, savepoints: 0, waiters: [], ready: false, readying: null }
    states.set(handle, state)
  }
  return state
}

/**
 * Resolves when no transaction is open on the handle. The continuation runs in
 * the waiter's own async context: it awaits a promise, and promise reactions
 * keep the context of whoever awaited, not of whoever resolved.
 */
export function whenNoTransaction(state: HandleState): Promise<void> {
  return new Promise<void>((resolve) => state.waiters.push(resolve))
}

/** Ends the transaction and wakes every waiter; they re-check and queue again if they lose. */
export function endTransaction(state: HandleState): void {
  state.txOwner = null
  state.savepoints = 0
  const waiters = state.waiters.splice(0)
  for (const wake of waiters) wake()
}
