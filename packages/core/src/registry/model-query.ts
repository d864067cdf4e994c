import { type SelectQueryBuilder, sql } from 'kysely'
import { InvalidOptionsError } from '../errors.js'
import { type IncludeTree, type LoadContext, loadRows, MAIN, ownAccess, parseIncludes } from './include-loader.js'
import type { ModelSpec } from './model-registry.js'
import type { WhereOperator } from './model-types.js'

type AnyQuery = SelectQueryBuilder<any, any, any>

/** One `where` condition, on the model's own table. */
export interface Condition {
  readonly column: string
  readonly op: WhereOperator
  readonly value: unknown
}

interface QueryState {
  readonly conditions: readonly Condition[]
  readonly order: readonly (readonly [string, 'asc' | 'desc'])[]
  readonly limit: number | undefined
  readonly offset: number | undefined
  readonly includes: readonly string[]
}

const EMPTY: QueryState = Object.freeze({
  conditions: Object.freeze([]),
  order: Object.freeze([]),
  limit: undefined,
  offset: undefined,
  includes: Object.freeze([]),
})

const OPERATORS: ReadonlySet<string> = new Set<WhereOperator>([
  '=',
  '!=',
  '<>',
  '<',
  '<=',
  '>',
  '>=',
  'like',
  'not like',
  'in',
  'not in',
  'is',
  'is not',
])

/** Turns `where(col, op, value)` / `where({ col: value })` arguments into conditions, checking them. */
export function conditionsOf(model: string, args: readonly unknown[]): Condition[] {
  if (args.length === 1) {
    const values = args[0]
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw new InvalidOptionsError(`${model}.where(...) takes (column, op, value) or ({ column: value }).`)
    }
    const out: Condition[] = []
    for (const [column, value] of Object.entries(values)) {
      if (value === undefined) continue
      out.push(
        value === null
          ? { column, op: 'is', value: null }
          : Array.isArray(value)
            ? { column, op: 'in', value }
            : { column, op: '=', value },
      )
    }
    return out
  }
  const [column, op, value] = args
  if (typeof column !== 'string' || column === '') {
    throw new InvalidOptionsError(`${model}.where(column, op, value): column must be a column name.`)
  }
  if (typeof op !== 'string' || !OPERATORS.has(op)) {
    throw new InvalidOptionsError(
      `${model}.where('${column}', ${JSON.stringify(op)}, …): unknown operator; use one of ${[...OPERATORS].join(' ')}.`,
    )
  }
  if ((op === 'in' || op === 'not in') && !Array.isArray(value)) {
    throw new InvalidOptionsError(`${model}.where('${column}', '${op}', values): values must be an array.`)
  }
  if (value === undefined) {
    throw new InvalidOptionsError(`${model}.where('${column}', '${op}', value): value is undefined; use null for NULL.`)
  }
  return [{ column, op: op as WhereOperator, value }]
}

/** Applies conditions to a query on the model's table (aliased {@link MAIN}). */
export function applyConditions(query: AnyQuery, conditions: readonly Condition[]): AnyQuery {
  let q = query
  for (const { column, op, value } of conditions) q = q.where(`${MAIN}.${column}`, op, value)
  return q
}

function checkCount(model: string, what: 'limit' | 'offset', n: unknown): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new InvalidOptionsError(`${model}.${what}(n): n must be a non-negative integer, not ${String(n)}.`)
  }
  return n
}

/**
 * The chainable query of a model: an immutable value (each call returns a new
 * one) that builds a Kysely query only when `all`, `first` or `count` runs.
 */
export class ModelQueryImpl {
  readonly #spec: ModelSpec
  readonly #ctx: LoadContext
  readonly #state: QueryState

  constructor(spec: ModelSpec, ctx: LoadContext, state: QueryState = EMPTY) {
    this.#spec = spec
    this.#ctx = ctx
    this.#state = state
  }

  #with(patch: Partial<QueryState>): ModelQueryImpl {
    return new ModelQueryImpl(this.#spec, this.#ctx, { ...this.#state, ...patch })
  }

  where(...args: unknown[]): ModelQueryImpl {
    return this.#with({ conditions: [...this.#state.conditions, ...conditionsOf(this.#spec.name, args)] })
  }

  orderBy(column: string, direction: 'asc' | 'desc' = 'asc'): ModelQueryImpl {
    if (typeof column !== 'string' || column === '') {
      throw new InvalidOptionsError(`${this.#spec.name}.orderBy(column, direction?): column must be a column name.`)
    }
    if (direction !== 'asc' && direction !== 'desc') {
      throw new InvalidOptionsError(
        `${this.#spec.name}.orderBy('${column}', ${JSON.stringify(direction)}): direction is 'asc' or 'desc'.`,
      )
    }
    return this.#with({ order: [...this.#state.order, [column, direction]] })
  }

  limit(n: number): ModelQueryImpl {
    return this.#with({ limit: checkCount(this.#spec.name, 'limit', n) })
  }

  offset(n: number): ModelQueryImpl {
    return this.#with({ offset: checkCount(this.#spec.name, 'offset', n) })
  }

  include(...names: string[]): ModelQueryImpl {
    // Checked now, so a typo fails where it is written.
    parseIncludes(this.#ctx.registry, this.#spec, names, new Map())
    return this.#with({ includes: [...this.#state.includes, ...names] })
  }

  all(): Promise<Record<string, unknown>[]> {
    return this.#load(this.#state.limit)
  }

  async first(): Promise<Record<string, unknown> | undefined> {
    const rows = await this.#load(1)
    return rows[0]
  }

  async count(): Promise<number> {
    const { conditions, limit, offset } = this.#state
    const { db } = ownAccess(this.#spec, this.#ctx.binding)
    let inner: AnyQuery = applyConditions(db.selectFrom(`${this.#spec.table} as ${MAIN}`), conditions)
    if (limit === undefined && offset === undefined) {
      const row = await inner.select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow()
      return Number(row.count)
    }
    inner = this.#window(inner.select(sql`1`.as('one')), limit)
    const row = await db.selectFrom(inner.as('__c')).select(sql<number>`count(*)`.as('count')).executeTakeFirstOrThrow()
    return Number(row.count)
  }

  #window(query: AnyQuery, limit: number | undefined): AnyQuery {
    let q = query
    const { offset } = this.#state
    // SQLite has no OFFSET without LIMIT: -1 means no limit.
    if (limit !== undefined) q = q.limit(limit)
    else if (offset !== undefined) q = q.limit(-1)
    if (offset !== undefined) q = q.offset(offset)
    return q
  }

  #load(limit: number | undefined): Promise<Record<string, unknown>[]> {
    const { conditions, order, includes } = this.#state
    const limitTo = limit !== undefined && this.#state.limit !== undefined ? Math.min(limit, this.#state.limit) : limit
    let tree: IncludeTree | undefined
    if (includes.length > 0) {
      const map = new Map()
      parseIncludes(this.#ctx.registry, this.#spec, includes, map)
      tree = map
    }
    return loadRows(
      this.#ctx,
      this.#spec,
      ownAccess(this.#spec, this.#ctx.binding),
      (query) => {
        let q = applyConditions(query, conditions)
        for (const [column, direction] of order) q = q.orderBy(`${MAIN}.${column}`, direction)
        return this.#window(q, limitTo)
      },
      tree,
    )
  }
}
