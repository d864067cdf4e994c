import {
  type Compilable,
  type CompiledQuery,
  DeleteResult,
  InsertResult,
  type KyselyPlugin,
  type QueryResult,
  type RootOperationNode,
  UpdateResult,
} from 'kysely'
import { type AttachAwareCompiledQuery, REQUIRED_SCHEMAS } from '../attach/attach-query-compiler.js'
import { InvalidOptionsError } from '../errors.js'

/** The placeholder `p(name)` puts into a query; bound to `args[name]` at each execution. */
export class ParamMarker {
  readonly name: string
  constructor(name: string) {
    this.name = name
  }
}

/**
 * The `p` of `prepare((db, p) => …)`: `p('id')` stands for the value given as
 * `{ id }` when the prepared query runs. Declare the parameters' types by
 * annotating it, `(db, p: Params<{ id: number }>) => …`: then `p('idd')` and a
 * missing or mistyped argument do not compile.
 */
export type Params<Args> = <K extends keyof Args & string>(name: K) => Args[K]

/** The arguments of `execute`: optional when the query has no parameters. */
export type PreparedArgs<Args> = {} extends Args ? [args?: Args] : [args: Args]

/**
 * A query compiled once and run many times: in whichever tenant the scope
 * names (`shard.prepare`) or on apex (`shard.prepareApex`), through each
 * handle's statement cache, with no query building or compiling per call.
 */
export interface PreparedQuery<Args, O> {
  /** The SQL, compiled once at prepare time. */
  readonly sql: string
  /** Runs the query and returns every row (or, for writes without `returning`, Kysely's result object). */
  execute(...args: PreparedArgs<Args>): Promise<O[]>
  /** The first row, or `undefined`. */
  executeTakeFirst(...args: PreparedArgs<Args>): Promise<O | undefined>
}

/** Builds the call-time {@link CompiledQuery} quickly: the parameter slots are found once. */
export class PreparedTemplate {
  readonly compiled: CompiledQuery
  readonly #slots: readonly number[]
  readonly #names: readonly string[]
  readonly #kind: RootOperationNode['kind']
  readonly #returnsRows: boolean
  readonly #plugins: readonly KyselyPlugin[]

  constructor(compiled: CompiledQuery, plugins: readonly KyselyPlugin[]) {
    this.compiled = compiled
    const slots: number[] = []
    const names: string[] = []
    compiled.parameters.forEach((value, index) => {
      if (value instanceof ParamMarker) {
        slots.push(index)
        names.push(value.name)
      }
    })
    this.#slots = slots
    this.#names = names
    this.#kind = compiled.query.kind
    const node = compiled.query as { returning?: unknown }
    this.#returnsRows = this.#kind === 'SelectQueryNode' || this.#kind === 'RawNode' || node.returning !== undefined
    this.#plugins = plugins.filter((plugin) => typeof plugin.transformResult === 'function')
  }

  /** The compiled query with this call's values in the parameter slots. */
  bind(args: Readonly<Record<string, unknown>> | undefined): CompiledQuery {
    const slots = this.#slots
    if (slots.length === 0) return this.compiled
    const parameters = this.compiled.parameters.slice()
    for (let i = 0; i < slots.length; i++) {
      const name = this.#names[i] as string
      const value = args?.[name]
      if (value === undefined) {
        throw new InvalidOptionsError(
          `The prepared query needs a value for parameter "${name}" (got ${args === undefined ? 'no arguments' : 'undefined'}).`,
        )
      }
      parameters[slots[i] as number] = value
    }
    // A fixed-shape literal (cheaper than a spread); attachment needs carry over.
    const { query, queryId, sql } = this.compiled
    const schemas = (this.compiled as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS]
    return schemas === undefined
      ? { query, queryId, sql, parameters }
      : ({ query, queryId, sql, parameters, [REQUIRED_SCHEMAS]: schemas } as CompiledQuery)
  }

