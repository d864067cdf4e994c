/**
 * Placement across machines, simulated (issue 16, item 5). The figures and their reading:
 * docs/scale-out.md.
 *
 *   node --import tsx bench/scale-out.sim.ts [--tenants 1000000] [--nodes 4,8,16,32] [--seed 1]
 *
 * Not a benchmark of Shardines: a model of a fleet, run by hand (`pnpm bench` does not pick it
 * up: its name does not end in `.bench.ts`). Tenants get a size from a log-normal distribution
 * and a request rate from Zipf(1.1) over a seeded random order of the tenants (size and
 * popularity independent). They are placed on N nodes by
 *   (a) consistent hashing: a ring of `--vnodes` points per node, FNV-1a of the tenant id;
 *   (b) a directory filled greedily: tenants in decreasing order of (load share + bytes share),
 *       each to the node whose largest share (load, bytes, files) stays smallest after it.
 * Per node: tenants (files), bytes, requests/s, peak-to-mean skew of load, the hottest tenant's
 * share of its node; the hit ratio of an LRU of `maxOpen` handles when a sample of `--requests`
 * Zipf requests is replayed against each node's own LRU (Mattson's stack distances: one pass
 * gives the hit ratio of every pool size), checked against Che's approximation of the steady
 * state, which also gives the handles a 90/95/99 % hit ratio needs (beyond what a sample with
 * its first sightings can show); the fleet request rate at which the busiest node's cores are
 * 70 % busy, from the measured hit and miss costs of bench/pool-churn.bench.ts; the wall time
 * of `migrate.all` per release, per node, for a schema-only migration (a cost per tenant) and
 * an indexing one (plus a cost per MiB); and what moves when a node is added.
 *
 * Options (defaults below, in DEFAULTS): --tenants --nodes --seed --requests --max-open (list)
 * --vnodes --zipf --size-median-kib --size-sigma --rps (fleet-wide requests/s) --hit-us
 * --miss-us --cores --efficiency (parallel efficiency of migrate.all's workers)
 * --migrate-ms-per-tenant --migrate-ms-per-mib --warmup (fraction of each node's stream replayed
 * before counting) --detail (the node count whose per-node table is printed) --measure (time a
 * three-statement migration with plain better-sqlite3 on temp files first, and use it).
 *
 * Deterministic for a seed (mulberry32). About 15–30 s for 1,000,000 tenants on 2 cores.
 */
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { printTable } from './lib/table.js'

/**
 * Defaults. Costs come from our published measurements (2-core VM, Node 20):
 * - hit 20.6 µs / miss 95.9 µs: `withTenant` + a point select, all handles open vs every request
 *   a pool miss, journal `delete` (docs/benchmarks.md, pool-churn);
 * - 1.16 ms per tenant per worker: `migrate.all` with a three-statement migration on one worker
 *   thread, 859 tenants/s; two workers on two cores gave 1.5× one (efficiency 0.75)
 *   (docs/migrations.md, migrate-all). Files there were small (20 rows);
 * - 10 ms per MiB: the per-MiB term of a migration that builds an index, rounded down from this
 *   script's `--measure` (11–15 ms/MiB on an 8.5 MiB file, 2-core VM at load 5–7: pessimistic).
 *   A migration that only adds columns and tables costs nothing per byte in SQLite.
 */
const DEFAULTS = {
  tenants: 1_000_000,
  nodes: '4,8,16,32',
  seed: 1,
  requests: 2_000_000,
  maxOpen: '256,1024,4096',
  vnodes: 128,
  zipf: 1.1,
  sizeMedianKib: 256,
  sizeSigma: 1.5,
  rps: 50_000,
  hitUs: 20.6,
  missUs: 95.9,
  cores: 2,
  efficiency: 0.75,
  migrateMsPerTenant: 1.16,
  migrateMsPerMib: 10,
  warmup: 0.25,
} as const

const MIB = 1024 * 1024
const GIB = 1024 * MIB
/** Stack distance of a request whose tenant was not seen before in the sample: a miss at any pool size. */
const COLD = 0x7fffffff
/** The smallest tenant file: a few pages. */
const MIN_BYTES = 16 * 1024

// ---------------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
  options: {
    tenants: { type: 'string' },
    nodes: { type: 'string' },
    seed: { type: 'string' },
    requests: { type: 'string' },
    'max-open': { type: 'string' },
    vnodes: { type: 'string' },
    zipf: { type: 'string' },
    'size-median-kib': { type: 'string' },
    'size-sigma': { type: 'string' },
    rps: { type: 'string' },
    'hit-us': { type: 'string' },
    'miss-us': { type: 'string' },
    cores: { type: 'string' },
    efficiency: { type: 'string' },
    'migrate-ms-per-tenant': { type: 'string' },
    'migrate-ms-per-mib': { type: 'string' },
    warmup: { type: 'string' },
    detail: { type: 'string' },
    measure: { type: 'boolean' },
    help: { type: 'boolean' },
  },
  strict: true,
})

