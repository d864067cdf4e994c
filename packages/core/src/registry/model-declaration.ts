import { InvalidOptionsError } from '../errors.js'

/** Where a model's table lives: the apex database, or each tenant's file. */
export type ModelKind = 'apex' | 'tenanted'

/** The three relation kinds a model can declare. */
export type RelationKind = 'belongsTo' | 'hasMany' | 'hasOne'

/** `[targetModelName, foreignKey]`: for `belongsTo` the key is on this model, otherwise on the target. */
export type RelationTarget = readonly [model: string, foreignKey: string]

/** Relations of one kind, by name: `{ owner: ['Account', 'owner_id'] }`. */
export type RelationMap = { readonly [name: string]: RelationTarget }

/** The second argument of {@link apex} and {@link tenanted}. */
export interface ModelOptions {
  /** The primary key column. Default `'id'`. */
  readonly primaryKey?: string
  /** `{ name: ['Model', 'fk_on_this_table'] }`: the row this one points at (or `null`). */
  readonly belongsTo?: RelationMap
  /** `{ name: ['Model', 'fk_on_their_table'] }`: the rows that point at this one (an array). */
  readonly hasMany?: RelationMap
  /** `{ name: ['Model', 'fk_on_their_table'] }`: the one row that points at this one (or `null`). */
  readonly hasOne?: RelationMap
}

const DECLARATION: unique symbol = Symbol.for('shardines.modelDeclaration')

/**
 * A model declaration: which table, in which database, with which relations.
 * Made by {@link apex} or {@link tenanted}; the registry built by
 * `createShardines` turns it into `t.models.X` / `shard.models.X`.
 * `Table` and `Options` carry the literal types the model API is typed from.
 */
export interface ModelDeclaration<
  Kind extends ModelKind = ModelKind,
  Table extends string = string,
  Options extends ModelOptions = ModelOptions,
> {
  readonly kind: Kind
  readonly table: Table
  readonly primaryKey: string
  readonly belongsTo: RelationMap
  readonly hasMany: RelationMap
  readonly hasOne: RelationMap
  /** Type-only: the options as written, literal types kept. */
  readonly options?: Options
  readonly [DECLARATION]: true
}

/** True for the objects {@link apex} and {@link tenanted} return. */
export function isModelDeclaration(value: unknown): value is ModelDeclaration {
  return typeof value === 'object' && value !== null && (value as { [DECLARATION]?: unknown })[DECLARATION] === true
}

function declare(kind: ModelKind, table: unknown, options: unknown): ModelDeclaration {
  const fn = kind === 'apex' ? 'apex' : 'tenanted'
  if (typeof table !== 'string' || table.trim() === '') {
    throw new InvalidOptionsError(`${fn}(table, options?) needs a table name, e.g. ${fn}('documents').`)
  }
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new InvalidOptionsError(
      `${fn}('${table}', options): options must be an object like { primaryKey, belongsTo, hasMany, hasOne }.`,
    )
  }
  const o = (options ?? {}) as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (key !== 'primaryKey' && key !== 'belongsTo' && key !== 'hasMany' && key !== 'hasOne') {
      throw new InvalidOptionsError(
        `${fn}('${table}'): unknown option "${key}"; the options are primaryKey, belongsTo, hasMany, hasOne.`,
      )
    }
  }
  const primaryKey = o.primaryKey ?? 'id'
  if (typeof primaryKey !== 'string' || primaryKey === '') {
    throw new InvalidOptionsError(`${fn}('${table}'): primaryKey must be a column name (default 'id').`)
  }
  return Object.freeze({
    kind,
    table,
    primaryKey,
    belongsTo: freezeRelations(o.belongsTo),
    hasMany: freezeRelations(o.hasMany),
    hasOne: freezeRelations(o.hasOne),
    [DECLARATION]: true as const,
  })
}

function freezeRelations(value: unknown): RelationMap {
  // Shapes are checked by the registry, which knows the model's name for the message.
  if (typeof value !== 'object' || value === null) return value === undefined ? Object.freeze({}) : (value as never)
  const out: Record<string, RelationTarget> = {}
  for (const [name, target] of Object.entries(value)) {
    out[name] = Array.isArray(target) ? (Object.freeze([...target]) as unknown as RelationTarget) : target
  }
  return Object.freeze(out)
}

