/**
 * Migrating many tenants (issue 4).
 *
 * 1. `migrate.all` over BENCH_MIGRATE_TENANTS tenants (default 10,000) with a
 *    three-statement migration (add a column, create an index, create a table):
 *    tenants per second with 1 worker thread and with one per core, against a
 *    plain sequential loop of Kysely `Migrator.migrateToLatest()` calls (one
 *    `Kysely` + better-sqlite3 connection per tenant) and against Shardines'
 *    own main-thread runner. Every run starts from a fresh copy of the same
 *    tenant set (one tenant made with `tenants.create`, 20 rows, the rest file
 *    copies), so each migrates the same files.
 * 2. The up-to-date check on open (one `pragma user_version`), as a fraction of
 *    an open: every request is a pool miss (a cyclic scan over more tenants
 *    than `maxOpen`), with `migrateOnOpen: 'lazy'` against `'off'`; plus the raw
 *    better-sqlite3 figures (open + pragmas + close vs the pragma alone).
 * 3. `migrate.status()` over all the tenants: seconds, cold (templates built)
 *    and warm.
 *
 * Env: BENCH_MIGRATE_TENANTS (default 10000; e.g. 1000 for a quick run),
 * BENCH_MIGRATE_ROUNDS (rounds of the migrate runs, default 3), BENCH_MIGRATOR_SAMPLE
 * (tenants the slow Migrator loop runs over, default 2000), BENCH_SYNC (`PRAGMA
 * synchronous` for the migrate runs; default the adapter's, FULL), BENCH_ROUNDS
 * (rounds of the open-cost comparison, default 7).
 */
import * as fs from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type MigrateOnOpen } from '@shardines/core'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { FileMigrationProvider, Migrator } from '../test/helpers/kysely-migration.js'
import { tempDir, tenantFile } from './lib/fixture.js'
import { asyncCase, compare, median } from './lib/measure.js'
import { printHeader, printTable, ratio, us } from './lib/table.js'

const TENANTS = Number(process.env.BENCH_MIGRATE_TENANTS ?? 10_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7)
const CORES = availableParallelism()
/** `PRAGMA synchronous` for the migrate runs (default: the adapter's, FULL for the rollback journal). */
const SYNC = process.env.BENCH_SYNC as 'off' | 'normal' | 'full' | undefined
/** The Migrator loop is slow: it runs over this many tenants and is reported as a rate. */
const MIGRATOR_SAMPLE = Math.min(TENANTS, Number(process.env.BENCH_MIGRATOR_SAMPLE ?? 2000))
/** Rounds of the four migrate runs (rotating order; medians reported). */
const MIGRATE_ROUNDS = Number(process.env.BENCH_MIGRATE_ROUNDS ?? 3)

const V1 = {
  '001_documents': `export async function up(db) {
  await db.schema.createTable('documents')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
    .execute()
}`,
}
const V2 = {
  ...V1,
  '002_three_statements': `export async function up(db) {
  await db.schema.alterTable('documents').addColumn('slug', 'text').execute()
  await db.schema.createIndex('documents_status').on('documents').column('status').execute()
  await db.schema.createTable('tags').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text').execute()
}`,
}

function writeFolder(root: string, name: string, files: Record<string, string>): string {
  const folder = path.join(root, name)
  fs.mkdirSync(folder, { recursive: true })
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(folder, `${file}.mjs`), text)
  return folder
}

