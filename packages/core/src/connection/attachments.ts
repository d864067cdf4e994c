import { AttachLimitError } from '../errors.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import type { HandleBinding } from './handle-binding.js'

/**
 * Attaches the schemas a statement needs that the handle does not have yet
 * (the schema names were checked by the ATTACH compiler or `t.attach`).
 * Returns a promise only for an adapter that attaches asynchronously.
 */
export function attachMissing(binding: HandleBinding, schemas: readonly string[]): void | Promise<void> {
  const { handle, maxAttached, locate, label } = binding
  let missing = 0
  for (const schema of schemas) if (!handle.attached.has(schema)) missing++
  if (missing === 0) return
  if (handle.attached.size + missing > maxAttached) {
    throw new AttachLimitError(handle.attached.size + missing, maxAttached, label)
  }
  const pending: Promise<void>[] = []
  for (const schema of schemas) {
    if (handle.attached.has(schema)) continue
    const attached = handle.attach(schema, locate(schema))
    if (attached instanceof Promise) pending.push(attached)
  }
  if (pending.length > 0) return Promise.all(pending).then(() => undefined)
}

/**
 * `BEGIN IMMEDIATE` takes the write lock of every database attached at that
 * moment, not only main's: with apex attached, one tenant transaction would
 * block every apex writer and every other tenant's transaction that has apex
 * attached. No transaction is open here, so detaching is allowed; a statement
 * inside the transaction re-attaches what it reads (a scope's `t.attach`
 * schemas are re-attached before its next statement), and a database attached
 * after BEGIN is only read-locked.
 */
export async function detachBeforeImmediate(handle: StorageHandle): Promise<void> {
  for (const schema of [...handle.attached]) {
    try {
      await handle.detach(schema)
    } catch {
      // Still in use by a running statement: keep it (the old behaviour) rather than fail the transaction.
    }
  }
}
