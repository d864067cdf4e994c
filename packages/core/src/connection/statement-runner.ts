import type { CompiledQuery, QueryResult } from 'kysely'
import { type AttachAwareCompiledQuery, REQUIRED_SCHEMAS } from '../attach/attach-query-compiler.js'
import { InvalidOptionsError, ShardinesClosedError, TenantBusyError, TenantScopeClosedError } from '../errors.js'
import { emitRefusal } from '../events/event-hub.js'
import { INTERNAL_GUARD } from '../guard/statement-guard.js'
import { isBusyError } from '../storage/sqlite-engine.js'
import { attachMissing } from './attachments.js'
import { type HandleBinding, inScope, loggerOf, mustWait } from './handle-binding.js'
import { whenNoTransaction } from './handle-state.js'

/**
 * Running statements on a binding: wait while another owner holds the handle,
 * refuse a closed scope, attach what the statement reads, run it through the
 * statement guard, and retry it off the event loop while another process
 * holds the file's lock. The fast path (a synchronous adapter, nothing to wait
 * for, no logger) settles in one promise.
 */

/**
 * A statement compiled once (a prepared query's template), run many times with
 * per-call parameters: the hot path passes its SQL and parameter array down
 * without building a {@link CompiledQuery} per call.
 */
export interface PreparedStatementSource {
  readonly sql: string
  /** The schemas the statement reads besides main (recorded by the ATTACH compiler). */
  readonly schemas: readonly string[] | undefined
  /** The full compiled query with these parameters, for the paths that need one (logging, async adapters). */
  compiledWith(parameters: readonly unknown[]): CompiledQuery
}

const identity = <T>(value: T): T => value
const firstRow = <R>(result: QueryResult<R>): R | undefined => result.rows[0]

/** Runs one statement on a binding for `owner` (see the module comment). */
export function executeOnBinding<R>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
): Promise<QueryResult<R>> {
  return executeMapped(binding, owner, query, identity as (result: QueryResult<R>) => QueryResult<R>)
}

/** {@link executeOnBinding} with the result mapped before the promise settles. */
export function executeMapped<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS])
    if (wait === undefined) {
      const handle = binding.handle
      if (loggerOf(binding) === null && handle.executeQuerySync !== undefined) {
        return Promise.resolve(map(handle.executeQuerySync<R>(query.sql, query.parameters, binding.guard)))
      }
    }
  } catch (error) {
    return fallBack(binding, owner, query, map, undefined, error)
  }
  return fallBack(binding, owner, query, map, wait)
}

/**
 * Runs a statement once what it waits for is done. The caller's frames are
 * captured before waiting and added to an error's stack (as Kysely's drivers
 * do): the statement then runs from a promise reaction, whose stack holds
 * only Shardines' and Kysely's frames.
 */
async function afterWait<R, T>(
  wait: Promise<void>,
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  const caller = callerFrames()
  try {
    await wait
    return await executeMapped(binding, owner, query, map)
  } catch (error) {
    throw withCallerStack(error, caller)
  }
}

/**
 * An Error holding the current frames, deep enough to reach the caller past
 * Kysely's and Shardines' own (V8 keeps 10 by default). Slow paths only.
 */
function callerFrames(): Error {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = Math.max(limit, 40)
  const caller = new Error()
  Error.stackTraceLimit = limit
  return caller
}

/** Appends the frames of `caller` (an Error made where the statement was asked for) to `error`'s stack. */
function withCallerStack(error: unknown, caller: Error): unknown {
  if (error instanceof Error && typeof error.stack === 'string' && caller.stack !== undefined) {
    error.stack += `\n${caller.stack.split('\n').slice(1).join('\n')}`
  }
  return error
}

/** The logged or asynchronous-adapter path (no waiting needed). */
async function runAsync<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  const { handle, label, guard } = binding
  const log = loggerOf(binding)
  try {
    if (log !== null) {
      if (handle.executeQuerySync !== undefined) {
        const run = () => handle.executeQuerySync!<R>(query.sql, query.parameters, guard)
        return map(log.timeSync(label, query, run, binding.scopeId))
      }
      return map(await log.time(label, query, () => handle.executeQuery<R>(query, guard), binding.scopeId))
    }
    return map(await handle.executeQuery<R>(query, guard))
  } catch (error) {
    if (isBusyError(error)) return await retryWhileBusy(binding, owner, query, map, error)
    emitRefusal(binding.events, label, error, binding.scopeId)
    throw error
  }
}