if (argv.help === true) {
  console.log(
    'node --import tsx bench/scale-out.sim.ts [--tenants N] [--nodes 4,8,16,32] [--seed N] [--requests N]\n' +
      '  [--max-open 256,1024,4096] [--vnodes N] [--zipf S] [--size-median-kib K] [--size-sigma S] [--rps R]\n' +
      '  [--hit-us U] [--miss-us U] [--cores C] [--efficiency E] [--migrate-ms-per-tenant M] [--migrate-ms-per-mib M]\n' +
      '  [--warmup F] [--detail N] [--measure]',
  )
  process.exit(0)
}

function num(name: string, raw: string | undefined, fallback: number, check: (n: number) => boolean): number {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || !check(n)) throw new Error(`--${name}: invalid value ${JSON.stringify(raw)}`)
  return n
}
function list(name: string, raw: string | undefined, fallback: string): number[] {
  const out = (raw ?? fallback).split(',').map((s) => Number(s.trim()))
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error(`--${name}: expected positive integers separated by commas, got ${JSON.stringify(raw)}`)
  }
  return out
}
const positive = (n: number) => n > 0
const positiveInt = (n: number) => Number.isInteger(n) && n > 0

const TENANTS = num('tenants', argv.tenants, DEFAULTS.tenants, positiveInt)
const NODE_COUNTS = list('nodes', argv.nodes, DEFAULTS.nodes)
const SEED = num('seed', argv.seed, DEFAULTS.seed, Number.isInteger)
const REQUESTS = num('requests', argv.requests, DEFAULTS.requests, positiveInt)
const MAX_OPEN = list('max-open', argv['max-open'], DEFAULTS.maxOpen)
const VNODES = num('vnodes', argv.vnodes, DEFAULTS.vnodes, positiveInt)
const ZIPF = num('zipf', argv.zipf, DEFAULTS.zipf, positive)
const SIZE_MEDIAN = num('size-median-kib', argv['size-median-kib'], DEFAULTS.sizeMedianKib, positive) * 1024
const SIZE_SIGMA = num('size-sigma', argv['size-sigma'], DEFAULTS.sizeSigma, (n) => n >= 0)
const RPS = num('rps', argv.rps, DEFAULTS.rps, positive)
const HIT_US = num('hit-us', argv['hit-us'], DEFAULTS.hitUs, positive)
const MISS_US = num('miss-us', argv['miss-us'], DEFAULTS.missUs, positive)
const CORES = num('cores', argv.cores, DEFAULTS.cores, positiveInt)
const EFFICIENCY = num('efficiency', argv.efficiency, DEFAULTS.efficiency, (n) => n > 0 && n <= 1)
const WARMUP = num('warmup', argv.warmup, DEFAULTS.warmup, (n) => n >= 0 && n < 1)
const DETAIL = num('detail', argv.detail, NODE_COUNTS.includes(8) ? 8 : (NODE_COUNTS[0] as number), (n) =>
  NODE_COUNTS.includes(n),
)

// ---------------------------------------------------------------------------------------------
// Seeded randomness and hashing

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** FNV-1a (32 bits) of a string, then murmur3's finalizer so nearby ids spread over the ring. */
function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const tenantId = (i: number) => `t${i}`

// ---------------------------------------------------------------------------------------------
// Optional: measure a migration with plain better-sqlite3

interface Measured {
  msPerTenant: number
  msPerMib: number
}