const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, '0')}`)

/** The pristine tenant set at v1, built once for this run. */
async function buildPristine(root: string, v1: string): Promise<string> {
  const dir = path.join(root, 'pristine')
  const shard = createShardines({ storage: sqliteStorage({ dir }), migrations: { tenant: v1 } })
  await shard.tenants.create(ids[0] as string)
  await shard.withTenant(ids[0] as string, async (t) => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ title: `document ${i}` }))
    await (t.db as any).insertInto('documents').values(rows).execute()
  })
  await shard.close()
  for (const id of ids.slice(1)) fs.copyFileSync(tenantFile(dir, ids[0] as string), tenantFile(dir, id))
  return dir
}

let copies = 0
function freshCopy(root: string, pristine: string): string {
  const dir = path.join(root, `run-${copies++}`)
  fs.mkdirSync(path.join(dir, 'tenants'), { recursive: true })
  for (const id of ids) fs.copyFileSync(tenantFile(pristine, id), tenantFile(dir, id))
  return dir
}

function removeCopy(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

interface RunResult {
  readonly name: string
  readonly seconds: number
  readonly migrated: number
}

async function shardinesRun(
  name: string,
  dir: string,
  v2: string,
  options: { concurrency?: number; runner?: 'main-thread' },
): Promise<RunResult> {
  const shard = createShardines({ storage: sqliteStorage({ dir, synchronous: SYNC }), migrations: { tenant: v2 } })
  const started = performance.now()
  const report = await shard.migrate.all(options)
  const seconds = (performance.now() - started) / 1000
  await shard.close()
  if (report.migrated !== TENANTS || report.runner.kind !== (options.runner ? 'main-thread' : 'workers')) {
    throw new Error(`${name}: migrated ${report.migrated} of ${TENANTS} on ${JSON.stringify(report.runner)}`)
  }
  return { name, seconds, migrated: report.migrated }
}

/** The baseline: what a team writes without Shardines, one Kysely Migrator per file, in sequence. */
async function migratorLoop(dir: string, v2: string): Promise<RunResult> {
  const provider = new FileMigrationProvider({ fs: fs.promises, path, migrationFolder: v2 })
  const started = performance.now()
  let migrated = 0
  for (const id of ids.slice(0, MIGRATOR_SAMPLE)) {
    const database = new Database(tenantFile(dir, id))
    database.pragma('busy_timeout = 5000')
    database.pragma(`synchronous = ${SYNC ?? 'full'}`)
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database }) })
    const { error, results } = await new Migrator({ db, provider }).migrateToLatest()
    await db.destroy()
    if (error) throw error
    if (results?.some((r) => r.status === 'Success')) migrated++
  }
  const seconds = (performance.now() - started) / 1000
  if (migrated !== MIGRATOR_SAMPLE) throw new Error(`Migrator loop: migrated ${migrated} of ${MIGRATOR_SAMPLE}`)
  return { name: `Kysely Migrator, sequential loop (first ${MIGRATOR_SAMPLE})`, seconds, migrated }
}

async function openCost(dir: string, v2: string): Promise<void> {
  // Tenants already at the latest version (the run directory of a finished migrate.all).
  const scan = Math.min(TENANTS, 2000)
  const maxOpen = 64
  const shards = new Map<MigrateOnOpen, ReturnType<typeof createShardines>>()
  for (const mode of ['off', 'lazy'] as const) {
    shards.set(
      mode,
      createShardines({ storage: sqliteStorage({ dir, maxOpen }), migrations: { tenant: v2 }, migrateOnOpen: mode }),
    )
  }
  let k = 0
  const cases = (['off', 'lazy'] as const).map((mode) => {
    const shard = shards.get(mode)!
    let i = 0
    return asyncCase(`withTenant + a point select, every call a pool miss (migrateOnOpen: '${mode}')`, () => {
      k++
      // A cyclic scan over `scan` tenants with maxOpen 64: every acquisition opens the file.
      // The scope runs one query, as a request would: the check's first read of the file
      // is then a read that query would have made anyway.
      return shard.withTenant(ids[i++ % scan] as string, (t) =>
        (t.db as any).selectFrom('documents').select('title').where('id', '=', 1).executeTakeFirst(),
      )
    })
  })
  const [off, lazy] = await compare(cases, { rounds: ROUNDS, batchMs: 60 })
  for (const shard of shards.values()) await shard.close()
  const stats = [off!, lazy!]
  const check = lazy!.median - off!.median
  printTable(
    `The up-to-date check on open (${scan} tenants cycled, maxOpen ${maxOpen}; ${k} scopes; median of ${ROUNDS} rounds)`,
    ['case', 'per call', 'vs off'],
    stats.map((m) => [m.name, us(m.median), ratio(m.median, off!.median)]),
  )
  console.log(
    `check cost ≈ ${us(check)} = ${((100 * check) / lazy!.median).toFixed(1)}% of a pool-miss request (open + pragmas + check + one query + close of the evicted handle); a pool hit runs no check`,
  )

  // The same, raw: open + pragmas + close vs the pragma on an open connection.
  const files = ids.slice(0, scan).map((id) => tenantFile(dir, id))
  const samplesOpen: number[] = []
  const samplesCheck: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    let t0 = performance.now()
    for (const file of files) {
      const db = new Database(file, { fileMustExist: true })
      db.exec('pragma busy_timeout = 5000; pragma foreign_keys = on; pragma synchronous = full')
      db.close()
    }
    samplesOpen.push(((performance.now() - t0) * 1e6) / files.length)
    const open = files.slice(0, 200).map((file) => new Database(file, { fileMustExist: true }))
    t0 = performance.now()
    for (let rep = 0; rep < 10; rep++) for (const db of open) db.prepare('pragma user_version').get()
    samplesCheck.push(((performance.now() - t0) * 1e6) / (open.length * 10))
    for (const db of open) db.close()
  }
  const rawOpen = median([...samplesOpen].sort((a, b) => a - b))
  const rawCheck = median([...samplesCheck].sort((a, b) => a - b))
  console.log(
    `raw better-sqlite3: open + pragmas + close ${us(rawOpen)}, 'pragma user_version' (first read after open: prepare + read page 1) ${us(rawCheck)} = ${((100 * rawCheck) / (rawOpen + rawCheck)).toFixed(1)}% of open + check`,
  )
}

async function statusRun(dir: string, v2: string): Promise<void> {
  const shard = createShardines({ storage: sqliteStorage({ dir }), migrations: { tenant: v2 }, migrateOnOpen: 'off' })
  let started = performance.now()
  const cold = await shard.migrate.status()
  const coldSeconds = (performance.now() - started) / 1000
  started = performance.now()
  await shard.migrate.status()
  const warmSeconds = (performance.now() - started) / 1000
  await shard.close()
  printTable(
    `migrate.status() over ${TENANTS} tenants (version, pending, drift against a template)`,
    ['run', 'seconds', 'tenants/s'],
    [
      ['first call (templates built)', coldSeconds.toFixed(2), (TENANTS / coldSeconds).toFixed(0)],
      ['second call', warmSeconds.toFixed(2), (TENANTS / warmSeconds).toFixed(0)],
    ],
  )
  if (cold.tenants.length !== TENANTS || cold.drifted !== 0) throw new Error('status: unexpected report')
}

const rate = (r: RunResult) => r.migrated / r.seconds

async function main(): Promise<void> {
  printHeader(`migrate.all / status over ${TENANTS} tenants, synchronous = ${SYNC ?? 'adapter default (full)'}`)
  const root = tempDir('migrate')
  const v1 = writeFolder(root, 'v1', V1)
  const v2 = writeFolder(root, 'v2', V2)
  let t0 = performance.now()
  const pristine = await buildPristine(root, v1)
  console.log(`built ${TENANTS} tenants at v1 in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

  // Rounds in rotating order, each run on a fresh copy: the figures are medians over rounds,
  // so load from other processes on the machine spreads over all runners.
  const runs: Array<(dir: string) => Promise<RunResult>> = [
    (dir) => migratorLoop(dir, v2),
    (dir) =>
      shardinesRun('Shardines migrate.all, main thread (1 at a time)', dir, v2, {
        runner: 'main-thread',
        concurrency: 1,
      }),
    (dir) => shardinesRun('Shardines migrate.all, 1 worker thread', dir, v2, { concurrency: 1 }),
    (dir) => shardinesRun(`Shardines migrate.all, ${CORES} worker threads (one per core)`, dir, v2, {}),
  ]
  const samples: RunResult[][] = runs.map(() => [])
  let last = ''
  for (let round = 0; round < MIGRATE_ROUNDS; round++) {
    for (let k = 0; k < runs.length; k++) {
      const i = (k + round) % runs.length
      t0 = performance.now()
      const dir = freshCopy(root, pristine)
      const copySeconds = (performance.now() - t0) / 1000
      const result = await runs[i]!(dir)
      samples[i]!.push(result)
      console.log(
        `round ${round + 1}: ${result.name}: ${result.seconds.toFixed(2)} s (fresh copy took ${copySeconds.toFixed(1)} s)`,
      )
      if (last) removeCopy(last)
      last = dir
    }
  }
  // `last` is fully migrated by the last run only if that run was a Shardines one over every tenant.
  const migratedDir = freshCopy(root, pristine)
  await shardinesRun('warm-up for the open-cost and status runs', migratedDir, v2, {})
  removeCopy(last)
  last = migratedDir
  const results = samples.map((runs) => {
    const sorted = [...runs].sort((a, b) => a.seconds - b.seconds)
    return sorted[Math.floor((sorted.length - 1) / 2)]!
  })
  const base = results[0]!
  printTable(
    `migrate.all over ${TENANTS} tenants, a three-statement migration (median of ${MIGRATE_ROUNDS} rounds; ratios of tenants/s)`,
    ['runner', 'tenants', 'seconds', 'tenants/s', 'vs Migrator loop', 'vs 1 worker'],
    results.map((r) => [
      r.name,
      r.migrated,
      r.seconds.toFixed(2),
      rate(r).toFixed(0),
      ratio(rate(r), rate(base)),
      ratio(rate(r), rate(results[2]!)),
    ]),
  )

  await openCost(last, v2)
  await statusRun(last, v2)
}

await main()