/**
 * Retries a statement that found the file locked by another connection, with
 * backoff (1 ms doubling to 50 ms), until the binding's busy timeout: each
 * wait is a timer, so other tenants' statements run meanwhile. The native
 * busy timeout stays short (the adapter's choice), which is what keeps a
 * locked tenant from freezing the event loop.
 */
async function retryWhileBusy<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
  first: unknown,
): Promise<T> {
  // Called synchronously where the statement was asked for: its frames are the caller's.
  const caller = callerFrames()
  try {
    return await retryLoop(binding, owner, query, map, first)
  } catch (error) {
    emitRefusal(binding.events, binding.label, error, binding.scopeId)
    throw withCallerStack(error, caller)
  }
}

async function retryLoop<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
  first: unknown,
): Promise<T> {
  // Inside an explicit transaction SQLite says a busy statement (other than COMMIT) must not be
  // retried: the transaction has to be rolled back (its caller's rollback does that).
  if (binding.state.inTransaction && !mustWait(binding, owner)) {
    const emit = binding.events === null ? null : binding.events.emit
    if (emit !== null) {
      emit({ type: 'busy:timeout', tenantId: binding.label, waitedMs: 0, inTransaction: true, ...inScope(binding) })
    }
    throw new TenantBusyError(binding.label, 0, { cause: first, inTransaction: true })
  }
  return pollLock(binding, () => executeOnce(binding, owner, query, map, true), first, true)
}

/**
 * Runs `attempt` again until it no longer finds the file locked by another
 * connection, or the binding's busy timeout passes (`TenantBusyError`). One
 * statement per handle polls, with backoff (1 ms doubling to 50 ms); the
 * others wait on it (`state.lockedOutside`) and try once it found the lock
 * free, so SQLite's short native wait is paid once per poll, not per waiter.
 * The holder of the handle's transaction polls on its own (`shared` false):
 * the other statements wait for its transaction anyway, and a statement
 * polling for them would in turn wait for that transaction.
 */
async function pollLock<T>(
  binding: HandleBinding,
  attempt: () => Promise<T>,
  first: unknown,
  shared: boolean,
): Promise<T> {
  const started = performance.now()
  if (binding.events === null) return pollUntilFree(binding, attempt, first, shared, started)
  // Reported (when someone listens): how long the statement waited, and how often it tried again.
  let attempts = 0
  const counted = (): Promise<T> => {
    attempts++
    return attempt()
  }
  const report = (timedOut: boolean): void => {
    const emit = binding.events === null ? null : binding.events.emit
    if (emit === null) return
    const waitedMs = performance.now() - started
    emit(
      timedOut
        ? { type: 'busy:timeout', tenantId: binding.label, waitedMs, inTransaction: false, ...inScope(binding) }
        : { type: 'busy:wait', tenantId: binding.label, waitedMs, attempts, ...inScope(binding) },
    )
  }
  try {
    const result = await pollUntilFree(binding, counted, first, shared, started)
    report(false)
    return result
  } catch (error) {
    report(error instanceof TenantBusyError)
    throw error
  }
}

async function pollUntilFree<T>(
  binding: HandleBinding,
  attempt: () => Promise<T>,
  first: unknown,
  shared: boolean,
  started: number,
): Promise<T> {
  const { state } = binding
  const left = () => binding.busyTimeout - (performance.now() - started)
  const busy = (cause: unknown) => new TenantBusyError(binding.label, performance.now() - started, { cause })
  let last = first
  for (;;) {
    if (left() <= 0) throw busy(last)
    const polling = shared ? state.lockedOutside : null
    if (polling !== null) {
      // Another statement polls this lock: wait for it (within our own deadline), and try once it is free.
      if (!(await Promise.race([polling, sleep(left()).then(() => false)]))) continue
      try {
        return await attempt()
      } catch (error) {
        if (!isBusyError(error)) throw error
        last = error
        continue
      }
    }
    // Nobody polls: this statement does, for everyone, until it runs or its deadline passes.
    let release: ((free: boolean) => void) | undefined
    if (shared) {
      state.lockedOutside = new Promise<boolean>((resolve) => {
        release = resolve
      })
    }
    let free = false
    try {
      for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
        if (left() <= 0) throw busy(last)
        await sleep(Math.min(delay, left()))
        if (binding.handle.closed) throw closedError(binding)
        try {
          const result = await attempt()
          free = true
          return result
        } catch (error) {
          if (!isBusyError(error)) {
            free = true
            throw error
          }
          last = error
        }
      }
    } finally {
      if (release !== undefined) {
        state.lockedOutside = null
        release(free)
      }
    }
  }
}

