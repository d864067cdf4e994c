import { AsyncResource } from 'node:async_hooks'
import { availableParallelism } from 'node:os'

/** One tenant's result from `mapTenants`; narrow on `ok`. */
export type MapTenantsResult<T> =
  | { readonly id: string; readonly ok: true; readonly value: T; readonly error?: undefined }
  | { readonly id: string; readonly ok: false; readonly error: unknown; readonly value?: undefined }

export interface MapTenantsOptions {
  /** How many tenants run at once (default: 4× the cores; scopes mostly wait on I/O). */
  concurrency?: number
  /** Stops starting new tenants once aborted; those not started are not reported. */
  signal?: AbortSignal
  /** Called after each tenant finishes. */
  onProgress?: (progress: { done: number; id: string; ok: boolean }) => void
}

/**
 * Runs `run(id)` for every id with bounded concurrency and collects a value or
 * an error per id, in id order. Never rejects because one id failed.
 */
export async function mapTenants<T>(
  ids: AsyncIterable<string> | Iterable<string>,
  run: (id: string) => Promise<T>,
  options: MapTenantsOptions = {},
): Promise<MapTenantsResult<T>[]> {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? availableParallelism() * 4))
  const results: MapTenantsResult<T>[] = []
  const iterator = (Symbol.asyncIterator in ids ? ids[Symbol.asyncIterator]() : toAsync(ids)) as AsyncIterator<string>
  let done = 0
  // The progress callback runs in the caller's context, not in whichever tenant scope finished.
  const progress = options.onProgress ? AsyncResource.bind(options.onProgress) : undefined
  let next = 0
  const worker = async (): Promise<void> => {
    for (;;) {
      if (options.signal?.aborted) return
      const item = await iterator.next()
      if (item.done) return
      const index = next++
      const id = item.value
      try {
        results[index] = { id, ok: true, value: await run(id) }
      } catch (error) {
        results[index] = { id, ok: false, error }
      }
      done++
      progress?.({ done, id, ok: results[index]?.ok === true })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return results.filter((r) => r !== undefined)
}

async function* toAsync(ids: Iterable<string>): AsyncIterator<string> {
  yield* ids
}
