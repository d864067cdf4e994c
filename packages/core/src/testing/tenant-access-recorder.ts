import { AssertionError } from 'node:assert'
import { AsyncLocalStorage } from 'node:async_hooks'
import { APEX, assertTenantId, InvalidOptionsError, type ShardinesLogEvent } from '../index.js'

/** One statement Shardines ran, as the access recorder saw it in the query log. */
export interface AccessedStatement {
  /**
   * The connection it ran on: a tenant id, `'apex'`, or `'withTenants(a, b)'`
   * for the read-only connection of `shard.withTenants`.
   */
  readonly ranOn: string
  /**
   * The databases it could read or write: the tenant (or each tenant of
   * `withTenants`), plus `'apex'` when it ran on apex or its SQL names an
   * `apex.` table (apex attached read-only to a tenant's connection).
   */
  readonly databases: readonly string[]
  /** The SQL, as compiled (parameters are not kept). */
  readonly sql: string
  /** Whether it failed (a log event of level `'error'`). */
  readonly failed: boolean
}

/** What a stretch of code touched: every statement in order, and the databases they reached. */
export interface TenantAccess {
  readonly statements: readonly AccessedStatement[]
  /** Every tenant id (and `'apex'`) in `statements[].databases`, sorted, once each. */
  readonly databases: readonly string[]
}

/** What {@link TenantAccessRecorder.capture} resolves to: the access, and what the function returned. */
export interface CapturedTenantAccess<T> extends TenantAccess {
  readonly result: T
}

/** Options of {@link expectOnlyTenant}. */
export interface ExpectOnlyTenantOptions {
  /**
   * Other databases the code may touch, e.g. `['apex']` for code that reads
   * the catalogue or joins apex tables. Default: none.
   */
  readonly allow?: readonly string[]
  /**
   * Pass when no statement ran on the tenant at all. Default false: a check
   * that saw nothing fails, since it usually means the recorder's `log` was
   * not given to `createShardines`.
   */
  readonly allowNone?: boolean
}

/** Options of {@link recordTenantAccess}. */
export interface RecordTenantAccessOptions {
  /** Also receives every log event, for the log function you would otherwise pass to `createShardines`. */
  readonly forward?: (event: ShardinesLogEvent) => void
}

/**
 * Records which tenants (and apex) the statements of a piece of code ran on,
 * from Shardines' query log. Pass {@link log} as `createShardines({ log })`.
 * Works with any test framework: it throws node:assert's `AssertionError`,
 * which node:test and vitest both report.
 */
export interface TenantAccessRecorder {
  /** The query-log listener: give it to `createShardines({ …, log: recorder.log })`. */
  readonly log: (event: ShardinesLogEvent) => void
  /**
   * Records the statements awaited inside `fn` (its async context: other
   * code running at the same time, such as concurrent tests, is not
   * counted) and resolves to them with `fn`'s result. Rejects with `fn`'s error.
   */
  capture<T>(fn: () => T | Promise<T>): Promise<CapturedTenantAccess<Awaited<T>>>
  /**
   * Runs `fn` like {@link capture} and checks that its statements touched
   * only `tenantId` (see {@link expectOnlyTenant}); resolves to `fn`'s
   * result. If `fn` throws, a touch of another tenant is reported first,
   * otherwise `fn`'s error.
   *
   * @example
   * ```ts
   * const notes = await access.expectOnlyTenant('acme', () =>
   *   shard.withTenant('acme', () => listNotes(shard, { limit: 10 })), { allow: ['apex'] })
   * ```
   */
  expectOnlyTenant<T>(
    tenantId: string,
    fn: () => T | Promise<T>,
    options?: ExpectOnlyTenantOptions,
  ): Promise<Awaited<T>>
  /**
   * Starts recording every statement of the instance, whatever runs it,
   * until {@link stop} (for code that does not run under one function, e.g.
   * an HTTP request served by the app). Restarting drops what was recorded.
   */
  start(): void
  /** Stops what {@link start} began and returns what ran in between. */
  stop(): TenantAccess
}