function measureMigration(): Measured {
  // loaded only here, so the simulation itself runs without the native module
  const Database: typeof import('better-sqlite3') = createRequire(import.meta.url)('better-sqlite3')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardines-scale-out-'))
  try {
    const build = (file: string, rows: number, titleLength: number) => {
      const db = new Database(file)
      db.exec(
        "create table documents (id integer primary key, title text not null, status text not null default 'open')",
      )
      const insert = db.prepare('insert into documents (title, status) values (?, ?)')
      db.transaction(() => {
        for (let i = 0; i < rows; i++) insert.run(`${i} `.padEnd(titleLength, 'x'), i % 3 === 0 ? 'done' : 'open')
      })()
      db.pragma('user_version = 1')
      db.close()
    }
    /** Opens, migrates in one transaction (3 statements + the version stamp), closes: ms per file. */
    const migrate = (files: readonly string[]) => {
      const start = performance.now()
      for (const file of files) {
        const db = new Database(file)
        db.exec('begin immediate')
        db.exec('alter table documents add column slug text')
        db.exec('create index documents_status on documents (status)')
        db.exec('create table tags (id integer primary key, name text)')
        db.pragma('user_version = 2')
        db.exec('commit')
        db.close()
      }
      return (performance.now() - start) / files.length
    }
    const copies = (template: string, count: number) =>
      Array.from({ length: count }, (_, i) => {
        const file = path.join(dir, `${path.basename(template, '.sqlite3')}-${i}.sqlite3`)
        fs.copyFileSync(template, file)
        return file
      })
    const small = path.join(dir, 'small.sqlite3')
    build(small, 20, 40)
    const big = path.join(dir, 'big.sqlite3')
    build(big, 40_000, 200)
    const bigMib = fs.statSync(big).size / MIB
    const smallMs = migrate(copies(small, 300))
    const bigMs = migrate(copies(big, 8))
    const msPerMib = Math.max(0, (bigMs - smallMs) / bigMib)
    console.log(
      `measured (plain better-sqlite3, journal delete, synchronous FULL): small file ${smallMs.toFixed(2)} ms, ` +
        `${bigMib.toFixed(1)} MiB file ${bigMs.toFixed(1)} ms → ${smallMs.toFixed(2)} ms + ${msPerMib.toFixed(2)} ms/MiB per tenant`,
    )
    return { msPerTenant: smallMs, msPerMib }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// The fleet

interface Fleet {
  bytes: Float64Array
  /** Requests per second of each tenant at `RPS` fleet-wide. */
  load: Float64Array
  /** Ring position of each tenant id. */
  position: Uint32Array
  totalBytes: number
  /** Tenant index of each Zipf rank (rank 0 the most popular). */
  byRank: Int32Array
  /** The request sample: tenant indexes. */
  stream: Int32Array
}

function buildFleet(random: () => number): Fleet {
  const bytes = new Float64Array(TENANTS)
  let totalBytes = 0
  const mu = Math.log(SIZE_MEDIAN)
  for (let i = 0; i < TENANTS; i++) {
    // Box–Muller; 1 - random() keeps the log away from 0
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
    const b = Math.max(MIN_BYTES, Math.round(Math.exp(mu + SIZE_SIGMA * z)))
    bytes[i] = b
    totalBytes += b
  }
  const byRank = new Int32Array(TENANTS)
  for (let i = 0; i < TENANTS; i++) byRank[i] = i
  for (let i = TENANTS - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = byRank[i] as number
    byRank[i] = byRank[j] as number
    byRank[j] = t
  }
  const cdf = new Float64Array(TENANTS)
  let sum = 0
  for (let k = 0; k < TENANTS; k++) {
    sum += 1 / (k + 1) ** ZIPF
    cdf[k] = sum
  }
  const load = new Float64Array(TENANTS)
  for (let k = 0; k < TENANTS; k++) {
    load[byRank[k] as number] = (RPS * (1 / (k + 1) ** ZIPF)) / sum
    cdf[k] = (cdf[k] as number) / sum
  }
  const stream = new Int32Array(REQUESTS)
  for (let r = 0; r < REQUESTS; r++) {
    const u = random()
    let lo = 0
    let hi = TENANTS - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) < u) lo = mid + 1
      else hi = mid
    }
    stream[r] = byRank[lo] as number
  }
  const position = new Uint32Array(TENANTS)
  for (let i = 0; i < TENANTS; i++) position[i] = hash32(tenantId(i))
  return { bytes, load, position, totalBytes, byRank, stream }
}

// ---------------------------------------------------------------------------------------------
// Placement

/** Consistent hashing: `VNODES` points per node named `node-<j>#<v>`; a tenant goes to the first point at or after its hash. */
function placeByRing(fleet: Fleet, nodes: number): Int32Array {
  const points: { at: number; node: number }[] = []
  for (let j = 0; j < nodes; j++) {
    for (let v = 0; v < VNODES; v++) points.push({ at: hash32(`node-${j}#${v}`), node: j })
  }
  points.sort((a, b) => a.at - b.at || a.node - b.node)
  const at = Uint32Array.from(points, (p) => p.at)
  const owner = Int32Array.from(points, (p) => p.node)
  const out = new Int32Array(TENANTS)
  for (let i = 0; i < TENANTS; i++) {
    const h = fleet.position[i] as number
    let lo = 0
    let hi = at.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((at[mid] as number) < h) lo = mid + 1
      else hi = mid
    }
    out[i] = owner[lo === at.length ? 0 : lo] as number
  }
  return out
}

/**
 * A directory filled greedily (least loaded first): tenants in decreasing order of
 * load share + bytes share, each to the node whose largest share (load, bytes, files) is
 * smallest after adding it. Needs each tenant's load, i.e. a directory that re-places tenants
 * from measured traffic (at sign-up the load is unknown: new tenants go to the emptiest node).
 */
