/**
 * The open-handle LRU under churn (issue 2).
 *
 * Zipf(1.1) requests over BENCH_TENANTS tenants (default 10,000), one query per
 * request (`withTenant` + a point select), with `maxOpen: 256` against every
 * handle open (`maxOpen` ≥ the tenant count). Printed per journal mode:
 * throughput ratio, hit rate, the cost of one miss (open, pragmas, the version
 * check, first statement, and the close of the evicted handle), and resident
 * memory with 256 handles vs all open.
 *
 * The miss cost is measured two ways: amortized from the Zipf runs
 * ((t₂₅₆ − t_all) / miss rate) and directly, from a cyclic scan over all
 * tenants (every request a miss at 256, every request a hit with all open).
 * A raw better-sqlite3 breakdown (open / pragmas / user_version / first
 * statement / close) on the same files shows where a miss's time goes.
 *
 * Each journal mode runs in its own child process (clean memory figures, its
 * own file-descriptor budget). Within a child the two pool sizes run one after
 * the other (they cannot share files: another open connection would keep a
 * WAL file from being checkpointed and removed at close, hiding that cost).
 *
 * Tenant sets are built once per (mode, count) under
 * `<os.tmpdir()>/shardines-bench-cache/` and reused: one tenant is created with
 * `tenants.create` (both migrations) and 20 rows, and the others are file
 * copies of it. Delete that folder to rebuild.
 *
 * Env: BENCH_TENANTS (default 10000), BENCH_MODES (default `delete,wal,truncate`),
 * BENCH_ROUNDS (default 7), BENCH_REQUESTS (Zipf requests per round, default 20000).
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { JournalMode } from '@shardines/adapter-sqlite'
import Database from 'better-sqlite3'
import { type BenchShard, cacheDir, openShard, tenantFile } from './lib/fixture.js'
import { collectGarbage, median } from './lib/measure.js'
import { bar, mib, printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled, zipfSampler } from './lib/zipf.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000)
const MODES = (process.env.BENCH_MODES ?? 'delete,wal,truncate').split(',') as JournalMode[]
const SMALL_POOL = 256
const ROWS = 20
const ZIPF_S = 1.1

const idOf = (i: number) => `t${String(i).padStart(5, '0')}`

/** What a child reports for one journal mode. */
interface ModeResult {
  mode: JournalMode
  effectiveMode: string
  tenants: number
  buildSeconds: number | null
  zipf: { small: PoolRun; all: PoolRun }
  scan: { small: PoolRun; all: PoolRun }
  memory: { baseline: number; small: number; all: number; allOpen: number }
  raw: Record<'open' | 'pragmas' | 'versionCheck' | 'firstStatement' | 'close' | 'total', number>
  allOpenNote: string | null
}

interface PoolRun {
  /** Median ns per request over the rounds. */
  perRequest: number
  min: number
  max: number
  hits: number
  misses: number
  evictions: number
  maxOpen: number
}

async function parent(): Promise<void> {
  printHeader(`pool churn: Zipf(${ZIPF_S}) over ${TENANTS} tenants, maxOpen ${SMALL_POOL} vs all open`)
  console.log(
    `journal modes: ${MODES.join(', ')}; ${ROUNDS} rounds of ${REQUESTS} requests; one point select per request`,
  )
  const results: ModeResult[] = []
  for (const mode of MODES) {
    console.log(`\n[${mode}] running in a child process…`)
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', process.argv[1] as string, '--child', mode],
      { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    )
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '))
    if (child.status !== 0 || line === undefined) {
      console.log(child.stdout)
      console.error(`[${mode}] failed (exit ${child.status})`)
      process.exitCode = 1
      continue
    }
    results.push(JSON.parse(line.slice('RESULT '.length)) as ModeResult)
  }
  report(results)
}

