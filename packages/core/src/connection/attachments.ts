import { AttachLimitError, TenantScopeClosedError } from '../errors.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import { type HandleBinding, inScope, mustWait } from './handle-binding.js'
import { whenNoTransaction } from './handle-state.js'

/**
 * Attaches and detaches in progress on a handle whose adapter attaches
 * asynchronously: the contract promises one at a time per handle, so two
 * scopes needing apex at once never both attach it ("database apex is
 * already in use").
 */
const inProgress = new WeakMap<StorageHandle, Promise<void>>()

function track(handle: StorageHandle, work: Promise<void>): Promise<void> {
  inProgress.set(handle, work)
  const settled = (): void => {
    if (inProgress.get(handle) === work) inProgress.delete(handle)
  }
  work.then(settled, settled)
  return work
}

/**
 * Attaches the schemas a statement needs that the handle does not have yet
 * (the schema names were checked by the ATTACH compiler or `t.attach`).
 * Returns a promise only for an adapter that attaches asynchronously; its
 * attaches run one at a time per handle, each after checking again what is
 * attached.
 */
export function attachMissing(binding: HandleBinding, schemas: readonly string[]): void | Promise<void> {
  const { handle, maxAttached, label } = binding
  const pending = inProgress.get(handle)
  if (pending !== undefined) return pending.then(() => attachMissing(binding, schemas))
  let missing = 0
  for (const schema of schemas) if (!handle.attached.has(schema)) missing++
  if (missing === 0) return
  if (binding.refuseAttach !== null) binding.refuseAttach(schemas.find((s) => !handle.attached.has(s)) ?? '')
  if (handle.attached.size + missing > maxAttached) {
    throw new AttachLimitError(handle.attached.size + missing, maxAttached, label)
  }
  for (let i = 0; i < schemas.length; i++) {
    const schema = schemas[i] as string
    if (handle.attached.has(schema)) continue
    const attached = attachOne(binding, schema)
    if (attached instanceof Promise) {
      // Asynchronous adapter: the rest waits for this one, each checked again when its turn comes.
      const rest = schemas.slice(i + 1)
      return track(
        handle,
        attached.then(async () => {
          for (const next of rest) if (!handle.attached.has(next)) await attachOne(binding, next)
        }),
      )
    }
  }
}

/** One attach, reported as an `attach` event when someone listens. */
function attachOne(binding: HandleBinding, schema: string): void | Promise<void> {
  const { handle, locate } = binding
  if (binding.events === null || binding.events.emit === null) return handle.attach(schema, locate(schema))
  const started = performance.now()
  const report = (): void => {
    const emit = binding.events === null ? null : binding.events.emit
    if (emit !== null) {
      emit({
        type: 'attach',
        tenantId: binding.label,
        schema,
        durationMs: performance.now() - started,
        ...inScope(binding),
      })
    }
  }
  const attached = handle.attach(schema, locate(schema))
  if (attached instanceof Promise) return attached.then(report)
  report()
}

/**
 * Attaches a schema explicitly (`t.attach`, `x.attach`: for raw `sql`, which
 * the ATTACH compiler cannot read), once no other owner holds the handle (it
 * runs as the binding's owner, or as an owner of its own).
 */
export async function attachExplicitly(binding: HandleBinding, schema: string): Promise<void> {
  const owner = binding.owner ?? {}
  while (mustWait(binding, owner)) await whenNoTransaction(binding.state)
  if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
  await attachMissing(binding, [schema])
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
  // An attach in progress finishes first: the contract never overlaps them on one handle.
  await inProgress.get(handle)?.catch(() => undefined)
  for (const schema of [...handle.attached]) {
    try {
      await handle.detach(schema)
    } catch {
      // Still in use by a running statement: keep it (the old behaviour) rather than fail the transaction.
    }
  }
}
