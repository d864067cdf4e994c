/** A seeded Zipf sampler: rank k (1-based) is drawn with probability ∝ 1 / k^s. */

// The seeded PRNG is the tests' (mulberry32), so benchmarks and tests draw alike.
export { seededRandom } from '../../test/helpers/async-helpers.js'

/**
 * Returns a function drawing indexes in `[0, n)` with Zipf(`s`) popularity
 * (index 0 the most popular). Precomputes the cumulative distribution once;
 * each draw is a binary search.
 */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 1; k <= n; k++) {
    sum += 1 / k ** s
    cdf[k - 1] = sum
  }
  for (let k = 0; k < n; k++) cdf[k] = (cdf[k] as number) / sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** A seeded Fisher–Yates shuffle (so popular ranks are not the alphabetically first tenants). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}