  /** Whether the statement returns rows (a select, or a write with `returning`). */
  get returnsRows(): boolean {
    return this.#returnsRows
  }

  /** Whether result plugins (e.g. CamelCasePlugin) must see the rows. */
  get transformsResults(): boolean {
    return this.#plugins.length > 0
  }

  /** Runs the result plugins, then {@link rows}. */
  async transformedRows<O>(result: QueryResult<unknown>): Promise<O[]> {
    let transformed = result
    for (const plugin of this.#plugins) {
      transformed = await plugin.transformResult({
        result: transformed as QueryResult<any>,
        queryId: this.compiled.queryId,
      })
    }
    return this.rows<O>(transformed)
  }

  /** Turns the driver's result into what Kysely's `execute()` would return. */
  rows<O>(result: QueryResult<unknown>): O[] {
    if (this.#returnsRows) return result.rows as O[]
    const affected = result.numAffectedRows ?? 0n
    switch (this.#kind) {
      case 'InsertQueryNode':
        return [new InsertResult(result.insertId, affected) as O]
      case 'UpdateQueryNode':
        return [new UpdateResult(affected, result.numChangedRows) as O]
      case 'DeleteQueryNode':
        return [new DeleteResult(affected) as O]
      default:
        return result.rows as O[]
    }
  }
}

/** Compiles `build(db, p)` once; `db` is a compile-only Kysely. */
export function compilePrepared<DB>(
  db: DB,
  build: (db: DB, p: Params<any>) => Compilable<unknown>,
  plugins: readonly KyselyPlugin[],
): PreparedTemplate {
  const p: Params<any> = (name: string) => {
    if (typeof name !== 'string' || name === '') {
      throw new InvalidOptionsError('p(name) needs a non-empty parameter name.')
    }
    return new ParamMarker(name)
  }
  const query = build(db, p)
  if (query === null || typeof query !== 'object' || typeof (query as Compilable).compile !== 'function') {
    throw new InvalidOptionsError(
      'prepare(build): build(db, p) must return a Kysely query builder (something with compile()).',
    )
  }
  return new PreparedTemplate(query.compile(), plugins)
}

/**
 * Runs a bound query and maps its result, at call time in the right place (the
 * current scope, or apex); `map` runs before the returned promise settles.
 */
export interface PreparedRunner {
  run<T>(query: CompiledQuery, map: (result: QueryResult<unknown>) => T): Promise<T>
  /** The first row of a select, through the adapter's single-row fast path where it has one. */
  first<T>(query: CompiledQuery): Promise<T | undefined>
}

/** A prepared query bound to a way of running it (`run` finds the scope at call time). */
export function createPreparedQuery<Args, O>(template: PreparedTemplate, run: PreparedRunner): PreparedQuery<Args, O> {
  const toRows = (result: QueryResult<unknown>): O[] => template.rows<O>(result)
  const start = <T>(args: Args | undefined, map: (result: QueryResult<unknown>) => T): Promise<T> => {
    try {
      return run.run(template.bind(args as Record<string, unknown> | undefined), map)
    } catch (error) {
      return Promise.reject(error)
    }
  }
  const first = (args: Args | undefined): Promise<O | undefined> => {
    try {
      return run.first<O>(template.bind(args as Record<string, unknown> | undefined))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  const execute = (args?: Args): Promise<O[]> =>
    template.transformsResults
      ? start(args, identity).then((result) => template.transformedRows<O>(result))
      : start(args, toRows)
  const executeTakeFirst = (args?: Args): Promise<O | undefined> =>
    template.transformsResults || !template.returnsRows ? execute(args).then((rows) => rows[0]) : first(args)
  return Object.freeze({
    sql: template.compiled.sql,
    execute: execute as PreparedQuery<Args, O>['execute'],
    executeTakeFirst: executeTakeFirst as PreparedQuery<Args, O>['executeTakeFirst'],
  })
}

const identity = <T>(value: T): T => value
