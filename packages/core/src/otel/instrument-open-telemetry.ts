import {
  type Attributes,
  type Context,
  context,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import type { ShardinesEvent, StatementOperation } from '../events/shardines-event.js'
import type { Shardines } from '../shardines.js'

/**
 * Defaults of {@link instrumentOpenTelemetry}, stated once:
 * - the tracer and meter are the global ones (`trace.getTracer` /
 *   `metrics.getMeter` named `@shardines/core`): with no SDK registered they
 *   are no-ops;
 * - statement spans are on (`statements: true`): each statement of a scope
 *   is a client span inside its scope's span. They put every statement on
 *   the timed path and cost about a span each; turn them off to keep only
 *   scope spans and metrics;
 * - metric attributes never include the tenant id (one time series per
 *   tenant would grow without bound): spans carry it, as `db.namespace`.
 */
export interface OpenTelemetryOptions {
  /** Where spans go. Default: `trace.getTracer('@shardines/core')`. */
  readonly tracer?: Tracer
  /** Where metrics go. Default: `metrics.getMeter('@shardines/core')`. */
  readonly meter?: Meter
  /** A span per statement, inside its scope's span. Default true. */
  readonly statements?: boolean
}

const NAME = '@shardines/core'
const DB_SYSTEM = 'sqlite'
/** Span names of statements (OpenTelemetry's database conventions: the operation, in the database's words). */
const OPERATION_NAMES: Readonly<Record<StatementOperation, string | undefined>> = {
  select: 'SELECT',
  insert: 'INSERT',
  update: 'UPDATE',
  delete: 'DELETE',
  merge: 'MERGE',
  other: undefined,
}

/**
 * Reports a Shardines instance to OpenTelemetry through its events
 * (`shard.on`): a span per tenant scope (`shardines.scope`, with
 * `db.system = 'sqlite'` and `db.namespace` = the tenant id) and, inside it, a
 * client span per statement; guard refusals, busy waits and attaches as
 * events of the scope's span; and metrics of the handle pool (open and pinned
 * handles, hits, misses, evictions, hit ratio, miss latency), scopes,
 * migrations (per tenant, and the progress of `migrate.all`), lifecycle steps,
 * guard refusals and busy waits. Returns the function that stops it.
 *
 * `@opentelemetry/api` is an optional peer dependency of `@shardines/core`:
 * install it (and an SDK) to use this entry point.
 *
 * @example
 * ```ts
 * import { instrumentOpenTelemetry } from '@shardines/core/otel'
 * const stop = instrumentOpenTelemetry(shard)   // the global tracer and meter
 * // … on shutdown
 * stop()
 * ```
 */
export function instrumentOpenTelemetry(
  shard: Shardines<any, any, any>,
  options: OpenTelemetryOptions = {},
): () => void {
  const tracer = options.tracer ?? trace.getTracer(NAME)
  const meter = options.meter ?? metrics.getMeter(NAME)
  const statements = options.statements ?? true
  /** Open scope spans by `scopeId`. */
  const scopes = new Map<number, Span>()

  const scopeDuration = meter.createHistogram('shardines.scope.duration', {
    description: 'Duration of tenant scopes (withTenant), from start to release of the handle.',
    unit: 'ms',
  })
  const missDuration = meter.createHistogram('shardines.pool.miss.duration', {
    description: 'Time an acquisition took when the tenant handle was not open (open, pragmas, waits for a lock).',
    unit: 'ms',
  })
  const retries = meter.createCounter('shardines.pool.retries', {
    description: 'Opens tried again (a file locked by another process, or out of file descriptors).',
  })
  const migrationRuns = meter.createCounter('shardines.migrations', {
    description: 'Migration runs per database, by status and trigger.',
  })
  const migrationDuration = meter.createHistogram('shardines.migration.duration', {
    description: 'Duration of one database migration run.',
    unit: 'ms',
  })
  const lifecycleDuration = meter.createHistogram('shardines.lifecycle.duration', {
    description: 'Duration of tenant lifecycle steps (create, destroy, fork, backup, rename, archive, restore, rekey).',
    unit: 'ms',
  })
  const refusals = meter.createCounter('shardines.guard.refusals', {
    description: 'Statements refused by the ATTACH compiler or the statement guard.',
  })
  const busyWaits = meter.createHistogram('shardines.busy.wait.duration', {
    description: 'Waits for another connection’s lock, by outcome (ran, or timed out).',
    unit: 'ms',
  })

  const openHandles = meter.createObservableGauge('shardines.pool.handles.open', {
    description: 'Tenant handles open now.',
  })
  const pinnedHandles = meter.createObservableGauge('shardines.pool.handles.pinned', {
    description: 'Open tenant handles held by a running scope or transaction.',
  })
  const hitRatio = meter.createObservableGauge('shardines.pool.hit_ratio', {
    description: 'Acquisitions that found the handle open, over all acquisitions since start.',
    unit: '1',
  })
  const hits = meter.createObservableCounter('shardines.pool.hits', { description: 'Pool hits since start.' })
  const misses = meter.createObservableCounter('shardines.pool.misses', { description: 'Pool misses since start.' })
  const evictions = meter.createObservableCounter('shardines.pool.evictions', {
    description: 'Handles closed by the pool to make room since start.',
  })
  const migrationProgress = meter.createObservableGauge('shardines.migration.progress', {
    description: 'Tenants finished over tenants to migrate, in the current (or last) migrate.all.',
    unit: '1',
  })
  const migrationPending = meter.createObservableGauge('shardines.migration.pending', {
    description: 'Tenants not yet finished in the current (or last) migrate.all.',
  })
  let progress: { done: number; total: number } | undefined
  const observe = (result: import('@opentelemetry/api').BatchObservableResult): void => {
    let stats: ReturnType<typeof shard.stats>
    try {
      stats = shard.stats()
    } catch {
      return // closed
    }
    result.observe(openHandles, stats.open)
    result.observe(pinnedHandles, stats.pinned)
    result.observe(hits, stats.hits)
    result.observe(misses, stats.misses)
    result.observe(evictions, stats.evictions)
    const acquisitions = stats.hits + stats.misses
    if (acquisitions > 0) result.observe(hitRatio, stats.hits / acquisitions)
    if (progress !== undefined) {
      result.observe(migrationProgress, progress.total === 0 ? 1 : progress.done / progress.total)
      result.observe(migrationPending, progress.total - progress.done)
    }
  }
  const observables = [
    openHandles,
    pinnedHandles,
    hitRatio,
    hits,
    misses,
    evictions,
    migrationProgress,
    migrationPending,
  ]
  meter.addBatchObservableCallback(observe, observables)

  /** The context a scope's child belongs in: its scope's span, else whatever is active. */
  const within = (scopeId: number | undefined): Context => {
    const span = scopeId === undefined ? undefined : scopes.get(scopeId)
    return span === undefined ? context.active() : trace.setSpan(context.active(), span)
  }

  const onEvent = (event: ShardinesEvent): void => {
    switch (event.type) {
      case 'scope:start': {
        const span = tracer.startSpan(
          'shardines.scope',
          { kind: SpanKind.INTERNAL, attributes: databaseAttributes(event.tenantId) },
          within(event.parentScopeId),
        )
        scopes.set(event.scopeId, span)
        return
      }
      case 'scope:end': {
        const attributes: Attributes = { 'shardines.outcome': event.outcome }
        if (event.errorCode !== undefined) attributes['error.type'] = event.errorCode
        scopeDuration.record(event.durationMs, attributes)
        const span = scopes.get(event.scopeId)
        if (span === undefined) return
        scopes.delete(event.scopeId)
        span.setAttribute('shardines.scope.acquire_ms', event.acquireMs)
        if (event.outcome === 'error') {
          span.setAttribute('error.type', event.errorCode ?? 'UNKNOWN')
          span.setStatus({ code: SpanStatusCode.ERROR, message: event.errorCode })
        }
        span.end()
        return
      }
      case 'statement': {
        if (!statements) return
        const end = performance.now()
        const operation = OPERATION_NAMES[event.operation]
        const attributes = databaseAttributes(event.tenantId)
        if (operation !== undefined) attributes['db.operation.name'] = operation
        const span = tracer.startSpan(
          operation ?? DB_SYSTEM,
          { kind: SpanKind.CLIENT, startTime: end - event.durationMs, attributes },
          within(event.scopeId),
        )
        if (event.outcome === 'error') {
          span.setAttribute('error.type', event.errorCode ?? 'UNKNOWN')
          span.setStatus({ code: SpanStatusCode.ERROR, message: event.errorCode })
        }
        span.end(end)
        return
      }
      case 'attach':
        spanOf(event.scopeId)?.addEvent('shardines.attach', {
          'shardines.attach.schema': event.schema,
          'shardines.duration_ms': event.durationMs,
        })
        return
      case 'guard:refusal':
        refusals.add(1, { 'shardines.refusal': event.refusal, 'error.type': event.errorCode })
        spanOf(event.scopeId)?.addEvent('shardines.guard.refusal', {
          'shardines.refusal': event.refusal,
          'error.type': event.errorCode,
        })
        return
      case 'busy:wait':
      case 'busy:timeout': {
        const outcome = event.type === 'busy:wait' ? 'ran' : 'timeout'
        busyWaits.record(event.waitedMs, { 'shardines.outcome': outcome })
        spanOf(event.scopeId)?.addEvent(`shardines.${event.type.replace(':', '.')}`, {
          'shardines.waited_ms': event.waitedMs,
        })
        return
      }
      case 'pool:miss':
        missDuration.record(event.durationMs)
        return
      case 'pool:retry':
        retries.add(1, { 'shardines.reason': event.reason })
        return
      case 'migration': {
        const attributes: Attributes = { 'shardines.status': event.status, 'shardines.trigger': event.trigger }
        migrationRuns.add(1, attributes)
        migrationDuration.record(event.durationMs, attributes)
        if (event.progress !== undefined) progress = { ...event.progress }
        return
      }
      case 'pool:open':
      case 'pool:evict':
        // Counted by the pool (stats(): misses, evictions), observed above.
        return
      default: {
        // tenant:<operation>
        const attributes: Attributes = {
          'shardines.operation': event.type.slice('tenant:'.length),
          'shardines.outcome': event.outcome,
        }
        if (event.errorCode !== undefined) attributes['error.type'] = event.errorCode
        lifecycleDuration.record(event.durationMs, attributes)
      }
    }
  }

  const spanOf = (scopeId: number | undefined): Span | undefined =>
    scopeId === undefined ? undefined : scopes.get(scopeId)

  // Statement events are subscribed apart, and only when wanted: they put statements on the timed path.
  const types = [
    'scope:start',
    'scope:end',
    'attach',
    'guard:refusal',
    'busy:wait',
    'busy:timeout',
    'pool:miss',
    'pool:retry',
    'migration',
    'tenant:create',
    'tenant:destroy',
    'tenant:fork',
    'tenant:backup',
    'tenant:rename',
    'tenant:archive',
    'tenant:restore',
    'tenant:rekey',
    ...(statements ? (['statement'] as const) : []),
  ] as const
  const offs = types.map((type) => shard.on(type, onEvent as (event: ShardinesEvent) => void))
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    for (const off of offs) off()
    meter.removeBatchObservableCallback(observe, observables)
    // Scopes still running end their spans now (without an outcome) rather than never.
    for (const span of scopes.values()) span.end()
    scopes.clear()
  }
}

function databaseAttributes(tenantId: string): Attributes {
  return {
    'db.system': DB_SYSTEM,
    'db.system.name': DB_SYSTEM,
    'db.namespace': tenantId,
  }
}
