import { instrumentOpenTelemetry } from '@shardines/core/otel'
import type { NotesShard } from './shard.js'

/**
 * Tracing in development: with `SHARDINES_TRACE=console` (or `NODE_ENV=development`
 * and no `SHARDINES_TRACE`), every tenant scope and its statements are spans
 * printed to the console by OpenTelemetry's `ConsoleSpanExporter`, and the
 * pool's metrics (open handles, hit ratio, miss latency, migrations) are
 * printed every `SHARDINES_METRICS_INTERVAL_MS` (default 10 s).
 * `SHARDINES_TRACE=off` turns it off. In production, register your SDK's
 * exporter instead and call `instrumentOpenTelemetry(shard)` with its tracer and meter.
 *
 * Resolves to the function that stops it, or to undefined when it is off.
 */
export async function startTelemetry(
  shard: NotesShard,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<(() => Promise<void>) | undefined> {
  const mode = env.SHARDINES_TRACE ?? (env.NODE_ENV === 'development' ? 'console' : 'off')
  if (mode === 'off') return undefined
  if (mode !== 'console') throw new Error(`SHARDINES_TRACE must be "console" or "off", not ${JSON.stringify(mode)}.`)
  // Loaded only when tracing is on: the app starts without the SDK's modules otherwise.
  const { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } = await import(
    '@opentelemetry/sdk-trace-base'
  )
  const { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } = await import(
    '@opentelemetry/sdk-metrics'
  )
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
  })
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new ConsoleMetricExporter(),
        exportIntervalMillis: Number(env.SHARDINES_METRICS_INTERVAL_MS ?? 10_000),
      }),
    ],
  })
  const stop = instrumentOpenTelemetry(shard, {
    tracer: tracerProvider.getTracer('notes-saas'),
    meter: meterProvider.getMeter('notes-saas'),
  })
  return async () => {
    stop()
    await tracerProvider.shutdown()
    await meterProvider.shutdown()
  }
}