function placeByDirectory(fleet: Fleet, nodes: number): Int32Array {
  const totalLoad = RPS
  const key = new Float64Array(TENANTS)
  for (let i = 0; i < TENANTS; i++) {
    key[i] = (fleet.load[i] as number) / totalLoad + (fleet.bytes[i] as number) / fleet.totalBytes
  }
  const order = new Int32Array(TENANTS)
  for (let i = 0; i < TENANTS; i++) order[i] = i
  order.sort((a, b) => (key[b] as number) - (key[a] as number) || a - b)
  const l = new Float64Array(nodes)
  const b = new Float64Array(nodes)
  const c = new Float64Array(nodes)
  const out = new Int32Array(TENANTS)
  for (const i of order) {
    const dl = (fleet.load[i] as number) / totalLoad
    const db = (fleet.bytes[i] as number) / fleet.totalBytes
    const dc = 1 / TENANTS
    let best = 0
    let bestScore = Number.POSITIVE_INFINITY
    for (let j = 0; j < nodes; j++) {
      const score = Math.max((l[j] as number) + dl, (b[j] as number) + db, (c[j] as number) + dc)
      if (score < bestScore) {
        bestScore = score
        best = j
      }
    }
    out[i] = best
    l[best] = (l[best] as number) + dl
    b[best] = (b[best] as number) + db
    c[best] = (c[best] as number) + dc
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Per node: balance, LRU replay, capacity, migration

interface NodeStats {
  tenants: number
  bytes: number
  rps: number
  hottest: number
  /** The largest tenant (a migration of one tenant is one transaction: no worker splits it). */
  largest: number
  /** Sorted stack distances of the counted requests (COLD for first sightings). */
  distances: Int32Array
  /** The node's request probabilities in log-spaced bins, for Che's approximation. */
  bins: RateBins
}

interface RateBins {
  /** Tenants in each non-empty bin. */
  count: Float64Array
  /** Their mean probability of being the node's next request. */
  rate: Float64Array
}

function nodeStats(fleet: Fleet, owner: Int32Array, nodes: number): NodeStats[] {
  const stats: NodeStats[] = Array.from({ length: nodes }, () => ({
    tenants: 0,
    bytes: 0,
    rps: 0,
    hottest: 0,
    largest: 0,
    distances: new Int32Array(0),
    bins: { count: new Float64Array(0), rate: new Float64Array(0) },
  }))
  for (let i = 0; i < TENANTS; i++) {
    const s = stats[owner[i] as number] as NodeStats
    const bytes = fleet.bytes[i] as number
    const load = fleet.load[i] as number
    s.tenants++
    s.bytes += bytes
    s.rps += load
    if (load > s.hottest) s.hottest = load
    if (bytes > s.largest) s.largest = bytes
  }
  binRates(fleet, owner, stats)
  replay(fleet.stream, owner, stats)
  return stats
}

/** 100 bins per decade of probability (2.3 % wide), down to 1e-16: Che's sums over bins instead of tenants. */
const BINS_PER_DECADE = 100
const BINS = 16 * BINS_PER_DECADE

function binRates(fleet: Fleet, owner: Int32Array, stats: NodeStats[]): void {
  const nodes = stats.length
  const count = new Float64Array(nodes * BINS)
  const sum = new Float64Array(nodes * BINS)
  for (let i = 0; i < TENANTS; i++) {
    const n = owner[i] as number
    const p = (fleet.load[i] as number) / (stats[n] as NodeStats).rps
    const bin = Math.min(BINS - 1, Math.max(0, Math.floor(-Math.log10(p) * BINS_PER_DECADE)))
    count[n * BINS + bin] = (count[n * BINS + bin] as number) + 1
    sum[n * BINS + bin] = (sum[n * BINS + bin] as number) + p
  }
  for (let n = 0; n < nodes; n++) {
    const c: number[] = []
    const r: number[] = []
    for (let k = 0; k < BINS; k++) {
      const m = count[n * BINS + k] as number
      if (m > 0) {
        c.push(m)
        r.push((sum[n * BINS + k] as number) / m)
      }
    }
    ;(stats[n] as NodeStats).bins = { count: Float64Array.from(c), rate: Float64Array.from(r) }
  }
}

/**
 * Mattson's stack distances per node: for each request, the number of distinct other tenants
 * of the same node requested since this tenant's previous request (a Fenwick tree over the
 * node's request times marks each tenant's latest one). An LRU of C handles hits exactly the
 * requests whose distance is below C. The first `WARMUP` of each node's stream only warms.
 */
function replay(stream: Int32Array, owner: Int32Array, stats: NodeStats[]): void {
  const nodes = stats.length
  const count = new Int32Array(nodes)
  for (const x of stream) count[owner[x] as number]++
  const trees = Array.from({ length: nodes }, (_, n) => new Int32Array((count[n] as number) + 1))
  const warm = Int32Array.from(count, (c) => Math.floor(c * WARMUP))
  const distances = Array.from({ length: nodes }, (_, n) => new Int32Array((count[n] as number) - (warm[n] as number)))
  const clock = new Int32Array(nodes)
  const last = new Int32Array(TENANTS).fill(-1)
  for (const x of stream) {
    const n = owner[x] as number
    const tree = trees[n] as Int32Array
    const size = tree.length - 1
    const t = clock[n] as number
    clock[n] = t + 1
    const p = last[x] as number
    let d = COLD
    if (p >= 0) {
      // tree position k holds time k-1; the markers strictly between times p and t: prefix(t) - prefix(p+1)
      let s = 0
      for (let k = t; k > 0; k -= k & -k) s += tree[k] as number
      for (let k = p + 1; k > 0; k -= k & -k) s -= tree[k] as number
      d = s
      for (let k = p + 1; k <= size; k += k & -k) tree[k] = (tree[k] as number) - 1
    }
    for (let k = t + 1; k <= size; k += k & -k) tree[k] = (tree[k] as number) + 1
    last[x] = t
    const w = warm[n] as number
    if (t >= w) (distances[n] as Int32Array)[t - w] = d
  }
  for (let n = 0; n < nodes; n++) {
    const d = distances[n] as Int32Array
    d.sort()
    ;(stats[n] as NodeStats).distances = d
  }
}

/** Requests with a stack distance below `handles`: hits of an LRU that size. */
function hits(distances: Int32Array, handles: number): number {
  let lo = 0
  let hi = distances.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if ((distances[mid] as number) < handles) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The replayed sample's hit ratio at a pool of `handles`. */
function hitRatio(stats: NodeStats, handles: number): number {
  return stats.distances.length === 0 ? 1 : hits(stats.distances, handles) / stats.distances.length
}

/**
 * Che's approximation of an LRU in steady state under independent requests: a tenant stays
 * cached if it is requested again within the characteristic time T, where the expected number
 * of distinct tenants requested within T equals the pool size. Returns the (hit ratio, handles)
 * pair at time T (in requests to the node).
 */
function che(bins: RateBins, time: number): { hit: number; handles: number } {
  let hit = 0
  let handles = 0
  for (let k = 0; k < bins.count.length; k++) {
    const r = bins.rate[k] as number
    const c = bins.count[k] as number
    const inCache = 1 - Math.exp(-r * time)
    hit += c * r * inCache
    handles += c * inCache
  }
  return { hit, handles }
}

/** Bisection on log T until `pick(che(T))` reaches `goal` (both increase with T). */
function cheSolve(bins: RateBins, goal: number, pick: (v: { hit: number; handles: number }) => number) {
  let lo = -5
  let hi = 40
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (pick(che(bins, Math.exp(mid))) < goal) lo = mid
    else hi = mid
  }
  return che(bins, Math.exp(hi))
}

/** Handles an LRU needs for a hit ratio of `target` on this node (steady state, Che). */
function cheHandles(stats: NodeStats, target: number): number {
  return Math.ceil(cheSolve(stats.bins, target, (v) => v.hit).handles)
}

/** Steady-state hit ratio of an LRU of `handles` on this node (Che). */
function cheHit(stats: NodeStats, handles: number): number {
  if (handles >= stats.tenants) return 1
  return cheSolve(stats.bins, handles, (v) => v.handles).hit
}

/** Mean µs per request on this node at a pool of `handles` (replayed hit ratio, measured hit and miss costs). */
function requestUs(stats: NodeStats, handles: number): number {
  const h = hitRatio(stats, handles)
  return h * HIT_US + (1 - h) * MISS_US
}

/** Fleet-wide requests/s at which the busiest node (in core time) reaches `BUSY` of its cores. */
function capacity(stats: NodeStats[], handles: number): number {
  return minOf(stats.map((s) => (BUSY * CORES * 1e6) / ((s.rps / RPS) * requestUs(s, handles))))
}
const BUSY = 0.7

/** `migrate.all` on one node, seconds: its workers (one per core) share the work, but one tenant is one transaction. */
function migrateWallSeconds(stats: NodeStats, migration: Measured): number {
  const work = stats.tenants * migration.msPerTenant + (stats.bytes / MIB) * migration.msPerMib
  const longest = migration.msPerTenant + (stats.largest / MIB) * migration.msPerMib
  return Math.max(work / (CORES * EFFICIENCY), longest) / 1000
}

// ---------------------------------------------------------------------------------------------
// Adding a node

interface Moves {
  tenants: number
  bytes: number
  load: number
}

/** Consistent hashing: whatever the new node's points take from its successors. */
function ringMoves(fleet: Fleet, before: Int32Array, after: Int32Array): Moves {
  const m: Moves = { tenants: 0, bytes: 0, load: 0 }
  for (let i = 0; i < TENANTS; i++) {
    if (before[i] !== after[i]) {
      m.tenants++
      m.bytes += fleet.bytes[i] as number
      m.load += fleet.load[i] as number
    }
  }
  return m
}

/**
 * A directory: the new node takes from each old node at most that node's 1/(N+1) of load and
 * of bytes (what it would give to reach its new fair share), up to the new mean of each. First
 * load: the busiest tenants that fit, hottest first (a tenant hotter than its node's give, like
 * the hottest of all, stays); then bytes: the largest files that fit, so few files carry them
 * (their load is counted, not limited: a large tenant is rarely a busy one here).
 * `byLoad` and `bySize` are the tenants in decreasing load and size.
 */
function directoryMoves(fleet: Fleet, owner: Int32Array, nodes: number, byLoad: Int32Array, bySize: Int32Array): Moves {
  const giveBytes = new Float64Array(nodes)
  const giveLoad = new Float64Array(nodes)
  for (let i = 0; i < TENANTS; i++) {
    const n = owner[i] as number
    giveBytes[n] = (giveBytes[n] as number) + (fleet.bytes[i] as number) / (nodes + 1)
    giveLoad[n] = (giveLoad[n] as number) + (fleet.load[i] as number) / (nodes + 1)
  }
  const targetBytes = fleet.totalBytes / (nodes + 1)
  const targetLoad = RPS / (nodes + 1)
  const moved = new Uint8Array(TENANTS)
  const m: Moves = { tenants: 0, bytes: 0, load: 0 }
  const move = (i: number) => {
    const n = owner[i] as number
    giveBytes[n] = (giveBytes[n] as number) - (fleet.bytes[i] as number)
    giveLoad[n] = (giveLoad[n] as number) - (fleet.load[i] as number)
    moved[i] = 1
    m.tenants++
    m.bytes += fleet.bytes[i] as number
    m.load += fleet.load[i] as number
  }
  for (const i of byLoad) {
    if (m.load >= 0.98 * targetLoad) break
    const n = owner[i] as number
    const b = fleet.bytes[i] as number
    const l = fleet.load[i] as number
    if (l > (giveLoad[n] as number) || l + m.load > targetLoad) continue
    if (b > (giveBytes[n] as number) || b + m.bytes > targetBytes) continue
    move(i)
  }
  for (const i of bySize) {
    if (m.bytes >= 0.98 * targetBytes) break
    const b = fleet.bytes[i] as number
    if (moved[i] === 1 || b > (giveBytes[owner[i] as number] as number) || b + m.bytes > targetBytes) continue
    move(i)
  }
  return m
}

// ---------------------------------------------------------------------------------------------
// Output helpers

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const x = (n: number) => `${n.toFixed(2)}×`
const pct = (n: number) => `${(100 * n).toFixed(1)}%`
const gib = (n: number) => `${(n / GIB).toFixed(1)}`
const secs = (s: number) =>
  s >= 120 ? `${(s / 60).toFixed(1)} min` : s >= 10 ? `${s.toFixed(0)} s` : `${s.toFixed(1)} s`
const kilo = (n: number) => `${(n / 1000).toFixed(0)}k`
const maxOf = (values: number[]) => values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY)
const minOf = (values: number[]) => values.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY)
const sumOf = (values: number[]) => values.reduce((a, b) => a + b, 0)