function report(results: ModeResult[]): void {
  for (const r of results) {
    const { small, all } = r.zipf
    const requests = small.hits + small.misses
    const missRate = small.misses / requests
    const amortized = (small.perRequest - all.perRequest) / missRate
    const direct = r.scan.small.perRequest - r.scan.all.perRequest
    printTable(
      `[${r.mode}] (effective journal mode after reopen: ${r.effectiveMode}${r.buildSeconds === null ? '' : `; tenant set built in ${r.buildSeconds.toFixed(1)} s`})`,
      ['case', 'per request', 'throughput vs all open', 'hit rate', 'round range'],
      [
        [
          `Zipf, all ${all.maxOpen} open`,
          us(all.perRequest),
          '1.00×',
          pct(all.hits, all.hits + all.misses),
          range(all),
        ],
        [
          `Zipf, maxOpen ${SMALL_POOL}`,
          us(small.perRequest),
          ratio(all.perRequest, small.perRequest),
          pct(small.hits, requests),
          range(small),
        ],
        [
          `scan, all open`,
          us(r.scan.all.perRequest),
          '1.00×',
          pct(r.scan.all.hits, r.scan.all.hits + r.scan.all.misses),
          range(r.scan.all),
        ],
        [
          `scan, maxOpen ${SMALL_POOL} (all misses)`,
          us(r.scan.small.perRequest),
          ratio(r.scan.all.perRequest, r.scan.small.perRequest),
          pct(r.scan.small.hits, r.scan.small.hits + r.scan.small.misses),
          range(r.scan.small),
        ],
      ],
    )
    if (r.allOpenNote) console.log(`  note: ${r.allOpenNote}`)
    console.log(
      `  cost of one miss: ${us(direct)} measured directly (scan), ${us(amortized)} amortized from the Zipf runs`,
    )
    console.log(`  ${bar(direct / 1000, 100, `miss ${us(direct)}`)} [µs]`)
    const raw = r.raw
    console.log(
      `  raw better-sqlite3, same LRU of ${SMALL_POOL}, per miss: open ${us(raw.open)} + pragmas ${us(raw.pragmas)} + user_version ${us(raw.versionCheck)} + first statement ${us(raw.firstStatement)} + close ${us(raw.close)} = ${us(raw.total)}`,
    )
    const m = r.memory
    console.log(
      `  resident memory (rss): baseline ${mib(m.baseline)}, with maxOpen ${SMALL_POOL} ${mib(m.small)} (+${mib(m.small - m.baseline)}), with ${m.allOpen} open ${mib(m.all)} (+${mib(m.all - m.baseline)}); ${((m.all - m.small) / 1024 / Math.max(1, m.allOpen - SMALL_POOL)).toFixed(1)} KiB per extra open handle`,
    )
  }
  if (results.length > 1) {
    const base = results[0] as ModeResult
    const rows = results.map((r) => {
      const direct = r.scan.small.perRequest - r.scan.all.perRequest
      const baseDirect = base.scan.small.perRequest - base.scan.all.perRequest
      return [
        r.mode,
        us(r.zipf.all.perRequest),
        ratio(r.zipf.all.perRequest, base.zipf.all.perRequest),
        us(r.zipf.small.perRequest),
        ratio(r.zipf.small.perRequest, base.zipf.small.perRequest),
        us(direct),
        ratio(direct, baseDirect),
      ]
    })
    printTable(
      `journal modes compared (ratios against ${base.mode}; hit = a request on an open handle)`,
      ['mode', 'hit request', 'vs', `Zipf @${SMALL_POOL}`, 'vs', 'miss', 'vs'],
      rows,
    )
    for (const r of results.slice(1)) {
      const dHit = base.zipf.all.perRequest - r.zipf.all.perRequest
      const dMiss =
        r.scan.small.perRequest - r.scan.all.perRequest - (base.scan.small.perRequest - base.scan.all.perRequest)
      const missRate = r.zipf.small.misses / (r.zipf.small.hits + r.zipf.small.misses)
      if (dHit > 0 && dMiss > 0) {
        console.log(
          `  ${r.mode} vs ${base.mode}: each statement on an open handle is ${us(dHit)} cheaper, each miss ${us(dMiss)} dearer; at this miss rate (${(missRate * 100).toFixed(1)}%) ${r.mode} wins once a request runs more than ${((missRate * dMiss) / dHit).toFixed(1)} statements`,
        )
      } else {
        console.log(
          `  ${r.mode} vs ${base.mode}: hit ${us(-dHit)} ${dHit > 0 ? 'cheaper' : 'dearer'}, miss ${us(dMiss)} dearer`,
        )
      }
    }
  }
}

