import type { Insertable, Selectable, SelectQueryBuilder, Updateable } from 'kysely'
import type { MODEL_DB_TYPES, ModelDeclaration, RelationKind } from './model-declaration.js'

/**
 * Everything the model types are computed from: the two DB interfaces and the
 * declarations. `N` below is always a model name (a key of `Decls`).
 */
export interface ModelSchema<ApexDB = any, TenantDB = any, Decls = any> {
  readonly apex: ApexDB
  readonly tenant: TenantDB
  readonly decls: Decls
}

type Simplify<T> = { [K in keyof T]: T[K] } & {}

type DeclOf<S extends ModelSchema, N> = N extends keyof S['decls'] ? S['decls'][N] : never
type OptionsOf<S extends ModelSchema, N> = DeclOf<S, N> extends ModelDeclaration<any, any, infer O> ? O : never
type DBOf<S extends ModelSchema, N> = DeclOf<S, N> extends ModelDeclaration<'apex', any, any> ? S['apex'] : S['tenant']

/** The table name of model `N`. */
export type TableOf<S extends ModelSchema, N> = DeclOf<S, N> extends ModelDeclaration<any, infer T, any> ? T : never

type TableType<S extends ModelSchema, N> = TableOf<S, N> extends keyof DBOf<S, N> ? DBOf<S, N>[TableOf<S, N>] : never

/** A row of model `N` as it is read (Kysely's `Selectable`). */
export type RowOf<S extends ModelSchema, N> = Selectable<TableType<S, N>>
/** What `create` takes: generated and defaulted columns optional (Kysely's `Insertable`). */
export type InsertOf<S extends ModelSchema, N> = Insertable<TableType<S, N>>
/** What `update` takes: every column optional (Kysely's `Updateable`). */
export type UpdateOf<S extends ModelSchema, N> = Updateable<TableType<S, N>>

type PrimaryKeyOf<S extends ModelSchema, N> =
  OptionsOf<S, N> extends { readonly primaryKey: infer K extends string } ? K : 'id'

/** The primary key's type of model `N`. */
export type KeyOf<S extends ModelSchema, N> =
  PrimaryKeyOf<S, N> extends keyof RowOf<S, N> ? RowOf<S, N>[PrimaryKeyOf<S, N>] : never

type RelationsOfKind<S extends ModelSchema, N, K extends RelationKind> =
  OptionsOf<S, N> extends {
    readonly [P in K]: infer R
  }
    ? R
    : {}

type RelationNames<S extends ModelSchema, N> =
  | (keyof RelationsOfKind<S, N, 'belongsTo'> & string)
  | (keyof RelationsOfKind<S, N, 'hasMany'> & string)
  | (keyof RelationsOfKind<S, N, 'hasOne'> & string)

type TargetOf<S extends ModelSchema, N, R> = R extends keyof RelationsOfKind<S, N, 'belongsTo'>
  ? RelationsOfKind<S, N, 'belongsTo'>[R] extends readonly [infer M, any]
    ? M
    : never
  : R extends keyof RelationsOfKind<S, N, 'hasMany'>
    ? RelationsOfKind<S, N, 'hasMany'>[R] extends readonly [infer M, any]
      ? M
      : never
    : R extends keyof RelationsOfKind<S, N, 'hasOne'>
      ? RelationsOfKind<S, N, 'hasOne'>[R] extends readonly [infer M, any]
        ? M
        : never
      : never

type Depth = [never, 0, 1]

/**
 * The names `include` accepts on model `N`: its relations, and dotted paths
 * through them up to three levels (`'comments'`, `'comments.author'`,
 * `'comments.author.tier'`).
 */
export type IncludePath<S extends ModelSchema, N, D extends number = 2> = [D] extends [never]
  ? never
  : {
      [R in RelationNames<S, N>]: R | `${R}.${IncludePath<S, TargetOf<S, N, R>, Depth[D]>}`
    }[RelationNames<S, N>]

type Head<P extends string> = P extends `${infer H}.${string}` ? H : P
type Tail<P extends string, R extends string> = P extends `${R}.${infer T}` ? T : never

type Wrap<S extends ModelSchema, N, R, X> = R extends keyof RelationsOfKind<S, N, 'hasMany'> ? X[] : X | null

/** A row of `N` with the relations named by the include paths `P` added (`null` / arrays as declared). */
export type WithIncludes<S extends ModelSchema, N, P extends string> = [P] extends [never]
  ? RowOf<S, N>
  : Simplify<
      RowOf<S, N> & {
        [R in Head<P> & RelationNames<S, N>]: Wrap<S, N, R, WithIncludes<S, TargetOf<S, N, R>, Tail<P, R>>>
      }
    >

/** Operators of `where(column, op, value)`. */
export type ScalarOperator = '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=' | 'like' | 'not like'
export type ListOperator = 'in' | 'not in'
export type NullOperator = 'is' | 'is not'
export type WhereOperator = ScalarOperator | ListOperator | NullOperator

/** `where({ col: value })`: `null` means `is null`, an array means `in (…)`. */
export type WhereValues<Row> = { readonly [C in keyof Row]?: Row[C] | readonly NonNullable<Row[C]>[] }

