import type { ColumnType, Kysely, SelectType, Transaction } from 'kysely'

/** `DB`'s tables addressed as `<schema>.<table>` (how Kysely types schema-qualified tables). */
export type Qualified<DB, Schema extends string> = {
  [K in keyof DB & string as `${Schema}.${K}`]: DB[K]
}

declare const readOnlyBrand: unique symbol

/**
 * The insert type of an attached table's columns: no value has it, so an
 * insert into an attached table does not compile (`never` would make the
 * column merely optional, and the insert compile).
 */
export interface AttachedReadOnly {
  readonly [readOnlyBrand]: 'attached databases are read-only: write through shard.apex or the tenant own scope'
}

/** A table whose columns can be read but never inserted or updated (attached databases). */
export type ReadOnlyTable<Table> = {
  [C in keyof Table]: ColumnType<SelectType<Table[C]>, AttachedReadOnly, never>
}

/** `DB`'s tables as `<schema>.<table>`, read-only: inserts and updates into them do not compile. */
export type ReadOnlyQualified<DB, Schema extends string> = {
  [K in keyof DB & string as `${Schema}.${K}`]: ReadOnlyTable<DB[K]>
}

/**
 * What `t.db` sees inside `withTenant`: the tenant's tables, plus apex's as
 * `apex.<table>`, typed read-only (an insert or update into them does not
 * compile; the ATTACH compiler refuses every write at run time as well).
 */
export type TenantScopeDB<TenantDB, ApexDB> = TenantDB & ReadOnlyQualified<ApexDB, 'apex'>

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never

/** What `x.db` sees inside `withTenants(ids, fn)`: each tenant's tables as `<id>.<table>`, plus `apex.<table>`. */
export type TenantsScopeDB<Ids extends string, TenantDB, ApexDB> = UnionToIntersection<
  Ids extends unknown ? ReadOnlyQualified<TenantDB, Ids> : never
> &
  ReadOnlyQualified<ApexDB, 'apex'>

/** The scope `withTenant(id, fn)` passes to `fn`. Its objects are valid only until `fn` settles. */
export interface TenantScope<TenantDB, ApexDB, Models = unknown> {
  /** The tenant id. */
  readonly id: string
  /**
   * Kysely bound to this tenant's file. Apex tables are addressable as
   * `apex.<table>` (attached read-only on first use).
   */
  readonly db: Kysely<TenantScopeDB<TenantDB, ApexDB>>
  /** The models: tenanted ones bound to this tenant, apex ones to the apex database. */
  readonly models: Models
  /**
   * Runs `fn` in one transaction on this tenant's file (`begin immediate`);
   * a throw rolls everything back. Other scopes' statements on this tenant wait
   * until it ends.
   */
  transaction<T>(fn: (trx: TenantTransaction<TenantDB, ApexDB, Models>) => Promise<T>): Promise<T>
  /**
   * Attaches apex explicitly, for raw `sql` that names `apex.<table>` (the
   * compiler cannot read raw SQL). Raw SQL is judged by the statement guard
   * like every statement: it may read apex, never write it (docs/attach.md).
   */
  attach(name: 'apex'): Promise<void>
}

/** What `t.transaction(fn)` passes to `fn`. */
export interface TenantTransaction<TenantDB, ApexDB, Models = unknown> {
  readonly id: string
  readonly db: Transaction<TenantScopeDB<TenantDB, ApexDB>>
  /** Models bound to the transaction (tenanted ones; apex models still write to apex). */
  readonly models: Models
}

/** What `withTenants(ids, fn)` passes to `fn`. */
export interface TenantsScope<Ids extends string, TenantDB, ApexDB> {
  readonly ids: readonly Ids[]
  /** Read-only Kysely over an empty connection with each tenant attached under its id. */
  readonly db: Kysely<TenantsScopeDB<Ids, TenantDB, ApexDB>>
  /** Attaches one of `ids` (or `'apex'`) explicitly, for raw `sql`. */
  attach(id: Ids | 'apex'): Promise<void>
}
