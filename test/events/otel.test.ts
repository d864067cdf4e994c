// @shardines/core/otel: spans (scopes, statements inside them) captured with the SDK's in-memory
// exporter, and metrics read with a manual reader.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { type DataPoint, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { instrumentOpenTelemetry } from '@shardines/core/otel'
import { sql } from 'kysely'
import { makeShard } from '../helpers/fixtures.js'

/** A reader the test collects from when it wants. */
class ManualReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

function telemetry() {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new ManualReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    exporter,
    tracer: tracerProvider.getTracer('test'),
    meter: meterProvider.getMeter('test'),
    /** Every metric data point by metric name. */
    async metrics(): Promise<Map<string, DataPoint<unknown>[]>> {
      const { resourceMetrics } = (await reader.collect()) as { resourceMetrics: ResourceMetrics }
      const out = new Map<string, DataPoint<unknown>[]>()
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) out.set(metric.descriptor.name, metric.dataPoints as DataPoint<unknown>[])
      }
      return out
    },
    async close() {
      await tracerProvider.shutdown()
      await meterProvider.shutdown()
    },
  }
}

const spanId = (span: ReadableSpan) => span.spanContext().spanId
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId

test('a scope is a span with db.system and db.namespace; its statements are client spans inside it', async () => {
  const { shard } = await makeShard({ storageOptions: { maxOpen: 1 } })
  await shard.tenants.create('acme')
  await shard.tenants.create('globex')
  const otel = telemetry()
  const stop = instrumentOpenTelemetry(shard, { tracer: otel.tracer, meter: otel.meter })

  await shard.withTenant('acme', async (t) => {
    await t.db.insertInto('documents').values({ title: 'a' }).execute()
    await t.db.selectFrom('documents').selectAll().execute()
    await sql`pragma journal_mode = wal`.execute(t.db).catch(() => undefined)
    // A nested scope is a child of this one.
    await shard.withTenant('globex', (u) => u.db.selectFrom('documents').selectAll().execute())
  })
  await assert.rejects(
    shard.withTenant('acme', async (t) => {
      await t.db.selectFrom('documents').selectAll().execute()
      throw new RangeError('boom')
    }),
    RangeError,
  )

  const spans = otel.exporter.getFinishedSpans()
  const scopes = spans.filter((s) => s.name === 'shardines.scope')
  assert.deepEqual(
    scopes.map((s) => [s.attributes['db.namespace'], s.status.code]),
    [
      ['globex', SpanStatusCode.UNSET],
      ['acme', SpanStatusCode.UNSET],
      ['acme', SpanStatusCode.ERROR],
    ],
    'in the order they ended',
  )
  const [globex, acme, failed] = scopes as [ReadableSpan, ReadableSpan, ReadableSpan]
  for (const scope of scopes) {
    assert.equal(scope.kind, SpanKind.INTERNAL)
    assert.equal(scope.attributes['db.system'], 'sqlite')
    assert.equal(scope.attributes['db.system.name'], 'sqlite')
    assert.equal(typeof scope.attributes['shardines.scope.acquire_ms'], 'number')
  }
  assert.equal(parentId(globex), spanId(acme), 'the nested scope is inside the outer one')
  assert.equal(parentId(acme), undefined)
  assert.equal(failed.attributes['error.type'], 'RangeError')
  assert.equal(failed.status.message, 'RangeError', 'the error code, never the message')

  const inside = (scope: ReadableSpan) =>
    spans
      .filter((s) => s.name !== 'shardines.scope' && parentId(s) === spanId(scope))
      .map((s) => [s.name, s.kind, s.attributes['db.namespace'], s.attributes['db.operation.name'], s.status.code])
  assert.deepEqual(inside(acme), [
    ['INSERT', SpanKind.CLIENT, 'acme', 'INSERT', SpanStatusCode.UNSET],
    ['SELECT', SpanKind.CLIENT, 'acme', 'SELECT', SpanStatusCode.UNSET],
    ['sqlite', SpanKind.CLIENT, 'acme', undefined, SpanStatusCode.ERROR],
  ])
  assert.deepEqual(inside(globex), [['SELECT', SpanKind.CLIENT, 'globex', 'SELECT', SpanStatusCode.UNSET]])
  assert.deepEqual(inside(failed), [['SELECT', SpanKind.CLIENT, 'acme', 'SELECT', SpanStatusCode.UNSET]])
  const refused = spans.find((s) => s.name === 'sqlite')!
  assert.equal(refused.attributes['error.type'], 'STATEMENT_REFUSED')
  // The refusal is also an event of the scope's span.
  assert.deepEqual(
    acme.events.map((e) => [e.name, e.attributes?.['shardines.refusal']]),
    [['shardines.guard.refusal', 'pragma']],
  )
  // Spans lie within their scope's time.
  for (const span of spans.filter((s) => parentId(s) === spanId(acme))) {
    const start = span.startTime[0] * 1e9 + span.startTime[1]
    const scopeStart = acme.startTime[0] * 1e9 + acme.startTime[1]
    assert.ok(start >= scopeStart - 1e6, `${span.name} starts inside its scope`)
  }
  // No row data, parameters or SQL anywhere.
  const all = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events]))
  assert.ok(!/insert into|"a"|journal_mode|boom/.test(all), all)

  stop()
  otel.exporter.reset()
  await shard.withTenant('acme', (t) => t.db.selectFrom('documents').selectAll().execute())
  assert.equal(otel.exporter.getFinishedSpans().length, 0, 'stop() ends the instrumentation')
  await otel.close()
  await shard.close()
})

