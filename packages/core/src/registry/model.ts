import type { Kysely } from 'kysely'
import { InvalidOptionsError, NoTenantError, RecordNotFoundError } from '../errors.js'
import { compilePrepared, type Params, type PreparedTemplate, runFirstRow } from '../prepared/prepared-query.js'
import type { LoadContext } from './include-loader.js'
import { conditionsOf, ModelQueryImpl } from './model-query.js'
import type { ModelBinding, ModelRegistry, ModelSide, ModelSpec } from './model-registry.js'

type Row = Record<string, unknown>

/** Rows per insert statement in `createMany` (well under SQLite's bound-parameter limit for wide tables). */
const CREATE_MANY_CHUNK = 500

/**
 * The object behind `t.models.X` / `shard.models.X`: one model bound to one
 * scope (or to apex). Cheap to make; the compiled statements it runs (find by
 * key, count, findBy shapes) are compiled once per instance and shared.
 */
export class ModelImpl {
  readonly name: string
  readonly #spec: ModelSpec
  readonly #registry: ModelRegistry
  readonly #binding: ModelBinding

  constructor(spec: ModelSpec, registry: ModelRegistry, binding: ModelBinding) {
    this.name = spec.name
    this.#spec = spec
    this.#registry = registry
    this.#binding = binding
  }

  /** Tenanted models run on the scope's tenant, apex models on apex, whatever the scope. */
  #side(): ModelSide {
    if (this.#spec.kind === 'apex') return this.#binding.apex
    if (this.#binding.tenant === null) throw new NoTenantError(`the tenanted model ${this.name}`)
    return this.#binding.tenant
  }

  #db(): Kysely<any> {
    return this.#side().db()
  }

  #ctx(): LoadContext {
    return { registry: this.#registry, binding: this.#binding }
  }

  #query(): ModelQueryImpl {
    return new ModelQueryImpl(this.#spec, this.#ctx())
  }

