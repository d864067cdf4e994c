import type { Compilable, Kysely } from 'kysely'
import type { ShardinesEventListener, ShardinesEventType } from './events/shardines-event.js'
import type {
  HonoContextLike,
  HonoTenantMiddleware,
  HonoTenantResolver,
  NodeResponseLike,
  NodeTenantMiddleware,
  TenantMiddlewareOptions,
} from './http/middleware.js'
import type { NodeRequestLike } from './http/tenant-request.js'
import type { TenantResolver } from './http/tenant-resolvers.js'
import { ShardinesInstance } from './instance/shardines-instance.js'
import type { MigrateApi } from './migration/migrate-api.js'
import type { Params, PreparedQuery } from './prepared/prepared-query.js'
import type { DefinedModels, MODEL_DB_TYPES, ModelDeclarations } from './registry/model-declaration.js'
import type { ModelsOf, UntypedModels } from './registry/model-types.js'
import { type ShardinesOptions, validateOptions } from './shardines-options.js'
import type { PoolStats } from './storage/storage-adapter.js'
import type { JobContext } from './tenant/job-context.js'
import type { MapTenantsOptions, MapTenantsResult } from './tenant/map-tenants.js'
import type { TenantScope, TenantScopeDB, TenantsScope } from './tenant/scope-types.js'
import type { TenantsApi } from './tenant/tenants-api.js'

/**
 * A Shardines instance: one apex database and one SQLite file per tenant.
 * Create it with {@link createShardines}.
 */
