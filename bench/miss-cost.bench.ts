/**
 * The cost of a pool miss (issue 15's bar: ≤ 1.25× raw open + read + close).
 *
 * Over BENCH_TENANTS tenant files (default 2,000), in two phases of cases
 * interleaved round by round (bench/lib/measure's `compare`, whose case order
 * rotates each round).
 *
 * Phase 1, the bar. One Shardines instance with `maxOpen` 256; its 256
 * handles (and the warm case's one connection) are all the process holds:
 * SQLite's open walks a list of every file the process has open, so
 * connections held for other cases would add the same cost to the miss and
 * to raw and pull their ratio towards 1.
 * - miss: `withTenant` + a point select on the next tenant of a ring longer
 *   than the pool, so every request is a miss (open, the identity `lstat`, the
 *   version read, preparing the first statement, and the close of the handle
 *   the pool evicts). Checked: every request of this case counts as a miss.
 * - hit: the same request on the 64 tenants the miss case opened last (the
 *   pool's newest): every request a hit. Checked too.
 * - raw: plain better-sqlite3 opening a tenant file, reading one row and
 *   closing it (the baseline).
 * - warm: plain better-sqlite3's point select on an open connection (what a
 *   hit's statement costs).
 *
 * Phase 2, the breakdown, with the instance closed: raw again; raw LRU, the
 * baseline's connections kept in an LRU of 256, closing the oldest (what any
 * pool of 256 pays: a miss closes a connection that went cold while the others
 * were used); and the adapter alone, the storage's own `acquire` (a miss:
 * pool, identity, open, version read, eviction) and `release` around the raw
 * statement on its connection, without core. Here the process holds both
 * cases' 256 connections, which every open walks: bench/raw-lru.bench.ts
 * measures what an LRU costs raw better-sqlite3 alone.
 *
 * The miss, raw, raw LRU and adapter cases walk disjoint rings of tenants: no
 * case opens a file another case holds open (SQLite opens such a file for
 * about 5 % less: its inode is already known to the process).
 *
 * The open path of a miss is miss − hit + warm: what a miss adds beyond a
 * hit's scope and warm statement, plus that statement. Each round gives a
 * ratio (open path / raw) from batches a few tens of milliseconds apart, and
 * the median over rounds is reported: the machine's drift (5× from day to
 * day, and up to 2× within a minute on the CI-sized VMs) cancels in a round.
 *
 * Env: BENCH_TENANTS (default 2000), BENCH_LAYOUTS (default `flat,hashed`),
 * BENCH_MODES (tenant journal modes, default `delete`), BENCH_ROUNDS (default 31).
 */
import type { JournalMode, TenantLayout } from '@shardines/adapter-sqlite'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import Database from 'better-sqlite3'
import { type BenchShard, copiedTenantSet, openShard } from './lib/fixture.js'
import { type Case, compare, type Measurement, median, pairedRatio } from './lib/measure.js'
import { POINT_SELECT, rawOpenCase } from './lib/raw-opens.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled } from './lib/zipf.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 2_000)
const LAYOUTS = (process.env.BENCH_LAYOUTS ?? 'flat,hashed').split(',') as TenantLayout[]
const MODES = (process.env.BENCH_MODES ?? 'delete').split(',') as JournalMode[]
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31)
const POOL = 256
/** The hit case's tenants: the ones the miss case opened last (fewer than a miss batch, and far from the pool's size). */
const HIT_SET = 64
const ROWS = 20
const BAR = 1.25
const SQL = POINT_SELECT
const idOf = (i: number) => `t${String(i).padStart(5, '0')}`

printHeader(`pool miss cost: ${TENANTS} tenants, maxOpen ${POOL}, paired rounds`)

function request(shard: BenchShard, id: string, row: number): Promise<unknown> {
  return shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', row).executeTakeFirst())
}

interface Run {
  /** Phase 1 (the process holds the pool's connections only). */
  miss: Measurement
  hit: Measurement
  raw: Measurement
  warm: Measurement
  /** Phase 2 (the raw LRU's and the adapter's connections): raw again, then the breakdown. */
  raw2: Measurement
  lru: Measurement
  adapter: Measurement
}

