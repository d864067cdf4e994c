import type { StoragePoolEvent } from '@shardines/core'

/**
 * Who observes the pool (`StorageAdapter.observePool`): core, while someone
 * listens to `shard.on`. {@link active} is checked before a clock is read or
 * an event built, so an unobserved pool pays one property read per open,
 * eviction or retry, and nothing per hit.
 */
export class PoolObservers {
  /** True while at least one observer is subscribed. */
  active = false
  #listeners: ReadonlyArray<(event: StoragePoolEvent) => void> = []

  add(listener: (event: StoragePoolEvent) => void): () => void {
    this.#listeners = [...this.#listeners, listener]
    this.active = true
    let added = true
    return () => {
      if (!added) return
      added = false
      this.#listeners = this.#listeners.filter((l) => l !== listener)
      this.active = this.#listeners.length > 0
    }
  }

  emit(event: StoragePoolEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch {
        // An observer's failure is its own (core's never throws): the pool goes on.
      }
    }
  }
}
