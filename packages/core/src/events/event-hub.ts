import type { LogEvent, OperationNode } from 'kysely'
import { QueryLogger, type ShardinesLogConfig, type ShardinesLogEvent } from '../connection/query-log.js'
import { InvalidOptionsError, ReadOnlyAttachmentError, ShardinesError, StatementRefusedError } from '../errors.js'
import type { StoragePoolEvent } from '../storage/storage-adapter.js'
import {
  EVENT_TYPES,
  type ShardinesEvent,
  type ShardinesEventError,
  type ShardinesEventListener,
  type ShardinesEventType,
  type StatementOperation,
} from './shardines-event.js'

/**
 * The event stream of one instance (`shard.on`). Cost-free when nobody
 * listens: {@link emit} is `null` then, and every place that reports an event
 * checks it before reading a clock or building the event object, so an
 * instance without listeners pays one property read and a comparison per
 * place. Statements are timed only while someone listens to `'statement'`
 * (or `'*'`), through {@link statementLog}.
 *
 * Listeners run synchronously, in subscription order, where the event
 * happens. A listener that throws does not affect the operation or the other
 * listeners: its first error is reported once as a process warning
 * (`process.emitWarning`, type `ShardinesListenerWarning`, code
 * `SHARDINES_LISTENER_THREW`, the error as `cause`), later ones are dropped.
 */
export class EventHub {
  /** Dispatches an event to its listeners; `null` while nobody listens. */
  emit: ((event: ShardinesEvent) => void) | null = null
  /**
   * The logger statements are timed through while someone listens to
   * `'statement'` events (it also does the instance's own `log`); `null` otherwise.
   */
  statementLog: QueryLogger | null = null
  /** Copied on write: an unsubscribe during a dispatch does not disturb it. */
  #subscriptions: readonly Subscription[] = []
  readonly #log: ShardinesLogConfig | undefined
  readonly #observePool: ((listener: (event: StoragePoolEvent) => void) => () => void) | undefined
  #stopObservingPool: (() => void) | undefined
  readonly #dispatch = (event: ShardinesEvent): void => {
    for (const subscription of this.#subscriptions) {
      if (subscription.type !== '*' && subscription.type !== event.type) continue
      try {
        subscription.listener(event)
      } catch (error) {
        reportListenerError(subscription, event.type, error)
      }
    }
  }

  /**
   * `log` is the instance's `log` option (the statement logger keeps doing
   * it); `observePool` the storage adapter's, subscribed while anyone listens.
   */
  constructor(
    log: ShardinesLogConfig | undefined,
    observePool: ((listener: (event: StoragePoolEvent) => void) => () => void) | undefined,
  ) {
    this.#log = log
    this.#observePool = observePool
  }

  /** Subscribes `listener` to events of `type` (`'*'`: every event); returns the unsubscribe function. */
  on<K extends ShardinesEventType | '*'>(type: K, listener: ShardinesEventListener<K>): () => void {
    if (type !== '*' && !EVENT_TYPES.includes(type as ShardinesEventType)) {
      throw new InvalidOptionsError(
        `shard.on(${JSON.stringify(type)}, listener): unknown event type; the types are ${EVENT_TYPES.join(', ')} (or "*" for all).`,
      )
    }
    if (typeof listener !== 'function') {
      throw new InvalidOptionsError(`shard.on("${type}", listener) needs a function.`)
    }
    const subscription: Subscription = { type, listener: listener as (event: ShardinesEvent) => void, warned: false }
    this.#subscriptions = [...this.#subscriptions, subscription]
    this.#update()
    let subscribed = true
    return () => {
      if (!subscribed) return
      subscribed = false
      this.#subscriptions = this.#subscriptions.filter((s) => s !== subscription)
      this.#update()
    }
  }

  /** Drops every listener (the instance closed). */
  clear(): void {
    this.#subscriptions = []
    this.#update()
  }

  /** Sets the emitters (and the pool observation) from who listens now. */
  #update(): void {
    const any = this.#subscriptions.length > 0
    this.emit = any ? this.#dispatch : null
    const statements = this.#subscriptions.some((s) => s.type === '*' || s.type === 'statement')
    if (statements && this.statementLog === null) {
      this.statementLog = new QueryLogger(this.#log ?? [], (event, scopeId) =>
        this.#dispatch(statementEvent(event, scopeId)),
      )
    } else if (!statements) {
      this.statementLog = null
    }
    if (any && this.#stopObservingPool === undefined && this.#observePool !== undefined) {
      this.#stopObservingPool = this.#observePool(this.#dispatch)
    } else if (!any && this.#stopObservingPool !== undefined) {
      this.#stopObservingPool()
      this.#stopObservingPool = undefined
    }
  }
}

interface Subscription {
  readonly type: ShardinesEventType | '*'
  readonly listener: (event: ShardinesEvent) => void
  warned: boolean
}

function reportListenerError(subscription: Subscription, type: ShardinesEventType, error: unknown): void {
  if (subscription.warned) return
  subscription.warned = true
  const warning = new Error(
    `A shard.on("${subscription.type}") listener threw on a "${type}" event (${errorCodeOf(error)}); the operation went on. Later errors of this listener are not reported.`,
    { cause: error },
  )
  // An Error passed to emitWarning keeps its own name (the warning's type) and code.
  warning.name = 'ShardinesListenerWarning'
  ;(warning as Error & { code: string }).code = 'SHARDINES_LISTENER_THREW'
  process.emitWarning(warning)
}

/** How events name an error (see `ShardinesEventError`): never its message, which may quote data. */
export function errorCodeOf(error: unknown): ShardinesEventError {
  if (error instanceof ShardinesError) return error.code
  const code = (error as { code?: unknown } | null | undefined)?.code
  if (typeof code === 'string') return code
  if (error instanceof Error) return error.name
  return 'UNKNOWN'
}

/**
 * Reports a refusal of the ATTACH compiler or the statement guard as a
 * `guard:refusal` event (when someone listens); other errors are ignored.
 */
export function emitRefusal(events: EventHub | null, tenantId: string, error: unknown, scopeId = 0): void {
  const emit = events === null ? null : events.emit
  if (emit === null) return
  const scope = scopeId === 0 ? {} : { scopeId }
  if (error instanceof StatementRefusedError) {
    emit({
      type: 'guard:refusal',
      tenantId,
      errorCode: 'STATEMENT_REFUSED',
      refusal: error.kind,
      schema: error.schema,
      ...scope,
    })
  } else if (error instanceof ReadOnlyAttachmentError) {
    emit({
      type: 'guard:refusal',
      tenantId,
      errorCode: 'READ_ONLY_ATTACHMENT',
      refusal: 'write-attached',
      schema: error.schema,
      ...scope,
    })
  }
}

const OPERATIONS: Readonly<Record<string, StatementOperation>> = {
  SelectQueryNode: 'select',
  InsertQueryNode: 'insert',
  UpdateQueryNode: 'update',
  DeleteQueryNode: 'delete',
  MergeQueryNode: 'merge',
}

function statementEvent(event: ShardinesLogEvent, scopeId: number): ShardinesEvent {
  const node = (event as LogEvent).query.query as OperationNode | undefined
  const operation = (node !== undefined && OPERATIONS[node.kind]) || 'other'
  const base = {
    type: 'statement',
    tenantId: event.tenantId,
    operation,
    durationMs: event.queryDurationMillis,
  } as const
  const scope = scopeId === 0 ? {} : { scopeId }
  return event.level === 'query'
    ? { ...base, outcome: 'ok', ...scope }
    : { ...base, outcome: 'error', errorCode: errorCodeOf(event.error), ...scope }
}