/** The chainable filter of model `N` (`P`: the include paths so far). Immutable: every call returns a new query. */
export interface ModelQuery<S extends ModelSchema, N, P extends string = never> {
  /**
   * Adds a condition (`and`).
   *
   * @example
   * ```ts
   * await t.models.Document.where('status', '=', 'open').where('id', 'in', [1, 2]).all()
   * // select "__m".* from "main"."documents" as "__m" where "__m"."status" = ? and "__m"."id" in (?, ?)
   * ```
   */
  where<C extends keyof RowOf<S, N> & string>(column: C, op: ScalarOperator, value: RowOf<S, N>[C]): ModelQuery<S, N, P>
  where<C extends keyof RowOf<S, N> & string>(
    column: C,
    op: ListOperator,
    values: readonly NonNullable<RowOf<S, N>[C]>[],
  ): ModelQuery<S, N, P>
  where<C extends keyof RowOf<S, N> & string>(column: C, op: NullOperator, value: null): ModelQuery<S, N, P>
  where(values: WhereValues<RowOf<S, N>>): ModelQuery<S, N, P>
  /** Orders by a column (`'asc'` by default); calls add further sort keys. */
  orderBy(column: keyof RowOf<S, N> & string, direction?: 'asc' | 'desc'): ModelQuery<S, N, P>
  limit(n: number): ModelQuery<S, N, P>
  offset(n: number): ModelQuery<S, N, P>
  /**
   * Loads relations with the rows: `belongsTo`/`hasOne` as the row or `null`,
   * `hasMany` as an array; dotted paths nest (`'comments.author'`). A
   * tenanted → apex `belongsTo` is joined into the same statement (ATTACH);
   * any other relation costs one batched `where key in (…)` statement.
   */
  include<const I extends readonly IncludePath<S, N>[]>(...names: I): ModelQuery<S, N, P | I[number]>
  all(): Promise<WithIncludes<S, N, P>[]>
  /** The first row (`limit 1`), or `undefined`. */
  first(): Promise<WithIncludes<S, N, P> | undefined>
  /** How many rows the query matches (respecting limit/offset). */
  count(): Promise<number>
}

/**
 * A model: one table in the apex database or in the current tenant's file.
 * Reads and writes go to that database; `include` loads relations, through
 * ATTACH when a tenanted model points at an apex one.
 *
 * @example
 * ```ts
 * await shard.withTenant('acme', async (t) => {
 *   const doc = await t.models.Document.create({ title: 'Q3 plan', owner_id: 1 })
 *   await t.models.Document.update(doc.id, { status: 'done' })
 *   const open = await t.models.Document.where('status', '=', 'open').include('owner').all()
 * })
 * ```
 */
export interface Model<S extends ModelSchema, N> extends Omit<ModelQuery<S, N>, 'first' | 'count'> {
  /** The model's name in the registry. */
  readonly name: N
  /** The row whose primary key is `id`, or `undefined`. `select * from <table> where <pk> = ?` */
  find(id: KeyOf<S, N>): Promise<RowOf<S, N> | undefined>
  /** Like {@link find}, but a missing row throws `RecordNotFoundError`. */
  findOrThrow(id: KeyOf<S, N>): Promise<RowOf<S, N>>
  /** The first row matching every `{ column: value }` (`null` → `is null`), or `undefined`. */
  findBy(values: WhereValues<RowOf<S, N>>): Promise<RowOf<S, N> | undefined>
  /** Inserts one row and returns it as stored (generated and default columns filled in). */
  create(values: InsertOf<S, N>): Promise<RowOf<S, N>>
  /** Inserts rows (one statement per 500; in one transaction when there are more) and returns them. */
  createMany(rows: readonly InsertOf<S, N>[]): Promise<RowOf<S, N>[]>
  /** Updates the row with primary key `id`; returns it, or `undefined` when there is none. */
  update(id: KeyOf<S, N>, patch: UpdateOf<S, N>): Promise<RowOf<S, N> | undefined>
  /** Deletes the row with primary key `id`; `true` when a row went. */
  delete(id: KeyOf<S, N>): Promise<boolean>
  /** The number of rows in the table. */
  count(): Promise<number>
  /** The escape hatch: a Kysely select builder on the model's table, in the model's database. */
  query(): SelectQueryBuilder<DBOf<S, N>, TableOf<S, N> & keyof DBOf<S, N>, {}>
}

/** The declarations of a `models` option, with the type-only brand of `defineModels` removed. */
type Declarations<D> = { [K in keyof D as K extends typeof MODEL_DB_TYPES ? never : K]: D[K] }

/** What `t.models` is when the declarations' types are unknown (`createShardines<ApexDB, TenantDB>` with an inline object). */
export type UntypedModels = { readonly [name: string]: any }

/** The models object (`t.models`, `shard.models`) for declarations `Decls` over `ApexDB` / `TenantDB`. */
export type ModelsOf<ApexDB, TenantDB, Decls> = unknown extends Decls
  ? UntypedModels
  : string extends keyof Declarations<Decls>
    ? UntypedModels
    : {
        readonly [N in keyof Declarations<Decls>]: Model<ModelSchema<ApexDB, TenantDB, Declarations<Decls>>, N>
      }
