import { type SelectQueryBuilder, sql } from 'kysely'
import { InvalidOptionsError } from '../errors.js'
import { compilePrepared, type Params } from '../prepared/prepared-query.js'
import {
  type IncludeTree,
  type LoadContext,
  loadRows,
  MAIN,
  ownAccess,
  parseIncludes,
  runTemplate,
  type Shape,
  treeKey,
} from './include-loader.js'
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
  /** Include paths parsed into a tree, and its canonical key. */
  readonly tree: IncludeTree | undefined
  readonly treeKey: string
}

const EMPTY: QueryState = Object.freeze({
  conditions: Object.freeze([]),
  order: Object.freeze([]),
  limit: undefined,
  offset: undefined,
  tree: undefined,
  treeKey: '',
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

/**
 * The cache key and arguments of conditions, order and window, and how to
 * apply them with parameter slots (`p('v0')`…): values are bound at run time,
 * so one compiled statement serves every call of the same shape.
 */
export function shapeOf(
  conditions: readonly Condition[],
  order: readonly (readonly [string, 'asc' | 'desc'])[],
  limit: number | undefined,
  offset: number | undefined,
  prefix: string,
): Shape {
  let key = prefix
  const args: Record<string, unknown> = {}
  let n = 0
  const slots: (string | string[] | null)[] = []
  for (const { column, op, value } of conditions) {
    if (Array.isArray(value)) {
      const names = value.map((item) => {
        const name = `v${n++}`
        args[name] = item
        return name
      })
      slots.push(names)
      key += `w ${column} ${op} #${names.length};`
    } else if (value === null && (op === 'is' || op === 'is not')) {
      slots.push(null)
      key += `w ${column} ${op} null;`
    } else {
      const name = `v${n++}`
      args[name] = value
      slots.push(name)
      key += `w ${column} ${op} ?;`
    }
  }
  for (const [column, direction] of order) key += `o ${column} ${direction};`
  // SQLite has no OFFSET without LIMIT: -1 means no limit.
  if (limit !== undefined) {
    args.limit = limit
    key += 'l;'
  } else if (offset !== undefined) key += 'l-1;'
  if (offset !== undefined) {
    args.offset = offset
    key += 'o;'
  }
  return {
    key,
    args,
    apply(query: AnyQuery, p: Params<any>): AnyQuery {
      let q = query
      conditions.forEach(({ column, op }, i) => {
        const slot = slots[i]
        const value = slot === null ? null : Array.isArray(slot) ? slot.map((name) => p(name)) : p(slot as string)
        q = q.where(`${MAIN}.${column}`, op, value)
      })
      for (const [column, direction] of order) q = q.orderBy(`${MAIN}.${column}`, direction)
      if (limit !== undefined) q = q.limit(p('limit'))
      else if (offset !== undefined) q = q.limit(-1)
      if (offset !== undefined) q = q.offset(p('offset'))
      return q
    },
  }
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
    // Parsed (and checked) now, so a typo fails where it is written.
    const tree = new Map<string, Map<string, any>>()
    if (this.#state.tree !== undefined) mergeTree(tree, this.#state.tree)
    parseIncludes(this.#ctx.registry, this.#spec, names, tree)
    return this.#with({ tree, treeKey: treeKey(tree) })
  }

  // async: a failure to find the database (no scope, a closed instance) rejects, never throws.
  async all(): Promise<Record<string, unknown>[]> {
    return this.#load(this.#state.limit)
  }

  async first(): Promise<Record<string, unknown> | undefined> {
    const rows = await this.#load(this.#state.limit === undefined ? 1 : Math.min(1, this.#state.limit))
    return rows[0]
  }

  async count(): Promise<number> {
    const { conditions, limit, offset } = this.#state
    const access = ownAccess(this.#spec, this.#ctx.binding)
    const shape = shapeOf(conditions, [], limit, offset, 'count:')
    const table = this.#spec.table
    const template = this.#ctx.registry.template(`${this.#spec.kind}:${table}|${shape.key}`, () =>
      compilePrepared(
        access.db,
        (db, p) => {
          const inner = shape.apply(db.selectFrom(`${table} as ${MAIN}`), p)
          if (limit === undefined && offset === undefined) return inner.select(sql<number>`count(*)`.as('count'))
          return db.selectFrom(inner.select(sql`1`.as('one')).as('__c')).select(sql<number>`count(*)`.as('count'))
        },
        this.#ctx.registry.plugins,
      ),
    )
    const rows = await runTemplate(access, template, shape.args)
    return Number(rows[0]?.count ?? 0)
  }

  #load(limit: number | undefined): Promise<Record<string, unknown>[]> {
    const { conditions, order, offset, tree, treeKey } = this.#state
    return loadRows(
      this.#ctx,
      this.#spec,
      ownAccess(this.#spec, this.#ctx.binding),
      shapeOf(conditions, order, limit, offset, treeKey === '' ? '' : `i ${treeKey};`),
      tree,
    )
  }
}

function mergeTree(into: Map<string, Map<string, any>>, from: IncludeTree): void {
  for (const [name, sub] of from) {
    let next = into.get(name)
    if (next === undefined) {
      next = new Map()
      into.set(name, next)
    }
    mergeTree(next, sub)
  }
}