const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`
const range = (run: PoolRun) => `${us(run.min)}–${us(run.max)}`

/** Everything for one journal mode, in this (child) process. */
async function runMode(mode: JournalMode): Promise<ModeResult> {
  const log = (message: string) => console.error(`[${mode}] ${message}`)
  const { dir, buildSeconds } = await tenantSet(mode, log)
  const ids = Array.from({ length: TENANTS }, (_, i) => idOf(i))
  const random = seededRandom(42)
  const order = shuffled(ids, random) // popularity rank → tenant
  const draw = zipfSampler(TENANTS, ZIPF_S, random)
  const zipfIds = Array.from({ length: REQUESTS }, () => order[draw()] as string)
  // "All open" holds as many handles as the descriptor limit allows (a WAL
  // handle holds three: the file, -wal and -shm): the most popular tenants.
  const limit = Number(fdLimit())
  const perHandle = mode === 'wal' ? 3 : 1
  const capacity = Number.isFinite(limit) ? Math.min(TENANTS, Math.floor((limit - 1000) / perHandle)) : TENANTS
  const scanIds = shuffled(order.slice(0, capacity), random)

  collectGarbage()
  const baseline = process.memoryUsage().rss

  // maxOpen 256.
  const small = await openShard(dir, { maxOpen: SMALL_POOL, journalMode: mode })
  const effectiveMode = String(
    await small.withTenant(idOf(0), async (t) => {
      const { sql } = await import('kysely')
      const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db)
      return rows[0]?.journal_mode
    }),
  )
  log('maxOpen 256: Zipf')
  const zipfSmall = await poolRun(small, zipfIds, SMALL_POOL)
  log('maxOpen 256: scan')
  const scanSmall = await poolRun(small, scanIds, SMALL_POOL)
  collectGarbage()
  const smallRss = process.memoryUsage().rss
  await small.close()

  // Every handle open.
  const all = await openShard(dir, { maxOpen: Math.max(capacity, SMALL_POOL), journalMode: mode })
  log(`all open: opening ${capacity} handles`)
  let allOpenNote: string | null = null
  for (const id of scanIds) await request(all, id, 1)
  const opened = all.stats().open
  if (opened < TENANTS) {
    allOpenNote = `${opened} of ${TENANTS} handles open in "all open" (file-descriptor limit ${limit}, ${perHandle} per handle): the ${opened} most popular tenants; the scans cover those ${opened} tenants in both configurations`
  }
  collectGarbage()
  const allRss = process.memoryUsage().rss
  log('all open: Zipf')
  const zipfAll = await poolRun(all, zipfIds, opened)
  log('all open: scan')
  const scanAll = await poolRun(all, scanIds, opened)
  await all.close()

  log('raw better-sqlite3 miss breakdown')
  const raw = rawBreakdown(dir, scanIds.slice(0, Math.min(scanIds.length, 5000)), mode)
  return {
    mode,
    effectiveMode,
    tenants: TENANTS,
    buildSeconds,
    zipf: { small: zipfSmall, all: zipfAll },
    scan: { small: scanSmall, all: scanAll },
    memory: { baseline, small: smallRss, all: allRss, allOpen: opened },
    raw,
    allOpenNote,
  }
}

function request(shard: BenchShard, id: string, row: number): Promise<unknown> {
  return shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', row).executeTakeFirst())
}

/** One warm-up pass, then ROUNDS measured passes over `ids`; counters cover the measured passes. */
async function poolRun(shard: BenchShard, ids: readonly string[], maxOpen: number): Promise<PoolRun> {
  const pass = async () => {
    const start = performance.now()
    for (let i = 0; i < ids.length; i++) await request(shard, ids[i] as string, (i % ROWS) + 1)
    return ((performance.now() - start) * 1e6) / ids.length
  }
  await pass()
  const before = shard.stats()
  const samples: number[] = []
  for (let r = 0; r < ROUNDS; r++) samples.push(await pass())
  const after = shard.stats()
  samples.sort((a, b) => a - b)
  return {
    perRequest: median(samples),
    min: samples[0] as number,
    max: samples[samples.length - 1] as number,
    hits: after.hits - before.hits,
    misses: after.misses - before.misses,
    evictions: after.evictions - before.evictions,
    maxOpen,
  }
}

/**
 * Where a miss's time goes, with plain better-sqlite3 on the same files: the
 * adapter's open sequence, and an LRU of SMALL_POOL open connections (the
 * close of the oldest is part of each miss, as in the pool).
 */
function rawBreakdown(dir: string, ids: readonly string[], mode: JournalMode): ModeResult['raw'] {
  const sync = mode === 'wal' ? 'normal' : 'full'
  const t = { open: 0, pragmas: 0, versionCheck: 0, firstStatement: 0, close: 0, total: 0 }
  // Two passes; the first warms the OS page cache and the code paths.
  for (let pass = 0; pass < 2; pass++) {
    const sums = { open: 0, pragmas: 0, versionCheck: 0, firstStatement: 0, close: 0 }
    const lru: Database.Database[] = []
    for (const id of ids) {
      const t0 = performance.now()
      const db = new Database(tenantFile(dir, id), { fileMustExist: true })
      const t1 = performance.now()
      db.exec(`pragma busy_timeout = 5000;\npragma foreign_keys = on;\npragma synchronous = ${sync};`)
      const t2 = performance.now()
      db.prepare('pragma user_version').all()
      const t3 = performance.now()
      db.prepare('select * from "main"."documents" where "id" = ?').all(1)
      const t4 = performance.now()
      lru.push(db)
      if (lru.length > SMALL_POOL) lru.shift()?.close()
      const t5 = performance.now()
      sums.open += t1 - t0
      sums.pragmas += t2 - t1
      sums.versionCheck += t3 - t2
      sums.firstStatement += t4 - t3
      sums.close += t5 - t4
    }
    for (const db of lru) db.close()
    for (const k of Object.keys(sums) as (keyof typeof sums)[]) t[k] = (sums[k] * 1e6) / ids.length
  }
  t.total = t.open + t.pragmas + t.versionCheck + t.firstStatement + t.close
  return t
}

/** The cached tenant set for `mode`, built on first use. */
async function tenantSet(
  mode: JournalMode,
  log: (m: string) => void,
): Promise<{ dir: string; buildSeconds: number | null }> {
  const dir = cacheDir(`churn-v1-${mode}-${TENANTS}`)
  const done = path.join(dir, '.complete')
  if (fs.existsSync(done)) return { dir, buildSeconds: null }
  log(`building ${TENANTS} tenants in ${dir} (once; reused by later runs)`)
  const started = performance.now()
  fs.rmSync(dir, { recursive: true, force: true })
  const shard = await openShard(dir, { journalMode: mode })
  const template = idOf(0)
  await shard.tenants.create(template)
  await shard.withTenant(template, async (t) => {
    for (let i = 1; i <= ROWS; i++) {
      await t.db
        .insertInto('documents')
        .values({ id: i, title: `document ${i}`, owner_id: i })
        .execute()
    }
  })
  await shard.close()
  const source = tenantFile(dir, template)
  for (let i = 1; i < TENANTS; i++) fs.copyFileSync(source, tenantFile(dir, idOf(i)))
  fs.writeFileSync(done, new Date().toISOString())
  return { dir, buildSeconds: (performance.now() - started) / 1000 }
}

function fdLimit(): string {
  // Read, not `ulimit -n` in a shell: the process may be out of descriptors for a pipe.
  try {
    return /Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

// Entry point last: the helpers above are `const`s that must be initialised first.
if (process.argv[2] === '--child') {
  const result = await runMode(process.argv[3] as JournalMode)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
} else {
  await parent()
}