export interface Shardines<ApexDB, TenantDB, Models = UntypedModels> {
  /**
   * Runs `fn` with `t.db` (and `shard.db()`) bound to tenant `id`'s file, and
   * resolves to what `fn` returns. Everything awaited inside `fn` sees this
   * tenant; the scope's objects stop working when `fn` settles.
   *
   * @example
   * ```ts
   * const open = await shard.withTenant('acme', (t) =>
   *   t.db.selectFrom('documents').selectAll().where('status', '=', 'open').execute())
   * ```
   */
  withTenant<T>(id: string, fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>>
  /**
   * Attaches several tenants (and apex, if used) read-only to one connection
   * for joined queries: `x.db.selectFrom('acme.documents')…`. At most
   * `storage.maxAttached` ids (`AttachLimitError` beyond). Binds no current tenant.
   */
  withTenants<const Ids extends readonly string[], T>(
    ids: Ids,
    fn: (x: TenantsScope<Ids[number], TenantDB, ApexDB>) => T | Promise<T>,
  ): Promise<Awaited<T>>
  /**
   * Runs `fn` in each tenant's scope (sorted ids, `concurrency` at a time) and
   * reports a value or an error per tenant. Never throws for a tenant's failure.
   */
  mapTenants<T>(
    fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
    options?: MapTenantsOptions,
  ): Promise<MapTenantsResult<Awaited<T>>[]>
  /**
   * A Connect/Express-style middleware that runs the rest of each request
   * inside `withTenant(await resolve(req))`, until the response closes. A
   * missing or invalid id answers 400 and an unknown tenant 404, as JSON,
   * without touching the filesystem for invalid ids; handler errors still go
   * to `next(err)`.
   *
   * @example
   * ```ts
   * import { fromHeader, fromPathPrefix, firstOf } from '@shardines/core'
   * app.use(shard.middleware(firstOf(fromHeader('x-tenant'), fromPathPrefix('/t'))))
   * app.get('/notes', async (req, res) => res.json(await shard.db().selectFrom('notes').selectAll().execute()))
   * ```
   */
  middleware<Req extends NodeRequestLike = NodeRequestLike, Res extends NodeResponseLike = NodeResponseLike>(
    resolve: TenantResolver<Req>,
    options?: TenantMiddlewareOptions,
  ): NodeTenantMiddleware<Req, Res>
  /**
   * The same for Hono (typed structurally: core does not depend on Hono): the
   * downstream handlers run inside `withTenant(await resolve(c.req.raw, c))`;
   * a handler's throw still reaches `app.onError`.
   *
   * @example
   * ```ts
   * app.use('/notes/*', shard.honoMiddleware(fromSubdomain('localhost')))
   * ```
   */
  honoMiddleware<C extends HonoContextLike = HonoContextLike>(
    resolve: HonoTenantResolver<C>,
    options?: TenantMiddlewareOptions,
  ): HonoTenantMiddleware<C>
  /**
   * Compiles a tenant query once; `execute(args)` runs it in the CURRENT
   * tenant (`NoTenantError` outside a scope) through that handle's statement
   * cache, binding `args` into the `p(name)` slots. Attachment and read-only
   * checks are decided here, once. Annotate `p` to type the parameters.
   *
   * @example
   * ```ts
   * const byId = shard.prepare((db, p: Params<{ id: number }>) =>
   *   db.selectFrom('documents').selectAll().where('id', '=', p('id')))
   * await shard.withTenant('acme', () => byId.executeTakeFirst({ id: 3 }))
   * // select * from "main"."documents" where "id" = ?
   * ```
   */
  prepare<Args = Record<string, any>, O = unknown>(
    build: (db: Kysely<TenantScopeDB<TenantDB, ApexDB>>, p: Params<Args>) => Compilable<O>,
  ): PreparedQuery<Args, O>
  /** Like {@link prepare}, for the apex database: runs anywhere, on `shard.apex`'s handle. */
  prepareApex<Args = Record<string, any>, O = unknown>(
    build: (db: Kysely<ApexDB>, p: Params<Args>) => Compilable<O>,
  ): PreparedQuery<Args, O>
  /** The current tenant's Kysely; `NoTenantError` outside a scope. */
  db(): Kysely<TenantScopeDB<TenantDB, ApexDB>>
  /** The current tenant id, or `undefined` outside a scope. */
  currentTenant(): string | undefined
  /**
   * The current tenant as a job context (plain JSON) to store with a
   * background job's payload when enqueueing it; `NoTenantError` outside a
   * scope.
   *
   * @example
   * ```ts
   * await queue.add('digest', { ctx: shard.jobContext(), since })   // inside the request's scope
   * ```
   */
  jobContext(): JobContext
  /**
   * Runs a background job in the tenant its context names: the context is
   * validated again (a payload is untrusted input: `InvalidJobContextError`
   * for a forged shape, `InvalidTenantIdError` for a hostile id, before any
   * file is touched), then `fn` runs in `withTenant`, whatever scope the
   * worker is in when it calls this.
   *
   * @example
   * ```ts
   * worker.process(async (job) => shard.runJob(job.data.ctx, (t) => sendDigest(t, job.data.since)))
   * ```
   */
  runJob<T>(ctx: unknown, fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>>
  /** Kysely over the apex database (read-write), usable anywhere. */
  readonly apex: Kysely<ApexDB>
  /**
   * The models. Apex models work anywhere and always use the apex database;
   * a tenanted model resolves to the current scope's (`NoTenantError` outside one).
   *
   * @example
   * ```ts
   * await shard.models.Account.create({ email: 'a@x.test' })                 // apex, anywhere
   * await shard.withTenant('acme', () => shard.models.Document.find(1))      // the current tenant's
   * ```
   */
  readonly models: Models
  /** Tenant lifecycle: create, exists, list, destroy, backup, fork. */
  readonly tenants: TenantsApi
  /** Migrations of apex and tenants. */
  readonly migrate: MigrateApi
  /** Tenant handle pool counters since start. */
  stats(): PoolStats
  /**
   * Subscribes `listener` to events of `type` (`'*'`: all) and returns the
   * function that unsubscribes it. Events name their tenant (`tenantId`, or
   * `'apex'`) and carry timings in milliseconds, never rows, parameters or
   * SQL. Listeners run synchronously where the event happens, so keep them
   * short; one that throws does not disturb the operation (its first error
   * is reported once as a `ShardinesListenerWarning` process warning).
   * Without listeners, events cost nothing: none is built.
   *
   * @example
   * ```ts
   * const off = shard.on('scope:end', (e) => {
   *   if (e.durationMs > 100) console.warn(`slow scope ${e.tenantId}: ${e.durationMs.toFixed(1)} ms`)
   * })
   * shard.on('guard:refusal', (e) => console.warn(`refused ${e.refusal} in ${e.tenantId}`))
   * off()
   * ```
   */
  on<K extends ShardinesEventType | '*'>(type: K, listener: ShardinesEventListener<K>): () => void
  /**
   * Shuts down: new scopes (and every other entry point) are refused at once
   * with `ShardinesClosedError`; running scopes and transactions get up to
   * `timeout` ms (default 5000) to finish; whatever still runs then has its
   * transactions rolled back and its later statements refused with
   * `ShardinesClosedError`; then every handle is closed.
   */
  close(options?: CloseOptions): Promise<void>
}

/** Options of {@link Shardines.close}. */
export interface CloseOptions {
  /** How long running scopes and transactions may take to finish, in milliseconds. Default 5000. */
  readonly timeout?: number
}

/**
 * Creates a Shardines instance.
 *
 * @example
 * ```ts
 * export const shard = createShardines<ApexDB, TenantDB>({
 *   storage: sqliteStorage({ dir: './data', maxOpen: 256 }),
 *   migrations: { apex: './migrations/apex', tenant: './migrations/tenant' },
 * })
 * await shard.migrate.apex()
 * await shard.tenants.create('acme')
 * ```
 */
export function createShardines<M extends DefinedModels<any, any, ModelDeclarations>>(
  options: ShardinesOptions<M> & { readonly models: M },
): Shardines<ApexOfModels<M>, TenantOfModels<M>, ModelsOf<ApexOfModels<M>, TenantOfModels<M>, M>>
export function createShardines<ApexDB, TenantDB, Decls = unknown>(
  options: ShardinesOptions<Decls>,
): Shardines<ApexDB, TenantDB, ModelsOf<ApexDB, TenantDB, Decls>>
export function createShardines(options: ShardinesOptions<unknown>): Shardines<unknown, unknown, unknown> {
  validateOptions(options)
  return new ShardinesInstance<unknown, unknown, unknown>(options)
}

/** The `ApexDB` carried by `defineModels<ApexDB, TenantDB>()(…)`. */
type ApexOfModels<M> = M extends { readonly [MODEL_DB_TYPES]: { readonly apex: infer A } } ? A : unknown
/** The `TenantDB` carried by `defineModels<ApexDB, TenantDB>()(…)`. */
type TenantOfModels<M> = M extends { readonly [MODEL_DB_TYPES]: { readonly tenant: infer T } } ? T : unknown