// ---------------------------------------------------------------------------------------------
// Run

const started = performance.now()
let migration: Measured = {
  msPerTenant: num('migrate-ms-per-tenant', argv['migrate-ms-per-tenant'], DEFAULTS.migrateMsPerTenant, positive),
  msPerMib: num('migrate-ms-per-mib', argv['migrate-ms-per-mib'], DEFAULTS.migrateMsPerMib, (n) => n >= 0),
}
if (argv.measure === true) {
  const measured = measureMigration()
  migration = {
    msPerTenant: argv['migrate-ms-per-tenant'] === undefined ? measured.msPerTenant : migration.msPerTenant,
    msPerMib: argv['migrate-ms-per-mib'] === undefined ? measured.msPerMib : migration.msPerMib,
  }
}
/** The same release with a schema-only migration (adds a column and a table: no cost per byte). */
const schemaOnly: Measured = { msPerTenant: migration.msPerTenant, msPerMib: 0 }

const fleet = buildFleet(mulberry32(SEED))
const sortedBytes = Float64Array.from(fleet.bytes).sort()
const quantile = (q: number) => sortedBytes[Math.min(TENANTS - 1, Math.floor(q * TENANTS))] as number
const topShare = (k: number) => {
  let s = 0
  for (let r = 0; r < Math.min(k, TENANTS); r++) s += fleet.load[fleet.byRank[r] as number] as number
  return s / RPS
}
const seen = new Uint8Array(TENANTS)
let distinct = 0
for (const t of fleet.stream) {
  if (seen[t] === 0) {
    seen[t] = 1
    distinct++
  }
}
const bySize = new Int32Array(TENANTS)
for (let i = 0; i < TENANTS; i++) bySize[i] = i
bySize.sort((a, b) => (fleet.bytes[b] as number) - (fleet.bytes[a] as number) || a - b)