  /** A statement compiled once per instance and model (the SQL is the same for every tenant). */
  #template(key: string, build: (db: Kysely<any>, p: Params<any>) => any): PreparedTemplate {
    return this.#registry.template(`${this.#spec.kind}:${this.name}:${key}`, () =>
      compilePrepared(this.#db(), build, this.#registry.plugins),
    )
  }

  /**
   * Runs a compiled template on this model's database and returns its first
   * row: the one place where find-by-key (and count, findBy) execute, through
   * the prepared-query machinery of `shard.prepare` (the handle's statement
   * cache, one promise on a synchronous adapter).
   */
  #runFirst(template: PreparedTemplate, args: Record<string, unknown>): Promise<Row | undefined> {
    let side: ModelSide
    try {
      side = this.#side()
    } catch (error) {
      return Promise.reject(error)
    }
    return runFirstRow<Row>(side.runner, template, args)
  }

  #checkKey(method: string, id: unknown): void {
    if (id === undefined || id === null) {
      throw new InvalidOptionsError(
        `${this.name}.${method}(id) needs a value of the primary key "${this.#spec.primaryKey}", got ${String(id)}.`,
      )
    }
  }

  find(id: unknown): Promise<Row | undefined> {
    // Not async (one promise less on the hot path), so every throw becomes a rejection here.
    try {
      this.#checkKey('find', id)
      return this.#findByKey(id)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Find by primary key: the seam where a prepared statement runs (see {@link #runFirst}). */
  #findByKey(id: unknown): Promise<Row | undefined> {
    // Looked up by spec, not by a key string built per call: find is the hottest read there is.
    const template = this.#registry.findTemplate(this.#spec, () => {
      const { table, primaryKey } = this.#spec
      return compilePrepared(
        this.#db(),
        (db, p) => db.selectFrom(table).selectAll().where(primaryKey, '=', p('key')),
        this.#registry.plugins,
      )
    })
    return this.#runFirst(template, { key: id })
  }

  async findOrThrow(id: unknown): Promise<Row> {
    const row = await this.find(id)
    if (row === undefined) {
      throw new RecordNotFoundError(this.name, id, this.#spec.kind === 'tenanted' ? this.#binding.tenantId : undefined)
    }
    return row
  }

  findBy(values: unknown): Promise<Row | undefined> {
    try {
      return this.#findBy(values)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  #findBy(values: unknown): Promise<Row | undefined> {
    const conditions = conditionsOf(this.name, [values])
    if (conditions.some((c) => c.op === 'in')) {
      return this.#query().where(values).first()
    }
    const shape = conditions.map((c) => `${c.column}${c.op === 'is' ? ' is null' : ''}`).join('\u0000')
    const cacheKey = `findBy:${shape}`
    const { table } = this.#spec
    const template = this.#template(cacheKey, (db, p) => {
      let q = db.selectFrom(table).selectAll()
      conditions.forEach((c, i) => {
        q = c.op === 'is' ? q.where(c.column, 'is', null) : q.where(c.column, '=', p(`v${i}`))
      })
      return q.limit(1)
    })
    const args: Record<string, unknown> = {}
    conditions.forEach((c, i) => {
      if (c.op !== 'is') args[`v${i}`] = c.value
    })
    return this.#runFirst(template, args)
  }

  async all(): Promise<Row[]> {
    return this.#query().all()
  }

  where(...args: unknown[]): ModelQueryImpl {
    return this.#query().where(...args)
  }

  orderBy(column: string, direction?: 'asc' | 'desc'): ModelQueryImpl {
    return this.#query().orderBy(column, direction)
  }

  limit(n: number): ModelQueryImpl {
    return this.#query().limit(n)
  }

  offset(n: number): ModelQueryImpl {
    return this.#query().offset(n)
  }

  include(...names: string[]): ModelQueryImpl {
    return this.#query().include(...names)
  }

  async count(): Promise<number> {
    const template = this.#template('count', (db) =>
      db.selectFrom(this.#spec.table).select((eb: any) => eb.fn.countAll().as('count')),
    )
    const row = await this.#runFirst(template, {})
    return Number(row?.count ?? 0)
  }

  async create(values: unknown): Promise<Row> {
    this.#checkValues('create', values)
    return (await this.#db()
      .insertInto(this.#spec.table)
      .values(values as Row)
      .returningAll()
      .executeTakeFirstOrThrow()) as Row
  }

  async createMany(rows: unknown): Promise<Row[]> {
    if (!Array.isArray(rows)) {
      throw new InvalidOptionsError(`${this.name}.createMany(rows) needs an array of rows.`)
    }
    for (const row of rows) this.#checkValues('createMany', row)
    if (rows.length === 0) return []
    const db = this.#db()
    const insert = async (trx: Kysely<any>): Promise<Row[]> => {
      const out: Row[] = []
      for (let i = 0; i < rows.length; i += CREATE_MANY_CHUNK) {
        const inserted = await trx
          .insertInto(this.#spec.table)
          .values(rows.slice(i, i + CREATE_MANY_CHUNK))
          .returningAll()
          .execute()
        for (const row of inserted) out.push(row as Row)
      }
      return out
    }
    // Several statements: all or nothing (inside a transaction already, that one decides).
    if (rows.length <= CREATE_MANY_CHUNK || db.isTransaction) return insert(db)
    return db.transaction().execute(insert)
  }

  async update(id: unknown, patch: unknown): Promise<Row | undefined> {
    this.#checkKey('update', id)
    this.#checkValues('update', patch)
    const set = Object.fromEntries(Object.entries(patch as Row).filter(([, value]) => value !== undefined))
    if (Object.keys(set).length === 0) return this.find(id)
    return (await this.#db()
      .updateTable(this.#spec.table)
      .set(set)
      .where(this.#spec.primaryKey, '=', id)
      .returningAll()
      .executeTakeFirst()) as Row | undefined
  }

  async delete(id: unknown): Promise<boolean> {
    this.#checkKey('delete', id)
    const result = await this.#db()
      .deleteFrom(this.#spec.table)
      .where(this.#spec.primaryKey, '=', id)
      .executeTakeFirst()
    return result.numDeletedRows > 0n
  }

  query(): unknown {
    return this.#db().selectFrom(this.#spec.table)
  }

  #checkValues(method: string, values: unknown): void {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw new InvalidOptionsError(`${this.name}.${method}(…) needs an object of column values.`)
    }
  }
}
