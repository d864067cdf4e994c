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
import type { PreparedStatementSource } from '../connection/statement-runner.js'
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
  /**
   * {@link execute} for reads, synchronously (adapters with synchronous
   * reads: better-sqlite3's). It never waits: when another scope's transaction
   * is open on the tenant, it reads on a separate read-only connection and
   * sees the last committed rows; inside the scope's own transaction it sees
   * that transaction's rows. Only for read-only statements (a select, or raw
   * SQL starting with `select`/`with`/`values` that writes nothing); errors
   * are thrown, not returned as rejections.
   */
  executeSync(...args: PreparedArgs<Args>): O[]
  /** {@link executeTakeFirst}, synchronously: see {@link executeSync}. */
  executeTakeFirstSync(...args: PreparedArgs<Args>): O | undefined
}

/**
 * A query compiled once, with what running it needs precomputed: the SQL, the
 * schemas to attach, and a builder for each call's parameter array. The hot
 * path passes `(template, parameters)` down to the handle; a full
 * {@link CompiledQuery} is built only where one is needed (query logging,
 * asynchronous adapters).
 */
export class PreparedTemplate implements PreparedStatementSource {
  readonly compiled: CompiledQuery
  readonly sql: string
  readonly schemas: readonly string[] | undefined
  /**
   * This call's parameter array, with the arguments in the `p(name)` slots;
   * throws {@link InvalidOptionsError} when an argument is missing.
   */
  readonly parameters: (args: Readonly<Record<string, unknown>> | undefined) => readonly unknown[]
  /** Whether `executeTakeFirst` can take the single-row path (a row-returning statement, no result plugins). */
  readonly firstRowPath: boolean
  /**
   * Why `executeSync` refuses this query, or undefined when it may run: only
   * reads qualify (and the adapter still checks that the statement writes
   * nothing), and result plugins cannot run synchronously.
   */
  readonly syncRefusal: string | undefined
  readonly #kind: RootOperationNode['kind']
  readonly #returnsRows: boolean
  readonly #plugins: readonly KyselyPlugin[]

  constructor(compiled: CompiledQuery, plugins: readonly KyselyPlugin[]) {
    this.compiled = compiled
    this.sql = compiled.sql
    this.schemas = (compiled as AttachAwareCompiledQuery)[REQUIRED_SCHEMAS]
    const fixed = compiled.parameters
    this.parameters = fixed.some((value) => value instanceof ParamMarker) ? parameterBuilder(fixed) : () => fixed
    this.#kind = compiled.query.kind
    const node = compiled.query as { returning?: unknown }
    this.#returnsRows = this.#kind === 'SelectQueryNode' || this.#kind === 'RawNode' || node.returning !== undefined
    this.#plugins = plugins.filter((plugin) => typeof plugin.transformResult === 'function')
    this.firstRowPath = this.#returnsRows && this.#plugins.length === 0
    this.syncRefusal =
      this.#plugins.length > 0
        ? 'result plugins (such as CamelCasePlugin) transform rows asynchronously'
        : this.#kind === 'SelectQueryNode' || (this.#kind === 'RawNode' && READ_SQL.test(compiled.sql))
          ? undefined
          : this.#kind === 'RawNode'
            ? 'its raw SQL does not start with select, with or values'
            : `it is not a read (${this.#kind
                .replace(/Node$/, '')
                .replace(/Query$/, '')
                .toLowerCase()})`
  }