console.log(
  `scale-out simulation: ${int(TENANTS)} tenants, nodes ${NODE_COUNTS.join(',')}, seed ${SEED}, Zipf(${ZIPF}) popularity, ` +
    `sizes log-normal (median ${int(SIZE_MEDIAN / 1024)} KiB, σ ${SIZE_SIGMA}), ${int(REQUESTS)} requests replayed ` +
    `(the first ${pct(WARMUP)} of each node's stream warms its LRU), ${VNODES} virtual nodes per node, ` +
    `${int(RPS)} requests/s fleet-wide`,
)
console.log(
  `costs: a request ${HIT_US} µs on a pool hit, ${MISS_US} µs on a miss; migration ${migration.msPerTenant.toFixed(2)} ms per tenant ` +
    `+ ${migration.msPerMib.toFixed(2)} ms per MiB (indexing) or + 0 (schema only), per worker; ${CORES} cores per node, ` +
    `one worker per core at parallel efficiency ${EFFICIENCY}`,
)
console.log(
  `fleet: ${gib(fleet.totalBytes)} GiB; tenant size p50 ${int(quantile(0.5) / 1024)} KiB, p99 ${(quantile(0.99) / MIB).toFixed(1)} MiB, ` +
    `max ${(quantile(1) / MIB).toFixed(0)} MiB; hottest tenant ${pct(topShare(1))} of requests, top 10 ${pct(topShare(10))}, ` +
    `top 1,000 ${pct(topShare(1000))}; ${int(distinct)} distinct tenants in the request sample`,
)