/** One attempt, after waiting for the handle like any statement (no busy retry of its own). */
async function executeOnce<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
  pastLock: boolean,
): Promise<T> {
  for (;;) {
    const wait = mayRun(binding, owner, (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS], pastLock)
    if (wait === undefined) break
    await wait
  }
  const { handle, label, guard } = binding
  const log = loggerOf(binding)
  if (handle.executeQuerySync !== undefined) {
    const run = () => handle.executeQuerySync!<R>(query.sql, query.parameters, guard)
    return map(log === null ? run() : log.timeSync(label, query, run, binding.scopeId))
  }
  return map(
    log === null
      ? await handle.executeQuery<R>(query, guard)
      : await log.time(label, query, () => handle.executeQuery<R>(query, guard), binding.scopeId),
  )
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

/** {@link executeMapped} for a prepared statement and one call's parameters. */
export function executePrepared<R, T>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
  map: (result: QueryResult<R>) => T,
): Promise<T> {
  const handle = binding.handle
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, source.schemas)
    if (wait === undefined && loggerOf(binding) === null && handle.executeQuerySync !== undefined) {
      return Promise.resolve(map(handle.executeQuerySync<R>(source.sql, parameters, binding.guard)))
    }
  } catch (error) {
    return fallBack(binding, owner, source.compiledWith(parameters), map, undefined, error)
  }
  // Waiting, logging or an asynchronous adapter: the general path, with a compiled query.
  return fallBack(binding, owner, source.compiledWith(parameters), map, wait)
}

/**
 * The first row of a prepared select with one call's parameters: the fastest
 * path there is. On a synchronous adapter with no logger and nothing to wait
 * for, the statement runs at once and the call settles in one promise.
 */
export function executePreparedFirst<R>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
): Promise<R | undefined> {
  const handle = binding.handle
  const map = firstRow as (result: QueryResult<R>) => R | undefined
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, source.schemas)
    if (wait === undefined && loggerOf(binding) === null && handle.executeTakeFirstSync !== undefined) {
      return Promise.resolve(handle.executeTakeFirstSync<R>(source.sql, parameters, binding.guard))
    }
  } catch (error) {
    return fallBack(binding, owner, source.compiledWith(parameters), map, undefined, error)
  }
  // Waiting, logging or an asynchronous adapter: the general path, with a compiled query.
  return fallBack(binding, owner, source.compiledWith(parameters), map, wait)
}

/** Like {@link executeMapped} for the first row of a select (`executeTakeFirst`). */
export function executeFirstRow<R>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
): Promise<R | undefined> {
  const handle = binding.handle
  const map = firstRow as (result: QueryResult<R>) => R | undefined
  let wait: Promise<void> | undefined
  try {
    wait = mayRun(binding, owner, (query as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS])
    if (wait === undefined && loggerOf(binding) === null && handle.executeTakeFirstSync !== undefined) {
      return Promise.resolve(handle.executeTakeFirstSync<R>(query.sql, query.parameters, binding.guard))
    }
  } catch (error) {
    return fallBack(binding, owner, query, map, undefined, error)
  }
  return fallBack(binding, owner, query, map, wait)
}

const NOT_THROWN: unique symbol = Symbol('not thrown')

/**
 * What every fast path above falls back to when it cannot settle at once: a
 * busy retry when the file was locked (`error`, a busy error; anything else
 * rejects), a wait for the handle, or the logged or asynchronous run.
 */
function fallBack<R, T>(
  binding: HandleBinding,
  owner: object,
  query: CompiledQuery,
  map: (result: QueryResult<R>) => T,
  wait: Promise<void> | undefined,
  error: unknown = NOT_THROWN,
): Promise<T> {
  if (error !== NOT_THROWN) {
    if (isBusyError(error)) return retryWhileBusy(binding, owner, query, map, error)
    emitRefusal(binding.events, binding.label, error, binding.scopeId)
    return Promise.reject(error)
  }
  return wait !== undefined ? afterWait(wait, binding, owner, query, map) : runAsync(binding, owner, query, map)
}

/**
 * Runs one of Shardines' own statements (transaction control, savepoints) for
 * the owner that holds the handle: no waiting, the internal guard, and the
 * same busy retry (a `BEGIN IMMEDIATE` or `COMMIT` may meet another process's lock).
 */