async function measure(layout: TenantLayout, mode: JournalMode): Promise<Run> {
  const { files } = await sets(layout, mode)
  const ids = shuffled([...files.keys()], seededRandom(11))
  // A ring of tenants for each of the miss, raw, raw LRU and adapter cases. The rings are
  // disjoint: SQLite opens a file the process already has open for about 5 % less, so a case
  // must never open a file another case holds. Each is longer than the pool: every open a miss.
  const RING = Math.floor(ids.length / 4)
  if (RING <= POOL) throw new Error(`BENCH_TENANTS must be at least ${4 * (POOL + 1)}`)
  const ringOf = (k: number) => ids.slice(k * RING, (k + 1) * RING)
  const ring = ringOf(0)
  const fileOf = (id: string) => files.get(id) as string
  const dir = dirs.get(`${layout}/${mode}`) as string
  const measureOptions = { rounds: ROUNDS, batchMs: 40, warmupMs: 400 }

  // Phase 1, the bar: the pool's own 256 connections (and one warm one) are all the process holds.
  // Every open walks SQLite's list of the process's open files, so connections held for other
  // cases would add the same cost to the miss and to raw, and pull their ratio towards 1.
  const shard = await openShard(dir, { maxOpen: POOL, layout, journalMode: mode })
  let cursor = 0
  let misses = 0
  let missRequests = 0
  let hits = 0
  let hitRequests = 0
  const counted = async (n: number, body: () => Promise<void>, count: (hits: number, misses: number) => void) => {
    const before = shard.stats()
    await body()
    const after = shard.stats()
    count(after.hits - before.hits, after.misses - before.misses)
    return n
  }
  const missCase: Case = {
    name: 'miss',
    run: (n) =>
      counted(
        n,
        async () => {
          for (let i = 0; i < n; i++) {
            await request(shard, ring[cursor] as string, (i % ROWS) + 1)
            cursor = (cursor + 1) % RING
          }
        },
        (_, m) => {
          misses += m
          missRequests += n
        },
      ),
  }
  // Hits on the same pool: the HIT_SET tenants the miss case opened last (the pool's newest, far
  // from the end it evicts). Between the miss case's batches its cursor stands still.
  const hitCase: Case = {
    name: 'hit',
    run: (n) =>
      counted(
        n,
        async () => {
          for (let i = 0; i < n; i++) {
            await request(shard, ring[(cursor - 1 - (i % HIT_SET) + RING) % RING] as string, (i % ROWS) + 1)
          }
        },
        (h) => {
          hits += h
          hitRequests += n
        },
      ),
  }
  const rawCase = rawOpenCase('raw', ringOf(1).map(fileOf), { rows: ROWS })
  const warmDb = new Database(fileOf(ringOf(2)[0] as string), { fileMustExist: true })
  const warmStatement = warmDb.prepare(SQL)
  const warmCase: Case = {
    name: 'warm',
    run(n) {
      for (let i = 0; i < n; i++) warmStatement.get((i % ROWS) + 1)
    },
  }
  // Fill the pool before anything is measured.
  for (let i = 0; i < POOL; i++) {
    await request(shard, ring[cursor] as string, 1)
    cursor++
  }
  const [miss, hit, raw, warm] = (await compare([missCase, hitCase, rawCase, warmCase], measureOptions)) as [
    Measurement,
    Measurement,
    Measurement,
    Measurement,
  ]
  warmDb.close()
  await shard.close()
  if (misses !== missRequests) throw new Error(`the miss case had ${missRequests - misses} hits`)
  if (hits !== hitRequests) throw new Error(`the hit case had ${hitRequests - hits} misses`)

  // Phase 2, the breakdown: raw better-sqlite3 keeping an LRU of 256, and the adapter alone
  // (`storage.acquire` on a miss: pool, identity, open, version read, eviction; the raw statement
  // on its connection; release), each with its 256 connections, against raw again.
  const lruCase = rawOpenCase('raw, LRU', ringOf(2).map(fileOf), { rows: ROWS, keep: POOL })
  const storage = sqliteStorage({ dir, maxOpen: POOL, layout, journalMode: mode })
  const adapterRing = ringOf(3)
  let adapterCursor = 0
  let adapterMisses = 0
  const adapterCase: Case = {
    name: 'adapter',
    async run(n) {
      const before = storage.stats().misses
      for (let i = 0; i < n; i++) {
        const lease = await storage.acquire(adapterRing[adapterCursor] as string)
        ;(lease.handle as unknown as { db: Database.Database }).db.prepare(SQL).get((i % ROWS) + 1)
        lease.release()
        adapterCursor = (adapterCursor + 1) % RING
      }
      adapterMisses += storage.stats().misses - before - n
    },
  }
  const [raw2, lru, adapter] = (await compare([rawCase, lruCase, adapterCase], measureOptions)) as [
    Measurement,
    Measurement,
    Measurement,
  ]
  lruCase.close()
  await storage.close()
  if (adapterMisses !== 0) throw new Error('the adapter case had hits')
  return { miss, hit, raw, warm, raw2, lru, adapter }
}