/**
 * Makes a {@link TenantAccessRecorder}.
 *
 * @example
 * ```ts
 * import { expectOnlyTenant, recordTenantAccess } from '@shardines/core/testing'
 *
 * const access = recordTenantAccess()
 * const shard = createShardines<ApexDB, TenantDB>({ storage, migrations, log: access.log })
 *
 * const seen = await access.capture(() => shard.withTenant('acme', (t) => t.db.selectFrom('documents').selectAll().execute()))
 * expectOnlyTenant(seen, 'acme')                 // passes
 * seen.databases                                 // ['acme']
 * ```
 */
export function recordTenantAccess(options: RecordTenantAccessOptions = {}): TenantAccessRecorder {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError('recordTenantAccess(options) takes an object: { forward? }.')
  }
  for (const key of Object.keys(options)) {
    if (key !== 'forward')
      throw new InvalidOptionsError(`Unknown recordTenantAccess option "${key}"; the option is forward.`)
  }
  if (options.forward !== undefined && typeof options.forward !== 'function') {
    throw new InvalidOptionsError('recordTenantAccess({ forward }) must be a function receiving each log event.')
  }
  return new TenantAccessRecorderImpl(options.forward)
}

/** The statements collected for one `capture`; nested captures also report to the outer ones. */
interface Frame {
  readonly statements: AccessedStatement[]
  readonly outer: Frame | undefined
}

class TenantAccessRecorderImpl implements TenantAccessRecorder {
  readonly #frames = new AsyncLocalStorage<Frame>()
  readonly #forward: ((event: ShardinesLogEvent) => void) | undefined
  #window: AccessedStatement[] | undefined
  /** Whether the log ever delivered an event (to explain an empty capture). */
  #connected = false
  readonly log: (event: ShardinesLogEvent) => void

  constructor(forward: ((event: ShardinesLogEvent) => void) | undefined) {
    this.#forward = forward
    // A bound arrow: the instance calls it as a plain function.
    this.log = (event) => this.#record(event)
  }

