/**
 * Events and tracing overhead per scope (issue 17): `withTenant` per call with
 * a point select, one hot tenant.
 *
 * Baseline (1.00×): an instance nobody has ever listened to. Compared, each on
 * its own instance over the same tenant file, all interleaved round by round:
 * - no listener, after one came and went (the off state really is off);
 * - one listener (`scope:end`, counting);
 * - one `'*'` listener (every event, statements included: they take the timed path);
 * - OpenTelemetry with scope spans and metrics (`statements: false`);
 * - OpenTelemetry with scope and statement spans (the default).
 * OpenTelemetry runs on the real SDK: spans through a BatchSpanProcessor into
 * an exporter that drops them, metrics into a MeterProvider with a reader.
 *
 * Ratios are paired: the median over rounds of (case / baseline in the same
 * round). "No listener (one came and went)" runs the very code path of the
 * baseline, so its distance from 1.00× is the noise of the run.
 *
 * Bars: no listener ≤ 1.05× (within the noise of a shared machine); one listener ≤ 1.15×.
 *
 * `BENCH_BASELINE_CORE=/path/to/another/build/of/core/dist/index.js` adds that
 * build of `@shardines/core` (e.g. the commit before events existed) as one
 * more case, over the same adapter and file: the cost of the event machinery
 * itself when nobody listens, measured in the same run.
 */

import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { instrumentOpenTelemetry } from '@shardines/core/otel'
import Database from 'better-sqlite3'
import {
  type ApexDB,
  apexMigrations,
  type BenchShard,
  openShard,
  type TenantDB,
  tempDir,
  tenantFile,
  tenantMigrations,
} from './lib/fixture.js'
import { asyncCase, compare, type Measurement, pairedRatio } from './lib/measure.js'
import { bar, printHeader, printTable, us } from './lib/table.js'

const ROWS = 1000
const TENANT = 'hot'

printHeader('events and tracing overhead: withTenant per call + point select')
const dir = tempDir('events')
const first = await openShard(dir)
await first.tenants.create(TENANT)
const raw = new Database(tenantFile(dir, TENANT))
const insert = raw.prepare('insert into documents (id, title, owner_id) values (?, ?, ?)')
raw.transaction(() => {
  for (let i = 1; i <= ROWS; i++) insert.run(i, `document ${i}`, i % 50)
})()
raw.close()

const id = (i: number) => (i % ROWS) + 1
const perCall = (shard: BenchShard) => (i: number) =>
  shard.withTenant(TENANT, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst())

// One instance per case (each with its own handle on the same file).
const never = first
const cameAndWent = await openShard(dir)
cameAndWent.on('*', () => {})()
const oneListener = await openShard(dir)
let ended = 0
oneListener.on('scope:end', () => {
  ended++
})
const everything = await openShard(dir)
let seen = 0
everything.on('*', () => {
  seen++
})

/** Spans go through the SDK's batch processor and are dropped by the exporter. */
const dropping: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
}
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(dropping, { maxQueueSize: 65_536, scheduledDelayMillis: 200 })],
})
const meterProvider = new MeterProvider({
  readers: [
    new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    }),
  ],
})
const tracer = tracerProvider.getTracer('bench')
const meter = meterProvider.getMeter('bench')
const otelScopes = await openShard(dir)
const stopScopes = instrumentOpenTelemetry(otelScopes, { tracer, meter, statements: false })
const otelAll = await openShard(dir)
const stopAll = instrumentOpenTelemetry(otelAll, { tracer, meter })

const shards = [never, cameAndWent, oneListener, everything, otelScopes, otelAll]
const baselineCore = process.env.BENCH_BASELINE_CORE
let other: BenchShard | undefined
if (baselineCore !== undefined) {
  const core = (await import(pathToFileURL(path.resolve(baselineCore)).href)) as typeof import('@shardines/core')
  other = core.createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  }) as unknown as BenchShard
  shards.push(other)
}
for (const shard of shards) await perCall(shard)(0) // open each handle before measuring

// Short batches and many rounds: each ratio is paired within a round, so more rounds beat longer ones.
const rounds = Number(process.env.BENCH_ROUNDS ?? 61)
const results = await compare(
  [
    ...(other === undefined ? [] : [asyncCase(`BENCH_BASELINE_CORE (${baselineCore})`, perCall(other))]),
    asyncCase('no listener ever (baseline)', perCall(never)),
    asyncCase('no listener (one came and went)', perCall(cameAndWent)),
    asyncCase('one listener (scope:end)', perCall(oneListener)),
    asyncCase("one '*' listener (statements timed)", perCall(everything)),
    asyncCase('OpenTelemetry: scope spans + metrics', perCall(otelScopes)),
    asyncCase('OpenTelemetry: scope + statement spans', perCall(otelAll)),
  ],
  { rounds, batchMs: 20 },
)
if (other !== undefined) results.push(results.shift() as Measurement)
const [base, off, one, all, scopes, spans, before] = results as [
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement | undefined,
]
/** A case's time as a multiple of the baseline's: the median over rounds of the ratio within each round. */
const vs = (m: Measurement, baseline: Measurement = base): string => `${pairedRatio(m, baseline).toFixed(2)}×`
printTable(
  'withTenant + point select: median time per call; ratio = median over rounds of (case / baseline in the same round)',
  ['case', 'median', 'vs baseline', 'added per scope', 'round range'],
  results.map((m) => [
    m.name,
    us(m.median),
    m === base ? '1.00×' : vs(m),
    m === base ? '' : `${m.median >= base.median ? '+' : '−'}${us(Math.abs(m.median - base.median))}`,
    `${us(m.min)}–${us(m.max)}`,
  ]),
)
console.log('\nbars (against the baseline):')
console.log(`  ${bar(pairedRatio(off, base), 1.05, `no listener ${vs(off)} (the same code path: the noise floor)`)}`)
console.log(`  ${bar(pairedRatio(one, base), 1.15, `one listener ${vs(one)}`)}`)
if (before !== undefined) {
  console.log(
    `  ${bar(pairedRatio(base, before), 1.05, `the event machinery, nobody listening: ${vs(base, before)} of the build before it`)}`,
  )
}
console.log(`informative: '*' ${vs(all)}, OpenTelemetry scopes ${vs(scopes)}, with statement spans ${vs(spans)}`)
if (ended === 0 || seen === 0) throw new Error('the listeners saw nothing: the benchmark measured the wrong thing')

stopScopes()
stopAll()
await tracerProvider.shutdown()
await meterProvider.shutdown()
for (const shard of shards) await shard.close()