const dirs = new Map<string, string>()
const built = new Map<string, { dir: string; files: Map<string, string> }>()
async function sets(layout: TenantLayout, mode: JournalMode) {
  const key = `${layout}/${mode}`
  let set = built.get(key)
  if (set === undefined) {
    console.error(`[${key}] building ${TENANTS} tenants`)
    set = await copiedTenantSet(`miss-${layout}-${mode}`, TENANTS, idOf, ROWS, { layout, journalMode: mode })
    built.set(key, set)
    dirs.set(key, set.dir)
  }
  return set
}

/** Per round: (miss − hit + warm) / baseline; the median over rounds. */
function openPathRatio(run: Run, baseline: Measurement): number {
  return median(
    run.miss.rounds.map((missNs, r) => {
      const openPath = missNs - (run.hit.rounds[r] as number) + (run.warm.rounds[r] as number)
      return openPath / (baseline.rounds[r] as number)
    }),
  )
}

const summary: (string | number)[][] = []
for (const mode of MODES) {
  for (const layout of LAYOUTS) {
    console.error(`[${layout}/${mode}] measuring`)
    const run = await measure(layout, mode)
    const openPath = run.miss.median - run.hit.median + run.warm.median
    const r = openPathRatio(run, run.raw)
    const lruOverRaw = pairedRatio(run.lru, run.raw2)
    const roundRatios = run.miss.rounds
      .map(
        (m, i) => (m - (run.hit.rounds[i] as number) + (run.warm.rounds[i] as number)) / (run.raw.rounds[i] as number),
      )
      .sort((a, b) => a - b)
    const row = (label: string, m: Measurement) => [label, us(m.median), `${us(m.min)}–${us(m.max)}`]
    printTable(
      `[${layout}, ${mode} journal] per request (median of ${ROUNDS} rounds)`,
      ['case', 'per request', 'round range'],
      [
        row('1. withTenant + point select, every request a miss', run.miss),
        row('1. withTenant + point select, every request a hit', run.hit),
        row('1. raw better-sqlite3: open + read one row + close', run.raw),
        row('1. raw better-sqlite3: warm point select', run.warm),
        row('2. raw better-sqlite3: open + read one row + close', run.raw2),
        row(`2. raw better-sqlite3, LRU of ${POOL}: open + read one row + close the oldest`, run.lru),
        row('2. the adapter alone: storage.acquire (a miss) + the raw statement + release', run.adapter),
      ],
    )
    const q = (p: number) => (roundRatios[Math.floor(p * (roundRatios.length - 1))] as number).toFixed(2)
    console.log(
      `  open path of a miss (miss − hit + warm): ${us(openPath)}; paired per round: ${r.toFixed(2)}× raw open + read + close (quartiles ${q(0.25)}–${q(0.75)})`,
    )
    console.log(`  ${bar(r, BAR, `miss ${r.toFixed(2)}× raw`)}`)
    console.log(
      `  phase 2: raw better-sqlite3 keeping an LRU of ${POOL}: ${lruOverRaw.toFixed(2)}× raw; the adapter alone: ${pairedRatio(run.adapter, run.raw2).toFixed(2)}× raw, ${pairedRatio(run.adapter, run.lru).toFixed(2)}× the raw LRU`,
    )
    summary.push([
      `${layout}, ${mode}`,
      us(openPath),
      `${r.toFixed(2)}×`,
      `${lruOverRaw.toFixed(2)}×`,
      `${pairedRatio(run.adapter, run.lru).toFixed(2)}×`,
      r <= BAR ? 'met' : 'MISSED',
    ])
  }
}
printTable(
  `open path of a miss against raw (bar ≤ ${BAR}×)`,
  ['layout, journal', 'open path', 'vs raw (1)', `raw LRU ${POOL} vs raw (2)`, 'adapter vs raw LRU (2)', 'bar'],
  summary,
)
console.log(
  `  ratios paired round by round within a phase; ${ratio(1, 1)} means parity. Phase 2's processes hold the raw LRU's and the adapter's connections (512), which every open there walks: bench/raw-lru.bench.ts measures the LRU alone.`,
)