  /** The compiled query with `parameters` (from {@link parameters}) in place: for the paths that need one. */
  compiledWith(parameters: readonly unknown[]): CompiledQuery {
    if (parameters === this.compiled.parameters) return this.compiled
    // Attachment needs carry over with the symbol.
    const { query, queryId, sql } = this.compiled
    const schemas = this.schemas
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

/** Raw SQL that may run through `executeSync`: a select (also with a CTE) or VALUES; the adapter still checks it writes nothing. */
const READ_SQL = /^\s*(select|with|values)\b/i

/** The value of parameter `name` in `args`, which must be present. */
function argument(args: Readonly<Record<string, unknown>> | undefined, name: string): unknown {
  const value = args?.[name]
  if (value === undefined) {
    throw new InvalidOptionsError(
      `The prepared query needs a value for parameter "${name}" (got ${args === undefined ? 'no arguments' : 'undefined'}).`,
    )
  }
  return value
}

type Getter = (args: Readonly<Record<string, unknown>> | undefined) => unknown

/**
 * A function that builds one call's parameter array: each position is either
 * a fixed value compiled into the query or an argument looked up by name.
 * Up to four positions it returns an array literal, which V8 allocates far
 * more cheaply than a copy of the template's array (measured: `slice()` plus
 * stores cost ~35 ns per call, a literal ~8 ns, on a ~3 µs point select).
 */
function parameterBuilder(
  parameters: readonly unknown[],
): (args: Readonly<Record<string, unknown>> | undefined) => unknown[] {
  const getters: Getter[] = parameters.map((value): Getter => {
    if (value instanceof ParamMarker) {
      const name = value.name
      return (args) => argument(args, name)
    }
    return () => value
  })
  const [g0, g1, g2, g3] = getters as [Getter, Getter, Getter, Getter]
  switch (getters.length) {
    case 1:
      return (args) => [g0(args)]
    case 2:
      return (args) => [g0(args), g1(args)]
    case 3:
      return (args) => [g0(args), g1(args), g2(args)]
    case 4:
      return (args) => [g0(args), g1(args), g2(args), g3(args)]
    default:
      return (args) => {
        const out = new Array<unknown>(getters.length)
        for (let i = 0; i < getters.length; i++) out[i] = (getters[i] as Getter)(args)
        return out
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
 * Runs a template with one call's parameters and maps its result, at call time
 * in the right place (the current scope, or apex); `map` runs before the
 * returned promise settles.
 */
export interface PreparedRunner {
  run<T>(
    template: PreparedTemplate,
    parameters: readonly unknown[],
    map: (result: QueryResult<unknown>) => T,
  ): Promise<T>
  /** The first row of a select, through the adapter's single-row fast path where it has one. */
  first<T>(template: PreparedTemplate, parameters: readonly unknown[]): Promise<T | undefined>
  /** A read run synchronously: every row, or (`first`) the first row. */
  readSync<T>(template: PreparedTemplate, parameters: readonly unknown[], first: boolean): T[] | T | undefined
}

/** What `execute(args)` passes on: the caller's arguments by name. */
type CallArgs = Readonly<Record<string, unknown>> | undefined

/**
 * Every row of `template` run with `args` through `runner`, as Kysely's
 * `execute()` returns them (result plugins applied). Shared by prepared
 * queries and models; argument errors become rejections.
 */
export function runRows<O>(runner: PreparedRunner, template: PreparedTemplate, args: CallArgs): Promise<O[]> {
  try {
    const parameters = template.parameters(args)
    if (template.transformsResults) {
      return runner.run(template, parameters, identity).then((result) => template.transformedRows<O>(result))
    }
    return runner.run(template, parameters, (result) => template.rows<O>(result))
  } catch (error) {
    // The runner throws when there is no scope: a rejection, like every other failure.
    return Promise.reject(error)
  }
}

/**
 * The first row of `template` run with `args` through `runner`. Not async, and
 * no wrapper between the caller and the handle: on a synchronous adapter a
 * select costs one promise over the statement itself.
 */
export function runFirstRow<O>(
  runner: PreparedRunner,
  template: PreparedTemplate,
  args: CallArgs,
): Promise<O | undefined> {
  if (!template.firstRowPath) return runRows<O>(runner, template, args).then((rows) => rows[0])
  try {
    return runner.first<O>(template, template.parameters(args))
  } catch (error) {
    return Promise.reject(error)
  }
}

/** A prepared query bound to a way of running it (`run` finds the scope at call time). */
export function createPreparedQuery<Args, O>(template: PreparedTemplate, run: PreparedRunner): PreparedQuery<Args, O> {
  const execute = (args?: Args): Promise<O[]> => runRows<O>(run, template, args as CallArgs)
  const executeTakeFirst = (args?: Args): Promise<O | undefined> => runFirstRow<O>(run, template, args as CallArgs)
  const readSync = (args: Args | undefined, first: boolean): O[] | O | undefined => {
    if (template.syncRefusal !== undefined) {
      throw new InvalidOptionsError(
        `${first ? 'executeTakeFirstSync' : 'executeSync'} runs reads only, and this prepared query cannot: ${template.syncRefusal}. Use await ${first ? 'executeTakeFirst' : 'execute'}() instead.`,
      )
    }
    return run.readSync<O>(template, template.parameters(args as CallArgs), first)
  }
  const executeSync = (args?: Args): O[] => readSync(args, false) as O[]
  const executeTakeFirstSync = (args?: Args): O | undefined => readSync(args, true) as O | undefined
  return Object.freeze({
    sql: template.sql,
    execute: execute as PreparedQuery<Args, O>['execute'],
    executeTakeFirst: executeTakeFirst as PreparedQuery<Args, O>['executeTakeFirst'],
    executeSync: executeSync as PreparedQuery<Args, O>['executeSync'],
    executeTakeFirstSync: executeTakeFirstSync as PreparedQuery<Args, O>['executeTakeFirstSync'],
  })
}

const identity = <T>(value: T): T => value
