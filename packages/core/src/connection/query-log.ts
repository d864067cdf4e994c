import type { CompiledQuery, LogEvent, LogLevel } from 'kysely'

/** A Kysely log event plus the database it ran on: a tenant id or `'apex'`. */
export type ShardinesLogEvent = LogEvent & { readonly tenantId: string }

/**
 * The `log` option, shaped like Kysely's: a list of levels to print
 * (`['query', 'error']`) or a function that receives every event.
 */
export type ShardinesLogConfig = ReadonlyArray<LogLevel> | ((event: ShardinesLogEvent) => void)

/** Times statements and reports them with the tenant they ran on. */
export class QueryLogger {
  readonly #emit: (event: ShardinesLogEvent, scopeId: number) => void
  readonly #queries: boolean
  readonly #errors: boolean

  /**
   * `tap`, when given, also receives every event, whatever `config` prints
   * (`statement` events), with the `scopeId` the statement's caller passed.
   */
  constructor(config: ShardinesLogConfig, tap?: (event: ShardinesLogEvent, scopeId: number) => void) {
    if (tap !== undefined) {
      const inner = new QueryLogger(config)
      this.#emit = (event, scopeId) => {
        inner.#report(event)
        tap(event, scopeId)
      }
      this.#queries = true
      this.#errors = true
    } else if (typeof config === 'function') {
      // Only the event: a user's function (console.log, say) must not get the scope id too.
      this.#emit = (event) => config(event)
      this.#queries = true
      this.#errors = true
    } else {
      this.#emit = printEvent
      this.#queries = config.includes('query')
      this.#errors = config.includes('error')
    }
  }

  /** Times `run`; `scopeId` (the observed scope the statement ran in, 0 for none) goes to the tap only. */
  time<T>(tenantId: string, query: CompiledQuery, run: () => Promise<T>, scopeId = 0): Promise<T> {
    const start = performance.now()
    let pending: Promise<T>
    try {
      pending = run()
    } catch (error) {
      this.#error(tenantId, query, start, error, scopeId)
      throw error
    }
    return pending.then(
      (result) => {
        if (this.#queries) {
          this.#emit({ level: 'query', query, queryDurationMillis: performance.now() - start, tenantId }, scopeId)
        }
        return result
      },
      (error: unknown) => {
        this.#error(tenantId, query, start, error, scopeId)
        throw error
      },
    )
  }

  /** {@link time} for a statement that runs synchronously. */
  timeSync<T>(tenantId: string, query: CompiledQuery, run: () => T, scopeId = 0): T {
    const start = performance.now()
    let result: T
    try {
      result = run()
    } catch (error) {
      this.#error(tenantId, query, start, error, scopeId)
      throw error
    }
    if (this.#queries) {
      this.#emit({ level: 'query', query, queryDurationMillis: performance.now() - start, tenantId }, scopeId)
    }
    return result
  }

  /** Passes an event on, if its level is reported. */
  #report(event: ShardinesLogEvent): void {
    if (event.level === 'query' ? this.#queries : this.#errors) this.#emit(event, 0)
  }

  #error(tenantId: string, query: CompiledQuery, start: number, error: unknown, scopeId: number): void {
    if (this.#errors) {
      this.#emit({ level: 'error', error, query, queryDurationMillis: performance.now() - start, tenantId }, scopeId)
    }
  }
}

function printEvent(event: ShardinesLogEvent): void {
  const ms = event.queryDurationMillis.toFixed(2)
  if (event.level === 'query') {
    console.log(`shardines:query [${event.tenantId}] ${event.query.sql} (${ms} ms)`)
  } else {
    console.error(`shardines:error [${event.tenantId}] ${event.query.sql} (${ms} ms)`, event.error)
  }
}