interface Run {
  nodes: number
  placement: 'hash' | 'directory'
  owner: Int32Array
  stats: NodeStats[]
}
const runs: Run[] = []
for (const nodes of NODE_COUNTS) {
  for (const placement of ['hash', 'directory'] as const) {
    const owner = placement === 'hash' ? placeByRing(fleet, nodes) : placeByDirectory(fleet, nodes)
    runs.push({ nodes, placement, owner, stats: nodeStats(fleet, owner, nodes) })
  }
}

printTable(
  'Balance (max/mean over the nodes; load = requests/s; "2nd" = the second busiest node; "bound" = the hottest tenant alone / mean)',
  [
    'nodes',
    'placement',
    'tenants/node',
    'max/mean',
    'GiB/node',
    'max/mean',
    'req/s/node',
    'peak/mean',
    '2nd/mean',
    'bound',
    'hottest/its node',
  ],
  runs.map((r) => {
    const mean = (f: (s: NodeStats) => number) => sumOf(r.stats.map(f)) / r.nodes
    const byLoad = [...r.stats].sort((a, b) => b.rps - a.rps)
    const peak = byLoad[0] as NodeStats
    return [
      r.nodes,
      r.placement,
      int(mean((s) => s.tenants)),
      x(maxOf(r.stats.map((s) => s.tenants)) / mean((s) => s.tenants)),
      gib(mean((s) => s.bytes)),
      x(maxOf(r.stats.map((s) => s.bytes)) / mean((s) => s.bytes)),
      int(mean((s) => s.rps)),
      x(peak.rps / mean((s) => s.rps)),
      x((byLoad[1] ?? peak).rps / mean((s) => s.rps)),
      x(Math.max(1, topShare(1) * r.nodes)),
      pct(peak.hottest / peak.rps),
    ]
  }),
)

