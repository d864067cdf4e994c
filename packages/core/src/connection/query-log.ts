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
  readonly #emit: (event: ShardinesLogEvent) => void
  readonly #queries: boolean
  readonly #errors: boolean

  constructor(config: ShardinesLogConfig) {
    if (typeof config === 'function') {
      this.#emit = config
      this.#queries = true
      this.#errors = true
    } else {
      this.#emit = printEvent
      this.#queries = config.includes('query')
      this.#errors = config.includes('error')
    }
  }

  time<T>(tenantId: string, query: CompiledQuery, run: () => Promise<T>): Promise<T> {
    const start = performance.now()
    let pending: Promise<T>
    try {
      pending = run()
    } catch (error) {
      this.#error(tenantId, query, start, error)
      throw error
    }
    return pending.then(
      (result) => {
        if (this.#queries) {
          this.#emit({ level: 'query', query, queryDurationMillis: performance.now() - start, tenantId })
        }
        return result
      },
      (error: unknown) => {
        this.#error(tenantId, query, start, error)
        throw error
      },
    )
  }

  /** {@link time} for a statement that runs synchronously. */
  timeSync<T>(tenantId: string, query: CompiledQuery, run: () => T): T {
    const start = performance.now()
    let result: T
    try {
      result = run()
    } catch (error) {
      this.#error(tenantId, query, start, error)
      throw error
    }
    if (this.#queries) {
      this.#emit({ level: 'query', query, queryDurationMillis: performance.now() - start, tenantId })
    }
    return result
  }

  #error(tenantId: string, query: CompiledQuery, start: number, error: unknown): void {
    if (this.#errors) {
      this.#emit({ level: 'error', error, query, queryDurationMillis: performance.now() - start, tenantId })
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