/**
 * Declares a model whose table lives in the apex database. Apex models work
 * anywhere (`shard.models.X`, or `t.models.X` inside a scope) and always read
 * and write the apex file.
 *
 * @example
 * ```ts
 * const models = {
 *   Account: apex('accounts', { belongsTo: { plan: ['Plan', 'plan'] } }),
 *   Plan: apex('plans'),
 * }
 * ```
 */
export function apex<const Table extends string, const Options extends ModelOptions = {}>(
  table: Table,
  options?: Options,
): ModelDeclaration<'apex', Table, Options> {
  return declare('apex', table, options) as ModelDeclaration<'apex', Table, Options>
}

/**
 * Declares a model whose table lives in every tenant's file. Tenanted models
 * need a scope: `t.models.X`, or `shard.models.X` inside `withTenant`
 * (`NoTenantError` outside one).
 *
 * @example
 * ```ts
 * const models = {
 *   Document: tenanted('documents', {
 *     belongsTo: { owner: ['Account', 'owner_id'] },   // an apex model: included through ATTACH
 *     hasMany: { comments: ['Comment', 'document_id'] },
 *   }),
 *   Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
 * }
 * ```
 */
export function tenanted<const Table extends string, const Options extends ModelOptions = {}>(
  table: Table,
  options?: Options,
): ModelDeclaration<'tenanted', Table, Options> {
  return declare('tenanted', table, options) as ModelDeclaration<'tenanted', Table, Options>
}

/** Model declarations by model name: the `models` option of `createShardines`. */
export type ModelDeclarations = { readonly [name: string]: ModelDeclaration<ModelKind, string, any> }

/** Type-only brand that carries the DB types of {@link defineModels} into `createShardines`. */
export declare const MODEL_DB_TYPES: unique symbol

/** Declarations checked against `ApexDB` / `TenantDB` by {@link defineModels}; `createShardines` infers from them. */
export type DefinedModels<ApexDB, TenantDB, Decls> = Decls & {
  // Type-only (never present at runtime): the symbol is declared, not created.
  readonly [MODEL_DB_TYPES]: { readonly apex: ApexDB; readonly tenant: TenantDB }
}

type CheckedDeclarations<ApexDB, TenantDB, Decls> = {
  readonly [K in keyof Decls]: Decls[K] extends ModelDeclaration<'apex', infer Table, infer O>
    ? Table extends keyof ApexDB & string
      ? ModelDeclaration<'apex', Table, O & CheckedOptions<ApexDB, Table, Decls>>
      : `apex model ${K & string}: table "${Table}" is not in ApexDB`
    : Decls[K] extends ModelDeclaration<'tenanted', infer Table, infer O>
      ? Table extends keyof TenantDB & string
        ? ModelDeclaration<'tenanted', Table, O & CheckedOptions<TenantDB, Table, Decls>>
        : `tenanted model ${K & string}: table "${Table}" is not in TenantDB`
      : never
}

type CheckedOptions<DB, Table extends keyof DB, Decls> = {
  readonly primaryKey?: keyof DB[Table] & string
  readonly belongsTo?: { readonly [name: string]: readonly [keyof Decls & string, keyof DB[Table] & string] }
  readonly hasMany?: { readonly [name: string]: readonly [keyof Decls & string, string] }
  readonly hasOne?: { readonly [name: string]: readonly [keyof Decls & string, string] }
}

/**
 * Checks model declarations against the generated DB types (table names,
 * primary keys, relation targets, `belongsTo` foreign keys) and tags them with
 * those types, so `createShardines({ storage, models })` infers `ApexDB`,
 * `TenantDB` and fully typed models with no type arguments.
 *
 * @example
 * ```ts
 * const models = defineModels<ApexDB, TenantDB>()({
 *   Account: apex('accounts'),
 *   Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
 * })
 * export const shard = createShardines({ storage: sqliteStorage({ dir: './data' }), models })
 * await shard.withTenant('acme', (t) => t.models.Document.include('owner').all())
 * //  -> { id: number; title: string; …; owner: { id: number; email: string; … } | null }[]
 * ```
 */
export function defineModels<ApexDB, TenantDB>() {
  return <const Decls extends ModelDeclarations>(
    models: Decls & CheckedDeclarations<ApexDB, TenantDB, Decls>,
  ): DefinedModels<ApexDB, TenantDB, Decls> => models as DefinedModels<ApexDB, TenantDB, Decls>
}
