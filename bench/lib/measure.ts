/**
 * A careful timing loop: every case is calibrated to a batch of about
 * `batchMs`, warmed up, then measured in `rounds` rounds. Within a round the
 * cases run one batch each, in an order that rotates from round to round, so
 * drift (thermal, other processes on the machine, GC) spreads over all cases
 * instead of favouring whichever ran first. Reported: the median time per
 * operation over the rounds, and the spread (fastest and slowest round).
 */
import { performance } from 'node:perf_hooks'

/** One benchmarked operation. `run(n)` performs it `n` times. */
export interface Case {
  readonly name: string
  readonly run: (n: number) => unknown | Promise<unknown>
}

export interface CompareOptions {
  /** Measured rounds (each runs one batch of every case). Default 15 (env BENCH_ROUNDS). */
  readonly rounds?: number
  /** Target duration of one batch, in milliseconds. Default 40. */
  readonly batchMs?: number
  /** Warm-up time per case before measuring, in milliseconds. Default 300. */
  readonly warmupMs?: number
  /** Upper bound on operations per batch (for slow setups). Default 1,000,000. */
  readonly maxOps?: number
  /** Lower bound on operations per batch. Default 1. */
  readonly minOps?: number
}

export interface Measurement {
  readonly name: string
  /** Median nanoseconds per operation over the rounds. */
  readonly median: number
  readonly min: number
  readonly max: number
  /** Operations per batch. */
  readonly ops: number
  readonly samples: readonly number[]
  /** Nanoseconds per operation of each round, in round order (for ratios paired round by round). */
  readonly rounds: readonly number[]
}

/** Wraps a synchronous operation into a {@link Case}. */
export function syncCase(name: string, op: (i: number) => unknown): Case {
  return {
    name,
    run(n) {
      for (let i = 0; i < n; i++) op(i)
    },
  }
}

/** Wraps an asynchronous operation (awaited one at a time) into a {@link Case}. */
export function asyncCase(name: string, op: (i: number) => Promise<unknown>): Case {
  return {
    name,
    async run(n) {
      for (let i = 0; i < n; i++) await op(i)
    },
  }
}

const maybeGc = (globalThis as { gc?: () => void }).gc

/**
 * A full collection, when node runs with --expose-gc (the runner passes it).
 * Used before reading memory figures, never between timing rounds: a forced
 * full GC shrinks V8's young generation, and the allocation-heavy async cases
 * then pay for many scavenges until it grows back (measured: +50% on
 * `withTenant` per call), which distorts the ratios.
 */
export function collectGarbage(): void {
  maybeGc?.()
}

async function timeBatch(c: Case, n: number): Promise<number> {
  const start = performance.now()
  const result = c.run(n)
  if (result instanceof Promise) await result
  return (performance.now() - start) * 1e6
}

/** Runs the cases interleaved and returns one {@link Measurement} per case, in the given order. */
export async function compare(cases: readonly Case[], options: CompareOptions = {}): Promise<Measurement[]> {
  const rounds = options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 15)
  const batchMs = options.batchMs ?? 40
  const warmupMs = options.warmupMs ?? 300
  const maxOps = options.maxOps ?? 1_000_000
  const minOps = options.minOps ?? 1

  // Calibrate and warm up each case.
  const ops: number[] = []
  for (const c of cases) {
    let n = minOps
    let elapsedMs = 0
    const deadline = performance.now() + warmupMs
    for (;;) {
      const ns = await timeBatch(c, n)
      elapsedMs = ns / 1e6
      if (performance.now() >= deadline && elapsedMs >= batchMs / 4) break
      if (n >= maxOps && performance.now() >= deadline) break
      if (elapsedMs < batchMs / 2 && n < maxOps) n = Math.min(maxOps, n * 2)
    }
    const perOp = (elapsedMs * 1e6) / n
    ops.push(Math.max(minOps, Math.min(maxOps, Math.round((batchMs * 1e6) / perOp))))
  }

  const samples: number[][] = cases.map(() => [])
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length
      const c = cases[i] as Case
      const n = ops[i] as number
      samples[i]?.push((await timeBatch(c, n)) / n)
    }
  }
  return cases.map((c, i) => {
    const s = [...(samples[i] as number[])].sort((a, b) => a - b)
    return {
      name: c.name,
      median: median(s),
      min: s[0] ?? 0,
      max: s[s.length - 1] ?? 0,
      ops: ops[i] ?? 0,
      samples: s,
      rounds: samples[i] as number[],
    }
  })
}

/**
 * The median over rounds of `m`'s time over `baseline`'s in the same round:
 * paired round by round, drift that hits both cases of a round (another
 * process taking the CPU for a while) cancels out.
 */
export function pairedRatio(m: Measurement, baseline: Measurement): number {
  return median(m.rounds.map((ns, r) => ns / (baseline.rounds[r] as number)))
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
