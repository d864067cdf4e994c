/**
 * The cost of a pool miss (issue 15's bar: ≤ 1.25× raw open + read + close).
 *
 * One Shardines instance with `maxOpen` 256 over BENCH_TENANTS tenant files
 * (default 2,000), and six cases interleaved round by round (bench/lib/measure's
 * `compare`, whose case order rotates each round), all in the same process
 * state: the pool holds its 256 handles throughout (the hit case's instance
 * its 200, the LRU and adapter cases theirs).
 *
 * - miss: `withTenant` + a point select on the next tenant of a ring of all
 *   the tenants, so every request is a miss (open, the identity `lstat`, the
 *   version read, preparing the first statement, and the close of the handle
 *   the pool evicts). Checked: every request of this case counts as a miss.
 * - hit: the same request on one of 200 other tenants, held open by a second
 *   instance (so the miss case cannot evict them): every request a hit.
 *   Checked too.
 * - raw: plain better-sqlite3 opening a tenant file the pool does not hold,
 *   reading one row and closing it (the baseline).
 * - raw, LRU: the baseline's connections kept in an LRU of 256, as the pool
 *   keeps its own, closing the oldest: what any pool of 256 pays. A miss
 *   closes a connection that has gone cold while 256 others were used, and
 *   the next open reuses that memory; the baseline closes and reopens memory
 *   it just touched. This case says how much of the open path is that.
 * - warm: plain better-sqlite3's point select on an open connection (what a
 *   hit's statement costs).
 * - adapter: the storage adapter's own `acquire` (a miss: pool, identity,
 *   open, version read, eviction) and `release` around the raw statement on
 *   its connection, without core: splits the open path between the two.
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
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled } from './lib/zipf.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 2_000)
const LAYOUTS = (process.env.BENCH_LAYOUTS ?? 'flat,hashed').split(',') as TenantLayout[]
const MODES = (process.env.BENCH_MODES ?? 'delete').split(',') as JournalMode[]
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31)
const POOL = 256
const HOT = 200
const ROWS = 20
const BAR = 1.25
const SQL = 'select * from "documents" where "id" = ?'
const idOf = (i: number) => `t${String(i).padStart(5, '0')}`

printHeader(`pool miss cost: ${TENANTS} tenants, maxOpen ${POOL}, paired rounds`)

function request(shard: BenchShard, id: string, row: number): Promise<unknown> {
  return shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', row).executeTakeFirst())
}

interface Run {
  miss: Measurement
  hit: Measurement
  raw: Measurement
  warm: Measurement
  adapter: Measurement
  lru: Measurement
}

async function measure(layout: TenantLayout, mode: JournalMode): Promise<Run> {
  const { files } = await sets(layout, mode)
  const ids = shuffled([...files.keys()], seededRandom(11))
  // The hit case's tenants, open in an instance of their own (so the miss case cannot evict them),
  // and the ring the miss and raw cases walk.
  const hot = ids.slice(0, HOT)
  const ring = ids.slice(HOT)
  const RING = ring.length
  const fileOf = (id: string) => files.get(id) as string
  const dir = dirs.get(`${layout}/${mode}`) as string
  const shard = await openShard(dir, { maxOpen: POOL, layout, journalMode: mode })
  const hitShard = await openShard(dir, { maxOpen: POOL, layout, journalMode: mode })
  let cursor = 0
  let rawCursor = Math.floor(RING / 2)
  let lruCursor = Math.floor(RING / 4)
  let misses = 0
  let missRequests = 0
  let hits = 0
  let hitRequests = 0
  const counted = async (
    on: BenchShard,
    n: number,
    body: () => Promise<void>,
    count: (hits: number, misses: number) => void,
  ) => {
    const before = on.stats()
    await body()
    const after = on.stats()
    count(after.hits - before.hits, after.misses - before.misses)
    return n
  }
  const missCase: Case = {
    name: 'miss',
    run: (n) =>
      counted(
        shard,
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
  const hitCase: Case = {
    name: 'hit',
    run: (n) =>
      counted(
        hitShard,
        n,
        async () => {
          for (let i = 0; i < n; i++) await request(hitShard, hot[i % HOT] as string, (i % ROWS) + 1)
        },
        (h) => {
          hits += h
          hitRequests += n
        },
      ),
  }
  const rawCase: Case = {
    name: 'raw',
    run(n) {
      // Files the pool does not hold (half a ring away from the miss case's cursor).
      for (let i = 0; i < n; i++) {
        const db = new Database(fileOf(ring[rawCursor] as string), { fileMustExist: true })
        db.prepare(SQL).get((i % ROWS) + 1)
        db.close()
        rawCursor = (rawCursor + 1) % RING
      }
    },
  }
  const warmDb = new Database(fileOf(hot[0] as string), { fileMustExist: true })
  const warmStatement = warmDb.prepare(SQL)
  const warmCase: Case = {
    name: 'warm',
    run(n) {
      for (let i = 0; i < n; i++) warmStatement.get((i % ROWS) + 1)
    },
  }
  const lru: Database.Database[] = []
  const lruCase: Case = {
    name: 'raw, LRU',
    run(n) {
      for (let i = 0; i < n; i++) {
        const db = new Database(fileOf(ring[lruCursor] as string), { fileMustExist: true })
        db.prepare(SQL).get((i % ROWS) + 1)
        lru.push(db)
        if (lru.length > POOL) lru.shift()?.close()
        lruCursor = (lruCursor + 1) % RING
      }
    },
  }
  // Fill both pools before anything is measured.
  for (let i = 0; i < POOL; i++) {
    await request(shard, ring[cursor] as string, 1)
    cursor++
  }
  for (const id of hot) await request(hitShard, id, 1)
  // The adapter's part of a miss: the storage's own acquire (pool, open, identity, version read,
  // eviction) and release around the raw statement on its connection, without core.
  const storage = sqliteStorage({ dir, maxOpen: POOL, layout, journalMode: mode })
  let adapterCursor = Math.floor((RING * 3) / 4)
  let adapterMisses = 0
  const adapterCase: Case = {
    name: 'adapter',
    async run(n) {
      const before = storage.stats().misses
      for (let i = 0; i < n; i++) {
        const lease = await storage.acquire(ring[adapterCursor] as string)
        ;(lease.handle as unknown as { db: Database.Database }).db.prepare(SQL).get((i % ROWS) + 1)
        lease.release()
        adapterCursor = (adapterCursor + 1) % RING
      }
      adapterMisses += storage.stats().misses - before - n
    },
  }
  const cases = [missCase, hitCase, rawCase, lruCase, warmCase, adapterCase]
  const measured = await compare(cases, { rounds: ROUNDS, batchMs: 40, warmupMs: 400 })
  warmDb.close()
  for (const db of lru.splice(0)) db.close()
  await shard.close()
  await hitShard.close()
  await storage.close()
  if (adapterMisses !== 0) throw new Error('the adapter case had hits')
  if (misses !== missRequests) throw new Error(`the miss case had ${missRequests - misses} hits`)
  if (hits !== hitRequests) throw new Error(`the hit case had ${hitRequests - hits} misses`)
  const [miss, hit, raw, lruRaw, warm, adapter] = measured as Measurement[] as [
    Measurement,
    Measurement,
    Measurement,
    Measurement,
    Measurement,
    Measurement,
  ]
  return { miss, hit, raw, lru: lruRaw, warm, adapter }
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
    const main = await measure(layout, mode)
    const openPath = main.miss.median - main.hit.median + main.warm.median
    const r = openPathRatio(main, main.raw)
    const rLru = openPathRatio(main, main.lru)
    const lruOverRaw = pairedRatio(main.lru, main.raw)
    const roundRatios = main.miss.rounds
      .map(
        (m, i) =>
          (m - (main.hit.rounds[i] as number) + (main.warm.rounds[i] as number)) / (main.raw.rounds[i] as number),
      )
      .sort((a, b) => a - b)
    printTable(
      `[${layout}, ${mode} journal] per request (median of ${ROUNDS} rounds)`,
      ['case', 'per request', 'round range'],
      [
        [
          `withTenant + point select, every request a miss`,
          us(main.miss.median),
          `${us(main.miss.min)}–${us(main.miss.max)}`,
        ],
        [
          `withTenant + point select, every request a hit`,
          us(main.hit.median),
          `${us(main.hit.min)}–${us(main.hit.max)}`,
        ],
        [
          'raw better-sqlite3: open + read one row + close',
          us(main.raw.median),
          `${us(main.raw.min)}–${us(main.raw.max)}`,
        ],
        ['raw better-sqlite3: warm point select', us(main.warm.median), `${us(main.warm.min)}–${us(main.warm.max)}`],
        [
          `raw better-sqlite3, LRU of ${POOL}: open + read one row + close the oldest`,
          us(main.lru.median),
          `${us(main.lru.min)}–${us(main.lru.max)}`,
        ],
        [
          `the adapter alone: storage.acquire (a miss) + the raw statement + release`,
          us(main.adapter.median),
          `${us(main.adapter.min)}–${us(main.adapter.max)}`,
        ],
      ],
    )
    const q = (p: number) => (roundRatios[Math.floor(p * (roundRatios.length - 1))] as number).toFixed(2)
    console.log(
      `  open path of a miss (miss − hit + warm): ${us(openPath)}; paired per round: ${r.toFixed(2)}× raw open + read + close (quartiles ${q(0.25)}–${q(0.75)})`,
    )
    console.log(`  ${bar(r, BAR, `miss ${r.toFixed(2)}× raw`)}`)
    console.log(
      `  the adapter's part (no core): ${pairedRatio(main.adapter, main.raw).toFixed(2)}× raw, ${pairedRatio(main.adapter, main.lru).toFixed(2)}× raw with the same LRU`,
    )
    console.log(
      `  raw better-sqlite3 keeping the same LRU of ${POOL} (what any pool of ${POOL} pays): ${lruOverRaw.toFixed(2)}× raw open + read + close; the open path against it: ${rLru.toFixed(2)}×`,
    )
    summary.push([
      `${layout}, ${mode}`,
      us(openPath),
      `${r.toFixed(2)}×`,
      `${lruOverRaw.toFixed(2)}×`,
      `${rLru.toFixed(2)}×`,
      r <= BAR ? 'met' : 'MISSED',
    ])
  }
}
printTable(
  `open path of a miss against raw (bar ≤ ${BAR}×)`,
  ['layout, journal', 'open path', 'vs raw', `raw LRU ${POOL} vs raw`, 'vs raw LRU', 'bar (vs raw)'],
  summary,
)
console.log(`  the ratios are paired round by round; ${ratio(1, 1)} means parity with raw better-sqlite3`)