test('metrics: open handles, hit ratio, miss latency, evictions, scopes, migrations and their progress, refusals', async () => {
  const { shard } = await makeShard({ storageOptions: { maxOpen: 2 } })
  const otel = telemetry()
  const stop = instrumentOpenTelemetry(shard, { tracer: otel.tracer, meter: otel.meter, statements: false })
  for (const id of ['a', 'b', 'c']) await shard.tenants.create(id)
  for (const id of ['a', 'a', 'a', 'b', 'c', 'c']) {
    await shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().execute())
  }
  await shard.withTenant('a', (t) => sql`attach 'x' as x`.execute(t.db)).catch(() => undefined)
  await shard.migrate.all({ runner: 'main-thread', concurrency: 1 })

  const m = await otel.metrics()
  const value = (name: string) => m.get(name)?.map((p) => p.value)
  assert.deepEqual(value('shardines.pool.handles.open'), [2])
  assert.deepEqual(value('shardines.pool.handles.pinned'), [0])
  const stats = shard.stats()
  assert.deepEqual(value('shardines.pool.hits'), [stats.hits])
  assert.deepEqual(value('shardines.pool.misses'), [stats.misses])
  assert.deepEqual(value('shardines.pool.evictions'), [stats.evictions])
  assert.ok(stats.evictions >= 1)
  assert.deepEqual(value('shardines.pool.hit_ratio'), [stats.hits / (stats.hits + stats.misses)])
  const missLatency = m.get('shardines.pool.miss.duration')![0]!.value as { count: number; sum: number }
  assert.equal(missLatency.count, stats.misses)
  assert.ok(missLatency.sum > 0)

  const scopes = m.get('shardines.scope.duration')!
  const byOutcome = Object.fromEntries(
    scopes.map((p) => [`${p.attributes['shardines.outcome']} ${p.attributes['error.type'] ?? ''}`.trim(), p.value]),
  ) as Record<string, { count: number }>
  assert.equal(byOutcome.ok!.count, 6)
  assert.equal(byOutcome['error STATEMENT_REFUSED']!.count, 1)
  for (const p of scopes) assert.equal(p.attributes['db.namespace'], undefined, 'no tenant id in metrics')

  assert.deepEqual(
    m.get('shardines.guard.refusals')!.map((p) => [p.attributes['shardines.refusal'], p.value]),
    [['attach', 1]],
  )
  const migrations = Object.fromEntries(
    m
      .get('shardines.migrations')!
      .map((p) => [`${p.attributes['shardines.trigger']} ${p.attributes['shardines.status']}`, p.value]),
  )
  assert.deepEqual(migrations, { 'create migrated': 3, 'all up-to-date': 3 })
  assert.deepEqual(value('shardines.migration.progress'), [1])
  assert.deepEqual(value('shardines.migration.pending'), [0])
  const lifecycle = m.get('shardines.lifecycle.duration')!
  assert.deepEqual(
    lifecycle.map((p) => [
      p.attributes['shardines.operation'],
      p.attributes['shardines.outcome'],
      (p.value as any).count,
    ]),
    [['create', 'ok', 3]],
  )
  stop()
  await otel.close()
  await shard.close()
})

test('without an SDK the global tracer and meter are no-ops: instrumenting changes nothing', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const stop = instrumentOpenTelemetry(shard)
  const rows = await shard.withTenant('acme', (t) => t.db.selectFrom('documents').selectAll().execute())
  assert.deepEqual(rows, [])
  stop()
  stop()
  await shard.close()
})
