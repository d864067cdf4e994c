/**
 * The three storage configurations compared (issue 16):
 *
 * - `sqlite`: `@shardines/adapter-sqlite`, `sqliteStorage({ dir })` (better-sqlite3);
 * - `libsql-local`: `@shardines/adapter-libsql`, `libsqlStorage({ mode: 'local', dir })` (the `libsql` package);
 * - `libsql-client`: `@shardines/adapter-libsql`, `libsqlStorage({ mode: 'client', url: 'file:<dir>/tenants/{tenant}.db', apexUrl })`
 *   (`@libsql/client` on `file:` URLs).
 *
 * For each, in one run, every figure a ratio against baselines measured in the same process:
 *
 * 1. Point select by primary key inside one long `withTenant` scope (`t.db`), against (a) the
 *    configuration's own raw driver doing the same prepared point select on the same file
 *    (better-sqlite3 `stmt.get(k)`, libsql `stmt.get([k])`, `@libsql/client` `client.execute({ sql, args: [k] })`)
 *    and (b) bare Kysely on the same driver over the same file (`SqliteDialect` over better-sqlite3,
 *    `SqliteDialect` over libsql's better-sqlite3-like Database, `@libsql/kysely-libsql`'s `LibsqlDialect`
 *    over an `@libsql/client` 0.18 client passed in as `{ client }`).
 * 2. `withTenant` per call (a new scope per point select, same tenant), against the same two.
 * 3. A Zipf(1.1) mix over the tenants (default 1,000) with `maxOpen: 256`, each operation one
 *    `withTenant` + point select, against the raw driver doing the same mix with its own LRU of 256
 *    open connections (open on miss with the statement prepared, close the least recently used).
 *    Then a cyclic scan over all tenants, every request a miss in both, gives the cost of a miss.
 *
 * Bare Kysely is measured twice, as in point-select.bench.ts: before the process enters any
 * scope ("ALS off": Node 20's AsyncLocalStorage slows every promise once a store was entered)
 * and interleaved with the others ("ALS on"). Ratios "vs Kysely" are against the ALS-off figure,
 * carried into the second phase through raw (see kyselyOff), so load changing between the two
 * phases does not move them.
 *
 * The parent process builds one tenant set per configuration (a template tenant through
 * `tenants.create` with ROWS rows, file copies of it for the others; a few more timed
 * `tenants.create` calls) in a temp folder, then measures each configuration in its own
 * child process: a fresh heap, AsyncLocalStorage off until its first scope, its own descriptors.
 * (`@libsql/kysely-libsql` 0.4 depends on `@libsql/client` 0.8 and loads it; only the 0.18
 * client made here is ever used.)
 *
 * Flags (or env): --tenants=N (BENCH_TENANTS, 1000), --requests=N (BENCH_REQUESTS, Zipf requests per
 * round, 5000), --zipf-rounds=N (BENCH_ZIPF_ROUNDS, 7), --rounds=N (BENCH_ROUNDS, point-select rounds, 15),
 * --scan-rounds=N (BENCH_SCAN_ROUNDS, rounds of the all-misses scan, 3; 0 to skip),
 * --creates=N (BENCH_CREATES, timed tenants.create calls, 5), --configs=a,b (BENCH_CONFIGS, all three).
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { type Client, createClient } from '@libsql/client'
import { LibsqlDialect } from '@libsql/kysely-libsql'
import { libsqlStorage } from '@shardines/adapter-libsql'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type Migration, type Shardines, type StorageAdapter } from '@shardines/core'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import Libsql from 'libsql'
import { tempDir } from './lib/fixture.js'
import { asyncCase, type Case, compare, type Measurement, median, syncCase } from './lib/measure.js'
import { type Cell, printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled, zipfSampler } from './lib/zipf.js'

// ---------------------------------------------------------------------------------------------
// Settings

function setting(flag: string, env: string, fallback: string): string {
  const prefix = `--${flag}=`
  const arg = process.argv.find((a) => a.startsWith(prefix))
  return arg?.slice(prefix.length) ?? process.env[env] ?? fallback
}

const CONFIG_NAMES = ['sqlite', 'libsql-local', 'libsql-client'] as const
type ConfigName = (typeof CONFIG_NAMES)[number]

interface Settings {
  tenants: number
  requests: number
  zipfRounds: number
  rounds: number
  scanRounds: number
  creates: number
  configs: ConfigName[]
}

function readSettings(): Settings {
  const configs = setting('configs', 'BENCH_CONFIGS', CONFIG_NAMES.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  for (const c of configs) {
    if (!(CONFIG_NAMES as readonly string[]).includes(c)) {
      throw new Error(`unknown configuration ${c}; known: ${CONFIG_NAMES.join(', ')}`)
    }
  }
  const int = (flag: string, env: string, fallback: number, min: number) => {
    const n = Number(setting(flag, env, String(fallback)))
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer ≥ ${min}`)
    return n
  }
  return {
    tenants: int('tenants', 'BENCH_TENANTS', 1000, 1),
    requests: int('requests', 'BENCH_REQUESTS', 5000, 1),
    zipfRounds: int('zipf-rounds', 'BENCH_ZIPF_ROUNDS', 7, 1),
    rounds: int('rounds', 'BENCH_ROUNDS', 15, 1),
    scanRounds: int('scan-rounds', 'BENCH_SCAN_ROUNDS', 3, 0),
    creates: int('creates', 'BENCH_CREATES', 5, 0),
    configs: configs as ConfigName[],
  }
}

const MAX_OPEN = 256
const ROWS = 100
const ZIPF_S = 1.1
/**
 * The Zipf passes yield to the event loop every YIELD_EVERY requests, as a server does between
 * requests. libsql 0.5 (both the libsql package and @libsql/client's local connections) keeps a
 * closed connection's file descriptor and memory until its object is garbage-collected, and the
 * native finalizer runs only on a later turn of the event loop: a pass that never leaves the
 * microtask queue accumulates every evicted connection (measured: 3.8 GiB resident, then
 * SQLITE_CANTOPEN at the 20,000-descriptor limit in client mode, the raw LRU failing first).
 */