  #record(event: ShardinesLogEvent): void {
    this.#connected = true
    const statement = accessedStatement(event)
    this.#window?.push(statement)
    for (let frame = this.#frames.getStore(); frame !== undefined; frame = frame.outer) {
      frame.statements.push(statement)
    }
    this.#forward?.(event)
  }

  async capture<T>(fn: () => T | Promise<T>): Promise<CapturedTenantAccess<Awaited<T>>> {
    const frame: Frame = { statements: [], outer: this.#frames.getStore() }
    const result = await this.#frames.run(frame, async () => await fn())
    return Object.freeze({ ...accessOf(frame.statements), result })
  }

  async expectOnlyTenant<T>(
    tenantId: string,
    fn: () => T | Promise<T>,
    options: ExpectOnlyTenantOptions = {},
  ): Promise<Awaited<T>> {
    const frame: Frame = { statements: [], outer: this.#frames.getStore() }
    let result: Awaited<T>
    try {
      result = await this.#frames.run(frame, async () => await fn())
    } catch (error) {
      // A touch of another tenant matters more than the failure it may have caused.
      checkOnly(accessOf(frame.statements), tenantId, { ...options, allowNone: true }, this.#connected)
      throw error
    }
    checkOnly(accessOf(frame.statements), tenantId, options, this.#connected)
    return result
  }

  start(): void {
    this.#window = []
  }

  stop(): TenantAccess {
    const window = this.#window
    if (window === undefined) throw new InvalidOptionsError('The tenant access recorder was stopped without start().')
    this.#window = undefined
    return accessOf(window)
  }
}

/**
 * Throws node:assert's `AssertionError` unless every statement in `access`
 * touched only `tenantId` (and the databases in `options.allow`), listing
 * the other databases and the statements that reached them. Also fails when
 * no statement ran on `tenantId` at all, unless `options.allowNone`.
 *
 * @example
 * ```ts
 * access.start()
 * await app.request('/notes', { headers: { 'x-tenant': 'acme' } })
 * expectOnlyTenant(access.stop(), 'acme', { allow: ['apex'] })
 * ```
 */
export function expectOnlyTenant(access: TenantAccess, tenantId: string, options: ExpectOnlyTenantOptions = {}): void {
  checkOnly(access, tenantId, options, undefined)
}

function checkOnly(
  access: TenantAccess,
  tenantId: string,
  options: ExpectOnlyTenantOptions,
  connected: boolean | undefined,
): void {
  assertTenantId(tenantId)
  const allowed = new Set([tenantId, ...(options.allow ?? [])])
  const others = access.databases.filter((db) => !allowed.has(db))
  if (others.length > 0) {
    const offending = access.statements.filter((s) => s.databases.some((db) => !allowed.has(db)))
    const counts = others.map((db) => {
      const n = offending.filter((s) => s.databases.includes(db)).length
      return `"${db}" (${n} statement${n === 1 ? '' : 's'})`
    })
    const shown = offending.slice(0, 5).map((s) => `  [${s.ranOn}] ${oneLine(s.sql)}`)
    if (offending.length > shown.length) shown.push(`  … and ${offending.length - shown.length} more`)
    throw new AssertionError({
      message: `Expected only tenant "${tenantId}"${allowedNote(options)} to be touched, but the code also touched ${counts.join(', ')}:\n${shown.join('\n')}`,
      actual: access.databases,
      expected: [...allowed].sort(),
      operator: 'expectOnlyTenant',
    })
  }
  if (options.allowNone !== true && !access.statements.some((s) => s.databases.includes(tenantId))) {
    const hint =
      connected === false
        ? ' The recorder has received no log event at all: pass recorder.log to createShardines({ log }).'
        : ' (Pass { allowNone: true } if that is expected.)'
    throw new AssertionError({
      message: `Expected statements on tenant "${tenantId}", but none ran on it.${hint}`,
      actual: access.databases,
      expected: [tenantId],
      operator: 'expectOnlyTenant',
    })
  }
}

function allowedNote(options: ExpectOnlyTenantOptions): string {
  const allow = options.allow ?? []
  return allow.length === 0 ? '' : ` (and ${allow.map((a) => `"${a}"`).join(', ')})`
}

function accessOf(statements: readonly AccessedStatement[]): TenantAccess {
  const databases = new Set<string>()
  for (const s of statements) for (const db of s.databases) databases.add(db)
  return Object.freeze({
    statements: Object.freeze([...statements]),
    databases: Object.freeze([...databases].sort()),
  })
}

const WITH_TENANTS = /^withTenants\((.*)\)$/
/** `apex.` as a schema qualifier (quoted or not), not inside a longer name. */
const APEX_QUALIFIER = /(?<![\w$])["`[]?apex["`\]]?\s*\./i
/** String literals, removed before looking for the qualifier (`'x@apex.test'` is not a table). */
const STRING_LITERAL = /'(?:[^']|'')*'/g

function accessedStatement(event: ShardinesLogEvent): AccessedStatement {
  const sql = event.query.sql
  const ranOn = event.tenantId
  const databases = new Set<string>()
  const many = WITH_TENANTS.exec(ranOn)
  if (many !== null) {
    for (const id of many[1]!.split(',')) if (id.trim() !== '') databases.add(id.trim())
  } else {
    databases.add(ranOn)
  }
  if (ranOn !== APEX && APEX_QUALIFIER.test(sql.replace(STRING_LITERAL, "''"))) databases.add(APEX)
  return Object.freeze({ ranOn, databases: Object.freeze([...databases]), sql, failed: event.level === 'error' })
}

function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim()
  return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat
}
