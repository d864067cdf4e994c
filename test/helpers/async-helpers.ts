import { setTimeout as sleepFor } from 'node:timers/promises'

/** Resolves after `ms` milliseconds (a real timer, so the event loop turns). */
export function sleep(ms: number): Promise<void> {
  return sleepFor(ms)
}

/** A small seeded PRNG (mulberry32): tests that randomise stay reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * One random kind of asynchronous pause: a microtask, a macrotask, a timer of
 * 0–2 ms, or a chain of microtasks. Each hands control to other scopes in a
 * different way, which is what interleaving tests need.
 */
export async function randomPause(random: () => number): Promise<void> {
  const r = random()
  if (r < 0.25) await Promise.resolve()
  else if (r < 0.5) await new Promise<void>((resolve) => setImmediate(resolve))
  else if (r < 0.75) await sleep(Math.floor(random() * 3))
  else for (let i = 0; i < 5; i++) await null
}

/**
 * Runs `tasks` with at most `lanes` running at once; rejects with the first
 * failure after every started task has settled.
 */
export async function runInLanes<T>(count: number, lanes: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  let failure: { error: unknown } | undefined
  const lane = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const index = next++
      try {
        results[index] = await task(index)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(lanes, count) }, lane))
  if (failure !== undefined) throw failure.error
  return results
}

/**
 * Calls `call` and returns what it threw or rejected with (a synchronous throw
 * and a rejected promise count the same), or fails if it succeeded.
 */
export async function caught(call: () => unknown): Promise<unknown> {
  try {
    const value = call()
    if (value !== null && typeof value === 'object' && Symbol.asyncIterator in value) {
      for await (const _ of value as AsyncIterable<unknown>) {
        // drain: an async iterable may throw on first next()
      }
    } else {
      await value
    }
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw or reject, but it succeeded')
}

/**
 * A promise and the function that resolves it, for tests that hold one scope
 * at a known point while another acts (`await held` in one, `release()` in the other).
 */
export function latch(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