let cheGap = 0
printTable(
  'Handle pool: hit ratio of an LRU of maxOpen handles per node (replayed sample; "fleet" = all requests, "worst" = the worst node) ' +
    'and the handles the neediest node needs for a 90/95/99 % hit ratio (steady state, Che)',
  ['nodes', 'placement', ...MAX_OPEN.flatMap((m) => [`hit@${m} fleet`, 'worst']), 'handles 90%', '95%', '99%'],
  runs.map((r) => {
    const total = sumOf(r.stats.map((s) => s.distances.length))
    for (const s of r.stats) {
      for (const m of MAX_OPEN) cheGap = Math.max(cheGap, Math.abs(cheHit(s, m) - hitRatio(s, m)))
    }
    return [
      r.nodes,
      r.placement,
      ...MAX_OPEN.flatMap((m) => [
        pct(sumOf(r.stats.map((s) => hits(s.distances, m))) / total),
        pct(minOf(r.stats.map((s) => hitRatio(s, m)))),
      ]),
      ...[0.9, 0.95, 0.99].map((q) => int(maxOf(r.stats.map((s) => cheHandles(s, q))))),
    ]
  }),
)
console.log(
  `  Che's approximation against the replay at maxOpen ${MAX_OPEN.join(', ')}: within ${(100 * cheGap).toFixed(1)} points on every node`,
)

printTable(
  `Capacity: fleet requests/s (one point select each) at which the busiest node reaches ${pct(BUSY)} of its ${CORES} cores; ` +
    'release: migrate.all wall time per node (nodes migrate in parallel)',
  [
    'nodes',
    'placement',
    ...MAX_OPEN.map((m) => `req/s@${m}`),
    'release, schema only: slowest node',
    'mean',
    'indexing: slowest node',
    'mean',
  ],
  runs.map((r) => {
    const schemaWalls = r.stats.map((s) => migrateWallSeconds(s, schemaOnly))
    const indexWalls = r.stats.map((s) => migrateWallSeconds(s, migration))
    return [
      r.nodes,
      r.placement,
      ...MAX_OPEN.map((m) => kilo(capacity(r.stats, m))),
      secs(maxOf(schemaWalls)),
      secs(sumOf(schemaWalls) / r.nodes),
      secs(maxOf(indexWalls)),
      secs(sumOf(indexWalls) / r.nodes),
    ]
  }),
)
const whole: NodeStats = {
  tenants: TENANTS,
  bytes: fleet.totalBytes,
  rps: RPS,
  hottest: 0,
  largest: quantile(1),
  distances: new Int32Array(0),
  bins: { count: new Float64Array(0), rate: new Float64Array(0) },
}
console.log(
  `  one node with ${CORES} cores migrating all ${int(TENANTS)} tenants: ${secs(migrateWallSeconds(whole, schemaOnly))} ` +
    `schema only, ${secs(migrateWallSeconds(whole, migration))} indexing`,
)

printTable(
  "Adding a node (N → N+1): what moves (hash: the new node's ring points decide; directory: the rule in directoryMoves)",
  [
    'nodes',
    'hash: tenants moved',
    'share',
    'GiB',
    'new node load/mean',
    'directory: tenants moved',
    'share',
    'GiB',
    'new node load/mean',
    'bytes/mean',
  ],
  NODE_COUNTS.map((nodes) => {
    const hashRun = runs.find((r) => r.nodes === nodes && r.placement === 'hash') as Run
    const dirRun = runs.find((r) => r.nodes === nodes && r.placement === 'directory') as Run
    const ring = ringMoves(fleet, hashRun.owner, placeByRing(fleet, nodes + 1))
    const dir = directoryMoves(fleet, dirRun.owner, nodes, fleet.byRank, bySize)
    const meanLoad = RPS / (nodes + 1)
    return [
      `${nodes} → ${nodes + 1}`,
      int(ring.tenants),
      pct(ring.tenants / TENANTS),
      gib(ring.bytes),
      x(ring.load / meanLoad),
      int(dir.tenants),
      pct(dir.tenants / TENANTS),
      gib(dir.bytes),
      x(dir.load / meanLoad),
      x(dir.bytes / (fleet.totalBytes / (nodes + 1))),
    ]
  }),
)

for (const placement of ['hash', 'directory'] as const) {
  const r = runs.find((run) => run.nodes === DETAIL && run.placement === placement) as Run
  printTable(
    `Per node, ${DETAIL} nodes, ${placement}`,
    [
      'node',
      'tenants',
      'GiB',
      'req/s',
      'load/mean',
      'hottest/node',
      ...MAX_OPEN.map((m) => `hit@${m}`),
      'handles 95%',
      'release (indexing)',
    ],
    r.stats.map((s, n) => [
      n,
      int(s.tenants),
      gib(s.bytes),
      int(s.rps),
      x(s.rps / (RPS / DETAIL)),
      pct(s.hottest / s.rps),
      ...MAX_OPEN.map((m) => pct(hitRatio(s, m))),
      int(cheHandles(s, 0.95)),
      secs(migrateWallSeconds(s, migration)),
    ]),
  )
}

console.log(`\n(${((performance.now() - started) / 1000).toFixed(1)} s)`)
