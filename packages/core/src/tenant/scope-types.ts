import type { Kysely, Transaction } from 'kysely'

/** `DB`'s tables addressed as `<schema>.<table>` (how Kysely types schema-qualified tables). */
export type Qualified<DB, Schema extends string> = {
  [K in keyof DB & string as `${Schema}.${K}`]: DB[K]
}

/** What `t.db` sees inside `withTenant`: the tenant's tables, plus apex's as `apex.<table>` (read-only). */
export type TenantScopeDB<TenantDB, ApexDB> = TenantDB & Qualified<ApexDB, 'apex'>

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never

/** What `x.db` sees inside `withTenants(ids, fn)`: each tenant's tables as `<id>.<table>`, plus `apex.<table>`. */
export type TenantsScopeDB<Ids extends string, TenantDB, ApexDB> = UnionToIntersection<
  Ids extends unknown ? Qualified<TenantDB, Ids> : never
> &
  Qualified<ApexDB, 'apex'>

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
   * compiler cannot read raw SQL). Raw SQL is not checked for writes: see the README.
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