const YIELD_EVERY = 100
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

// ---------------------------------------------------------------------------------------------
// Schema: one `items` table

interface ItemsDB {
  items: { id: number; name: string; value: number }
}
type ApexDB = Record<string, never>
type Shard = Shardines<ApexDB, ItemsDB>

const tenantMigrations: Record<string, Migration> = {
  '001_items': {
    async up(db) {
      await db.schema
        .createTable('items')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('value', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

const SELECT_SQL = 'select * from "items" where "id" = ?'
const idOf = (i: number, tenants: number) => `t${String(i).padStart(String(tenants - 1).length, '0')}`
const keyOf = (i: number) => (i % ROWS) + 1

// ---------------------------------------------------------------------------------------------
// The three configurations

/** One open raw connection with the point select ready. */
interface RawConnection {
  get(k: number): unknown
  close(): void
}

interface Config {
  readonly name: ConfigName
  readonly storage: string
  readonly rawName: string
  readonly kyselyName: string
  /** Whether the raw driver answers synchronously. */
  readonly syncRaw: boolean
  storageAdapter(dir: string, maxOpen: number): StorageAdapter
  tenantFile(dir: string, id: string): string
  openRaw(file: string): RawConnection
  bareKysely(file: string): Kysely<ItemsDB>
}

type LibsqlDatabase = InstanceType<typeof Libsql>

const CONFIGS: Record<ConfigName, Config> = {
  sqlite: {
    name: 'sqlite',
    storage: 'sqliteStorage({ dir }) — better-sqlite3',
    rawName: 'better-sqlite3 stmt.get(k)',
    kyselyName: 'Kysely SqliteDialect(better-sqlite3)',
    syncRaw: true,
    storageAdapter: (dir, maxOpen) => sqliteStorage({ dir, maxOpen, onWarning: warn }),
    tenantFile: (dir, id) => path.join(dir, 'tenants', `${id}.sqlite3`),
    openRaw(file) {
      const db = new Database(file, { fileMustExist: true })
      const stmt = db.prepare(SELECT_SQL)
      return { get: (k) => stmt.get(k), close: () => db.close() }
    },
    bareKysely: (file) => new Kysely<ItemsDB>({ dialect: new SqliteDialect({ database: new Database(file) }) }),
  },
  'libsql-local': {
    name: 'libsql-local',
    storage: "libsqlStorage({ mode: 'local', dir }) — libsql",
    rawName: 'libsql stmt.get([k])',
    kyselyName: 'Kysely SqliteDialect(libsql Database)',
    syncRaw: true,
    storageAdapter: (dir, maxOpen) => libsqlStorage({ mode: 'local', dir, maxOpen, onWarning: warn }),
    tenantFile: (dir, id) => path.join(dir, 'tenants', `${id}.sqlite3`),
    openRaw(file) {
      const db: LibsqlDatabase = new Libsql(file, { fileMustExist: true })
      const stmt = db.prepare(SELECT_SQL)
      return { get: (k) => stmt.get([k]), close: () => db.close() }
    },
    bareKysely: (file) =>
      new Kysely<ItemsDB>({
        // libsql's Database is better-sqlite3-compatible where SqliteDialect looks (prepare, reader, all([…]), close).
        dialect: new SqliteDialect({ database: new Libsql(file, { fileMustExist: true }) }),
      }),
  },
  'libsql-client': {
    name: 'libsql-client',
    storage: "libsqlStorage({ mode: 'client', url: 'file:…/{tenant}.db' }) — @libsql/client",
    rawName: '@libsql/client execute({ sql, args: [k] })',
    kyselyName: 'Kysely LibsqlDialect(@libsql/client)',
    syncRaw: false,
    storageAdapter: (dir, maxOpen) =>
      libsqlStorage({
        mode: 'client',
        url: `file:${path.join(dir, 'tenants')}/{tenant}.db`,
        apexUrl: `file:${path.join(dir, 'apex.db')}`,
        maxOpen,
      }),
    tenantFile: (dir, id) => path.join(dir, 'tenants', `${id}.db`),
    openRaw(file) {
      const client = createClient({ url: `file:${file}` })
      return { get: (k) => client.execute({ sql: SELECT_SQL, args: [k] }), close: () => client.close() }
    },
    bareKysely(file) {
      const client = createClient({ url: `file:${file}` })
      // @libsql/kysely-libsql 0.4 is typed against its own @libsql/client 0.8; given `{ client }`
      // it only calls execute/transaction/close, which 0.18's client has with the same shapes.
      type DialectClient = Extract<ConstructorParameters<typeof LibsqlDialect>[0], { client: unknown }>['client']
      const kysely = new Kysely<ItemsDB>({
        dialect: new LibsqlDialect({ client: client as unknown as DialectClient }),
      })
      closeWithKysely.set(kysely, client)
      return kysely
    },
  },
}

/** The @libsql/client a bare Kysely runs on (LibsqlDialect does not close a client it was given). */
const closeWithKysely = new WeakMap<Kysely<ItemsDB>, Client>()

function warn(message: string): void {
  console.error(`warning: ${message}`)
}

function openShard(config: Config, dir: string, maxOpen: number): Shard {
  return createShardines<ApexDB, ItemsDB>({
    storage: config.storageAdapter(dir, maxOpen),
    migrations: { apex: {}, tenant: tenantMigrations },
  })
}

// ---------------------------------------------------------------------------------------------
// Parent: build the tenant sets, run one child per configuration, report

interface BuildInfo {
  /** ms for the template tenant's tenants.create. */
  firstCreate: number
  /** Median ms of the timed tenants.create calls (NaN when none). */
  create: number
  /** ms for the whole set (template, rows, timed creates, copies). */
  total: number
}

async function buildTenantSet(config: Config, dir: string, settings: Settings): Promise<BuildInfo> {
  const started = performance.now()
  const shard = openShard(config, dir, MAX_OPEN)
  await shard.migrate.apex()
  const template = idOf(0, settings.tenants)
  const t0 = performance.now()
  await shard.tenants.create(template)
  const firstCreate = performance.now() - t0
  await shard.withTenant(template, (t) =>
    t.db
      .insertInto('items')
      .values(Array.from({ length: ROWS }, (_, i) => ({ id: i + 1, name: `item ${i + 1}`, value: i * 7 })))
      .execute(),
  )
  const creates: number[] = []
  for (let i = 0; i < settings.creates; i++) {
    const t = performance.now()
    await shard.tenants.create(`created-${i}`)
    creates.push(performance.now() - t)
  }
  await shard.close()
  const source = config.tenantFile(dir, template)
  for (let i = 1; i < settings.tenants; i++) fs.copyFileSync(source, config.tenantFile(dir, idOf(i, settings.tenants)))
  return { firstCreate, create: median(creates), total: performance.now() - started }
}

async function parent(): Promise<void> {
  const settings = readSettings()
  printHeader(
    `storage configurations: point select and Zipf(${ZIPF_S}) over ${settings.tenants} tenants, maxOpen ${MAX_OPEN}`,
  )
  console.log(
    `configurations: ${settings.configs.join(', ')}; ${ROWS} rows per tenant; point select: ${settings.rounds} rounds; Zipf: ${settings.zipfRounds} rounds of ${settings.requests} requests`,
  )
  const results: ChildResult[] = []
  for (const name of settings.configs) {
    const config = CONFIGS[name]
    const dir = tempDir(`adapters-${name}`)
    console.error(`[${name}] building ${settings.tenants} tenants in ${dir}…`)
    const build = await buildTenantSet(config, dir, settings)
    console.error(`[${name}] built in ${(build.total / 1000).toFixed(1)} s; measuring in a child process…`)
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', process.argv[1] as string, '--child', name, dir, JSON.stringify(settings)],
      { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    )
    const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '))
    if (child.status !== 0 || line === undefined) {
      console.log(child.stdout)
      console.error(`[${name}] failed (exit ${child.status})`)
      process.exitCode = 1
      continue
    }
    results.push({ ...(JSON.parse(line.slice('RESULT '.length)) as ChildResult), build })
  }
  report(results, settings)
}

function report(results: readonly ChildResult[], settings: Settings): void {
  for (const r of results) {
    const config = CONFIGS[r.config]
    const p = r.point
    const row = (m: Measurement, label = m.name) => [
      label,
      us(m.median),
      ratio(m.median, p.raw.median),
      ratio(m.median, kyselyOff(r)),
      ratio(m.median, p.bareOn.median),
      `${us(m.min)}–${us(m.max)}`,
    ]
    printTable(
      `[${r.config}] ${config.storage}: point select by primary key, one hot tenant (medians; "vs raw": raw of the same phase; ALS off: measured first, before any scope)`,
      ['case', 'median', 'vs raw', 'vs Kysely (ALS off)', 'vs Kysely (ALS on)', 'round range'],
      [
        row(p.raw, `raw ${config.rawName}`),
        [
          `bare ${config.kyselyName}, ALS off`,
          us(p.bareOff.median),
          ratio(p.bareOff.median, p.rawOff.median),
          '1.00×',
          '',
          `${us(p.bareOff.min)}–${us(p.bareOff.max)}`,
        ],
        row(p.bareOn, `bare ${config.kyselyName}, ALS on`),
        row(p.perCall, 'withTenant per call'),
        row(p.scope, 't.db inside one long scope'),
      ],
    )
    const z = r.zipf
    const requests = z.hits + z.misses
    const rows: Cell[][] = [
      [
        `Zipf: raw ${config.rawName}, own LRU of ${MAX_OPEN}`,
        us(z.raw.median),
        '1.00×',
        pct(z.rawHits, requests),
        range(z.raw),
      ],
      [
        `Zipf: withTenant + point select, maxOpen ${MAX_OPEN}`,
        us(z.shard.median),
        ratio(z.shard.median, z.raw.median),
        pct(z.hits, requests),
        range(z.shard),
      ],
    ]
    const scan = r.scan
    if (scan !== null) {
      const scanned = scan.hits + scan.misses
      rows.push(
        ['scan, every request a miss: raw', us(scan.raw.median), '1.00×', pct(scan.rawHits, scanned), range(scan.raw)],
        [
          'scan, every request a miss: withTenant',
          us(scan.shard.median),
          ratio(scan.shard.median, scan.raw.median),
          pct(scan.hits, scanned),
          range(scan.shard),
        ],
      )
    }
    printTable(
      `[${r.config}] Zipf(${ZIPF_S}) over ${settings.tenants} tenants, ${MAX_OPEN} open (medians of ${settings.zipfRounds} alternating rounds of ${settings.requests} requests${scan === null ? '' : `; scan: ${settings.scanRounds} rounds over all ${settings.tenants}`})`,
      ['case', 'per request', 'vs raw', 'hit rate', 'round range'],
      rows,
    )
    if (z.misses === 0) {
      console.log(`  no pool misses in the measured rounds (fewer than ${MAX_OPEN} tenants drawn): raise --tenants`)
    } else {
      console.log(
        `  Zipf: pool misses ${pct(z.misses, requests)} (${z.misses} of ${requests} measured requests, ${z.evictions} evictions)` +
          (scan === null
            ? ''
            : `; a miss (open, first query, close of the evicted connection) costs ${us(scan.shard.median)} with Shardines, ${us(scan.raw.median)} raw (scan)`),
      )
    }
    console.log(
      `  tenant set: template tenants.create ${r.build.firstCreate.toFixed(1)} ms, then ${settings.creates} more tenants.create at ${Number.isNaN(r.build.create) ? '–' : `${r.build.create.toFixed(1)} ms`} each (median); ${settings.tenants - 1} file copies; ${(r.build.total / 1000).toFixed(1)} s in all`,
    )
  }

  if (results.length === 0) return
  const base = results[0] as ChildResult
  const cell = (value: number, baseValue: number) => `${us(value)} (${ratio(value, baseValue)})`
  printTable(
    `summary: median µs per operation (in parentheses: ratio against ${base.config})`,
    [
      'configuration',
      'raw point select',
      'bare Kysely (ALS off)',
      't.db in a scope',
      'withTenant per call',
      'Zipf raw LRU',
      'Zipf withTenant',
      'miss raw',
      'miss withTenant',
    ],
    results.map((r) => [
      r.config,
      cell(r.point.raw.median, base.point.raw.median),
      cell(r.point.bareOff.median, base.point.bareOff.median),
      cell(r.point.scope.median, base.point.scope.median),
      cell(r.point.perCall.median, base.point.perCall.median),
      cell(r.zipf.raw.median, base.zipf.raw.median),
      cell(r.zipf.shard.median, base.zipf.shard.median),
      r.scan === null || base.scan === null ? '–' : cell(r.scan.raw.median, base.scan.raw.median),
      r.scan === null || base.scan === null ? '–' : cell(r.scan.shard.median, base.scan.shard.median),
    ]),
  )
  printTable(
    'summary: ratios within each configuration (vs its own raw driver / bare Kysely on that driver, ALS off)',
    [
      'configuration',
      'scope vs raw',
      'scope vs Kysely',
      'per call vs raw',
      'per call vs Kysely',
      'Zipf vs raw LRU',
      'miss vs raw',
      'Zipf hit rate',
    ],
    results.map((r) => [
      r.config,
      ratio(r.point.scope.median, r.point.raw.median),
      ratio(r.point.scope.median, kyselyOff(r)),
      ratio(r.point.perCall.median, r.point.raw.median),
      ratio(r.point.perCall.median, kyselyOff(r)),
      ratio(r.zipf.shard.median, r.zipf.raw.median),
      r.scan === null ? '–' : ratio(r.scan.shard.median, r.scan.raw.median),
      pct(r.zipf.hits, r.zipf.hits + r.zipf.misses),
    ]),
  )
}

/**
 * Bare Kysely with AsyncLocalStorage off, in the time scale of phase 2: its ratio to raw in phase 1
 * (interleaved there) times raw in phase 2. Every "vs Kysely (ALS off)" ratio is thus a product of
 * two within-phase ratios, unaffected by the machine's load changing between the phases (raw
 * runs no promise, so AsyncLocalStorage does not change it).
 */
const kyselyOff = (r: ChildResult) => (r.point.bareOff.median / r.point.rawOff.median) * r.point.raw.median

const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`
const range = (m: { min: number; max: number }) => `${us(m.min)}–${us(m.max)}`

// ---------------------------------------------------------------------------------------------
// Child: one configuration

interface ZipfRun {
  median: number
  min: number
  max: number
}

interface PoolRun {
  raw: ZipfRun
  shard: ZipfRun
  hits: number
  misses: number
  evictions: number
  rawHits: number
}

interface ChildResult {
  config: ConfigName
  point: {
    rawOff: Measurement
    bareOff: Measurement
    raw: Measurement
    bareOn: Measurement
    perCall: Measurement
    scope: Measurement
  }
  zipf: PoolRun
  /** A cyclic scan over all tenants (every request a pool miss); null with fewer tenants than maxOpen. */
  scan: PoolRun | null
  build: BuildInfo
}

async function child(name: ConfigName, dir: string, settings: Settings): Promise<Omit<ChildResult, 'build'>> {
  const config = CONFIGS[name]
  const began = performance.now()
  const log = (message: string) =>
    console.error(`[${name}] ${((performance.now() - began) / 1000).toFixed(1)} s: ${message}`)
  const hot = idOf(0, settings.tenants)
  const hotFile = config.tenantFile(dir, hot)

  // Raw and bare Kysely on the hot tenant's file; checked before anything is timed.
  const raw = config.openRaw(hotFile)
  const kysely = config.bareKysely(hotFile)
  const rawRow = (await raw.get(3)) as unknown
  const expectId = (row: unknown, what: string) => {
    const id = (row as { id?: unknown } | undefined)?.id
    if (Number(id) !== 3) throw new Error(`${what} returned ${JSON.stringify(row)} for id 3`)
  }
  expectId(rawRow instanceof Object && 'rows' in rawRow ? (rawRow as { rows: unknown[] }).rows[0] : rawRow, 'raw')
  expectId(await kysely.selectFrom('items').selectAll().where('id', '=', 3).executeTakeFirst(), 'bare Kysely')

  const rawCase = config.syncRaw
    ? syncCase(`raw ${config.rawName}`, (i) => raw.get(keyOf(i)))
    : asyncCase(`raw ${config.rawName}`, (i) => raw.get(keyOf(i)) as Promise<unknown>)
  const bareCase = (label: string) =>
    asyncCase(label, (i) => kysely.selectFrom('items').selectAll().where('id', '=', keyOf(i)).executeTakeFirst())
  const options = { rounds: settings.rounds }

  // Phase 1: before any scope exists in this process.
  log('point select, ALS off')
  // A discarded first pass: the first allocation-heavy work of a fresh process runs slow (JIT,
  // V8's young generation still growing), which made bare Kysely 3.2–4.0× raw in a first pass
  // and 2.1–2.7× in the next one on the same machine, minutes apart.
  await compare([rawCase, bareCase('bare Kysely, warm-up')], { rounds: 5 })
  const [rawOff, bareOff] = (await compare([rawCase, bareCase('bare Kysely, ALS off')], options)) as [
    Measurement,
    Measurement,
  ]

  // Phase 2: interleaved, AsyncLocalStorage active.
  const shard = openShard(config, dir, MAX_OPEN)
  expectId(
    await shard.withTenant(hot, (t) => t.db.selectFrom('items').selectAll().where('id', '=', 3).executeTakeFirst()),
    'withTenant',
  )
  log('point select, ALS on')
  const [rawOn, bareOn, perCall, scope] = (await compare(
    [
      rawCase,
      bareCase('bare Kysely, ALS on'),
      asyncCase('withTenant per call', (i) =>
        shard.withTenant(hot, (t) =>
          t.db.selectFrom('items').selectAll().where('id', '=', keyOf(i)).executeTakeFirst(),
        ),
      ),
      {
        name: 't.db inside one long scope',
        run: (n) =>
          shard.withTenant(hot, async (t) => {
            for (let i = 0; i < n; i++) {
              await t.db.selectFrom('items').selectAll().where('id', '=', keyOf(i)).executeTakeFirst()
            }
          }),
      } satisfies Case,
    ],
    options,
  )) as [Measurement, Measurement, Measurement, Measurement]
  await kysely.destroy()
  closeWithKysely.get(kysely)?.close()
  raw.close()

  // Phase 3: the Zipf mix, Shardines' pool against a raw LRU of as many connections.
  const random = seededRandom(42)
  const ids = Array.from({ length: settings.tenants }, (_, i) => idOf(i, settings.tenants))
  const order = shuffled(ids, random) // popularity rank → tenant
  const draw = zipfSampler(settings.tenants, ZIPF_S, random)
  const sequence = Array.from({ length: settings.requests }, () => order[draw()] as string)

  const lru = new Map<string, RawConnection>()
  let rawHits = 0
  const rawRequest = (id: string, k: number): unknown => {
    let connection = lru.get(id)
    if (connection !== undefined) {
      rawHits++
      lru.delete(id)
      lru.set(id, connection)
    } else {
      connection = config.openRaw(config.tenantFile(dir, id))
      lru.set(id, connection)
      if (lru.size > MAX_OPEN) {
        const [oldest, evicted] = lru.entries().next().value as [string, RawConnection]
        lru.delete(oldest)
        evicted.close()
      }
    }
    return connection.get(k)
  }
  const rawPass = config.syncRaw
    ? async (sequence: readonly string[]) => {
        const start = performance.now()
        for (let i = 0; i < sequence.length; i++) {
          rawRequest(sequence[i] as string, keyOf(i))
          if (i % YIELD_EVERY === YIELD_EVERY - 1) await turn()
        }
        return ((performance.now() - start) * 1e6) / sequence.length
      }
    : async (sequence: readonly string[]) => {
        const start = performance.now()
        for (let i = 0; i < sequence.length; i++) {
          await rawRequest(sequence[i] as string, keyOf(i))
          if (i % YIELD_EVERY === YIELD_EVERY - 1) await turn()
        }
        return ((performance.now() - start) * 1e6) / sequence.length
      }
  const shardPass = async (sequence: readonly string[]) => {
    const start = performance.now()
    for (let i = 0; i < sequence.length; i++) {
      const k = keyOf(i)
      await shard.withTenant(sequence[i] as string, (t) =>
        t.db.selectFrom('items').selectAll().where('id', '=', k).executeTakeFirst(),
      )
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await turn()
    }
    return ((performance.now() - start) * 1e6) / sequence.length
  }
  /** `rounds` rounds of one raw and one Shardines pass over `sequence`, their order alternating. */
  const alternate = async (what: string, sequence: readonly string[], rounds: number) => {
    const before = shard.stats()
    rawHits = 0
    const rawSamples: number[] = []
    const shardSamples: number[] = []
    for (let r = 0; r < rounds; r++) {
      log(`${what}: round ${r + 1} of ${rounds}`)
      if (r % 2 === 0) {
        rawSamples.push(await rawPass(sequence))
        shardSamples.push(await shardPass(sequence))
      } else {
        shardSamples.push(await shardPass(sequence))
        rawSamples.push(await rawPass(sequence))
      }
    }
    const after = shard.stats()
    return {
      raw: summary(rawSamples),
      shard: summary(shardSamples),
      hits: after.hits - before.hits,
      misses: after.misses - before.misses,
      evictions: after.evictions - before.evictions,
      rawHits,
    }
  }

  log('Zipf mix: warm-up')
  await rawPass(sequence)
  await shardPass(sequence)
  const zipf = await alternate('Zipf mix', sequence, settings.zipfRounds)
  // Every request a miss: a cyclic scan over more tenants than either LRU holds (after one
  // unmeasured pass each, which still finds the Zipf mix's tenants open).
  let scan: PoolRun | null = null
  if (settings.tenants > MAX_OPEN && settings.scanRounds > 0) {
    const scanOrder = shuffled(ids, random)
    log('scan (all misses): warm-up')
    await rawPass(scanOrder)
    await shardPass(scanOrder)
    scan = await alternate('scan (all misses)', scanOrder, settings.scanRounds)
  }
  for (const connection of lru.values()) connection.close()
  await shard.close()

  return { config: name, point: { rawOff, bareOff, raw: rawOn, bareOn, perCall, scope }, zipf, scan }
}

function summary(samples: readonly number[]): ZipfRun {
  const s = [...samples].sort((a, b) => a - b)
  return { median: median(s), min: s[0] as number, max: s[s.length - 1] as number }
}

// Entry point last: the helpers above are `const`s that must be initialised first.
if (process.argv[2] === '--child') {
  const [, , , name, dir, json] = process.argv
  const result = await child(name as ConfigName, dir as string, JSON.parse(json as string) as Settings)
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
} else {
  await parent()
}