export function runInternal(binding: HandleBinding, query: CompiledQuery): Promise<QueryResult<unknown>> {
  const { handle, log, label } = binding
  if (handle.closed) return Promise.reject(closedError(binding))
  const once = (): Promise<QueryResult<unknown>> =>
    log === null
      ? handle.executeQuery(query, INTERNAL_GUARD)
      : log.time(label, query, () => handle.executeQuery(query, INTERNAL_GUARD))
  let first: Promise<QueryResult<unknown>>
  if (log === null && handle.executeQuerySync !== undefined) {
    // A synchronous adapter: one promise, as for any statement (the version check runs on every pool miss).
    try {
      return Promise.resolve(handle.executeQuerySync(query.sql, query.parameters, INTERNAL_GUARD))
    } catch (error) {
      first = Promise.reject(error)
    }
  } else {
    first = once()
  }
  return first.catch((error: unknown) => {
    if (!isBusyError(error)) throw error
    return pollLock(binding, once, error, false)
  })
}

/** What a statement on a closed handle gets: the instance's close, or the scope's end. */
export function closedError(binding: HandleBinding): Error {
  try {
    if (binding.isClosed?.() === true) return new TenantScopeClosedError(binding.label)
  } catch (error) {
    return error as Error
  }
  return new ShardinesClosedError()
}

/**
 * A prepared read run synchronously (`executeSync` / `executeTakeFirstSync`).
 * It never waits: when another owner holds the handle, it reads through the
 * adapter's separate read-only connection, which sees the last committed
 * state. Inside the holder's own async context it reads on the handle itself,
 * and so sees that transaction's rows.
 */
export function readPreparedSync<R>(
  binding: HandleBinding,
  owner: object,
  source: PreparedStatementSource,
  parameters: readonly unknown[],
  first: boolean,
): R[] | R | undefined {
  if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
  const { handle, label } = binding
  const log = loggerOf(binding)
  if (!binding.syncReads || handle.syncReader === undefined) {
    throw new InvalidOptionsError(
      `The storage adapter of "${label}" has no synchronous reads (it does not declare the syncReads capability, e.g. its statements run asynchronously): use await execute() / executeTakeFirst().`,
    )
  }
  const separate = mustWait(binding, owner)
  const reader = handle.syncReader(separate)
  const schemas = source.schemas
  if (schemas !== undefined) {
    if (separate) {
      for (const schema of schemas) if (!reader.attached.has(schema)) reader.attach(schema, binding.locate(schema))
    } else if (attachMissing(binding, schemas) !== undefined) {
      throw new InvalidOptionsError(
        `The storage adapter of "${label}" attaches asynchronously, so a synchronous read cannot use ${schemas.join(', ')}: use await execute().`,
      )
    }
  }
  const { sql } = source
  const guard = binding.guard
  try {
    if (log === null) return first ? reader.first<R>(sql, parameters, guard) : reader.all<R>(sql, parameters, guard)
    return log.timeSync(
      label,
      source.compiledWith(parameters),
      () => (first ? reader.first<R>(sql, parameters, guard) : reader.all<R>(sql, parameters, guard)),
      binding.scopeId,
    )
  } catch (error) {
    emitRefusal(binding.events, label, error, binding.scopeId)
    throw error
  }
}

/**
 * Whether the statement may run now (undefined), or what to wait for first
 * (another owner's transaction, an asynchronous attach); throws when refused.
 * From its return to the driver call nothing awaits, so no other owner can
 * take the handle in between: the handle runs statements in call order.
 */
export function mayRun(
  binding: HandleBinding,
  owner: object,
  schemas: readonly string[] | undefined,
  pastLock = false,
): Promise<void> | undefined {
  if (binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
  const state = binding.state
  const holder = state.txOwner
  if (holder !== null) {
    if (holder !== owner && !binding.inContextOf(holder)) return whenNoTransaction(state)
  } else if (state.lockedOutside !== null && !pastLock) {
    // Another process holds the file and a statement of ours is polling it: wait with it, off the event loop.
    return state.lockedOutside as Promise<unknown> as Promise<void>
  }
  if (state.pinned.size > 0) {
    const attaching = attachMissing(binding, [...state.pinned.keys()])
    if (attaching !== undefined) return attaching
  }
  if (schemas === undefined) return undefined
  // An asynchronous adapter attaches asynchronously; the statement runs after it.
  return attachMissing(binding, schemas) ?? undefined
}
