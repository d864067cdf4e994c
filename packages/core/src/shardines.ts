import { AsyncLocalStorage } from 'node:async_hooks'
import type { Compilable, Kysely, QueryResult } from 'kysely'
import { type AttachPolicy, AttachQueryCompiler } from './attach/attach-query-compiler.js'
import { bindHandle, type HandleBinding } from './connection/handle-binding.js'
import { stateOf } from './connection/handle-state.js'
import { createBoundKysely, plainCompiler } from './connection/kysely-factory.js'
import { QueryLogger } from './connection/query-log.js'
import { ScopeResources } from './connection/scope-resources.js'
import { ScopedConnection } from './connection/scoped-connection.js'
import {
  executePrepared,
  executePreparedFirst,
  type PreparedStatementSource,
  readPreparedSync,
} from './connection/statement-runner.js'
import {
  AttachLimitError,
  CrossDatabaseQueryError,
  InvalidOptionsError,
  NoTenantError,
  ShardinesClosedError,
  TenantSchemaOutdatedError,
  TransactionLeftOpenError,
} from './errors.js'
import { apexGuard, type GuardPolicy, readOnlyGuard, scopeGuard } from './guard/statement-guard.js'
import {
  type HonoContextLike,
  type HonoTenantMiddleware,
  type HonoTenantResolver,
  honoTenantMiddleware,
  type NodeResponseLike,
  type NodeTenantMiddleware,
  nodeTenantMiddleware,
  type TenantMiddlewareOptions,
} from './http/middleware.js'
import type { NodeRequestLike } from './http/tenant-request.js'
import type { TenantResolver } from './http/tenant-resolvers.js'
import { createMigrateApi, type MigrateApi } from './migration/migrate-api.js'
import { EMPTY_MIGRATIONS, loadMigrations, type MigrationSet } from './migration/migration-source.js'
import { appliedMigrations } from './migration/migration-status.js'
import { readVersionStamp, runMigrations } from './migration/run-migrations.js'
import {
  compilePrepared,
  createPreparedQuery,
  type Params,
  type PreparedQuery,
  type PreparedRunner,
} from './prepared/prepared-query.js'
import type { DefinedModels, MODEL_DB_TYPES, ModelDeclarations } from './registry/model-declaration.js'
import {
  createModelRegistry,
  type ModelBinding,
  type ModelRegistry,
  type ModelSide,
} from './registry/model-registry.js'
import type { ModelsOf, UntypedModels } from './registry/model-types.js'
import type { ShardinesContext } from './shardines-context.js'
import { type MigrateOnOpen, type ShardinesOptions, validateOptions } from './shardines-options.js'
import { requireAttach } from './storage/capabilities.js'
import {
  APEX,
  type PoolStats,
  type ScratchHandle,
  type StorageAdapter,
  type StorageHandle,
  type StorageLocation,
  type TenantLease,
} from './storage/storage-adapter.js'
import { type MapTenantsOptions, type MapTenantsResult, mapTenants } from './tenant/map-tenants.js'
import type { TenantScope, TenantScopeDB, TenantsScope, TenantTransaction } from './tenant/scope-types.js'
import { assertTenantId } from './tenant/tenant-id.js'
import { createTenantsApi, type TenantsApi } from './tenant/tenants-api.js'

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
 * One link of the async context Shardines keeps: a tenant scope, or a
 * transaction or `connection()` callback running inside one (or on apex).
 */
interface ContextFrame {
  readonly parent: ContextFrame | undefined
  /** The nearest enclosing tenant scope. */
  readonly scope: TenantScopeImpl<any, any, any> | undefined
  /** The transaction or `connection()` token this frame marks (its statements join it). */
  readonly token: object | undefined
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
  return new ShardinesImpl<unknown, unknown, unknown>(options)
}

/** The `ApexDB` carried by `defineModels<ApexDB, TenantDB>()(…)`. */
type ApexOfModels<M> = M extends { readonly [MODEL_DB_TYPES]: { readonly apex: infer A } } ? A : unknown
/** The `TenantDB` carried by `defineModels<ApexDB, TenantDB>()(…)`. */
type TenantOfModels<M> = M extends { readonly [MODEL_DB_TYPES]: { readonly tenant: infer T } } ? T : unknown

const TENANT_READABLE: ReadonlySet<string> = new Set([APEX])

/** `t.models` / `shard.models` of an instance created without `models`. */
const EMPTY_MODELS = Object.freeze({})

/**
 * One ATTACH compiler per tenant handle, shared by its scopes: compiling is
 * synchronous (no two compilations interleave), and building a compiler binds
 * ~100 visitor methods, about a microsecond per scope.
 */
const tenantCompilers = new WeakMap<StorageHandle, AttachQueryCompiler>()

/** One guard policy per tenant handle, shared by its scopes (a frozen value). */
const tenantGuards = new WeakMap<StorageHandle, GuardPolicy>()

function tenantGuard(handle: StorageHandle, id: string): GuardPolicy {
  let guard = tenantGuards.get(handle)
  if (guard === undefined) {
    guard = scopeGuard(id)
    tenantGuards.set(handle, guard)
  }
  return guard
}

function tenantCompiler(handle: StorageHandle, id: string): AttachQueryCompiler {
  let compiler = tenantCompilers.get(handle)
  if (compiler === undefined) {
    compiler = new AttachQueryCompiler({ label: id, readable: TENANT_READABLE })
    tenantCompilers.set(handle, compiler)
  }
  return compiler
}

/** Prepared apex statements own no transaction: they wait while any apex transaction is open. */
const APEX_PREPARED_OWNER = Object.freeze({})

/** The handle behind the build-only Kysely that `prepare` passes to `build`: it never executes. */
const COMPILE_ONLY_HANDLE: StorageHandle = Object.freeze({
  name: 'prepare',
  attached: new Set<string>(),
  closed: false,
  executeQuery: () =>
    Promise.reject(
      new InvalidOptionsError('Inside prepare(build), db only builds the query: return it without executing.'),
    ),
  streamQuery: () => {
    throw new InvalidOptionsError('Inside prepare(build), db only builds the query: return it without executing.')
  },
  attach: () => undefined,
  detach: () => undefined,
  clearStatementCache: () => undefined,
  leftovers: false,
  resetConnection: () => undefined,
})

const COMPILE_ONLY: HandleBinding = bindHandle(COMPILE_ONLY_HANDLE, { label: 'prepare' })

class ShardinesImpl<ApexDB, TenantDB, Models> implements Shardines<ApexDB, TenantDB, Models>, ShardinesContext {
  readonly storage: StorageAdapter
  readonly log: QueryLogger | null
  readonly plugins: readonly import('kysely').KyselyPlugin[]
  readonly migrateOnOpen: MigrateOnOpen
  readonly tenants: TenantsApi
  readonly migrate: MigrateApi
  readonly #options: ShardinesOptions<Models>
  readonly #als = new AsyncLocalStorage<ContextFrame>()
  /** Whether the current async context runs inside the transaction or connection() that `token` holds. */
  readonly inContextOf = (token: object): boolean => {
    for (let frame = this.#als.getStore(); frame !== undefined; frame = frame.parent) {
      if (frame.token === token) return true
    }
    return false
  }
  /** Runs `fn` marked as inside `token`'s transaction or connection() callback. */
  readonly runInFrame = <T>(token: object, fn: () => T): T => {
    const parent = this.#als.getStore()
    return this.#als.run({ parent, scope: parent?.scope, token }, fn)
  }
  /** How many scopes run now (close() waits for them). */
  #running = 0
  /** Scopes that have opened a transaction or connection() hold (close() ends those after its timeout). */
  readonly scopesWithResources = new Set<ScopeResources>()
  /** Transactions and connection() callbacks open on apex. */
  readonly #apexResources = new ScopeResources()
  /** close() was called: entry points refuse new work. */
  #closing: Promise<void> | undefined
  readonly #locate: (schema: string) => StorageLocation
  #sets: Promise<{ apex: MigrationSet; tenant: MigrationSet }> | undefined
  #apex: Kysely<ApexDB> | undefined
  #apexBindingValue: HandleBinding | undefined
  #closed = false
  readonly #registry: ModelRegistry | null
  #apexModels: object | undefined
  #models: Models | undefined

  constructor(options: ShardinesOptions<Models>) {
    this.#options = options
    this.storage = options.storage
    this.log = options.log === undefined ? null : new QueryLogger(options.log)
    this.plugins = Object.freeze([...(options.plugins ?? [])])
    this.migrateOnOpen = options.migrateOnOpen ?? 'lazy'
    this.#locate = (schema) => this.storage.locate(schema)
    this.tenants = createTenantsApi(this)
    this.migrate = createMigrateApi(this, options.migrations)
    // Checked (and frozen) now: a bad declaration fails at startup, naming the model and relation.
    this.#registry = createModelRegistry(options.models, this.plugins)
  }

  get models(): Models {
    if (this.#models === undefined) {
      const als = this.#als
      // Tenanted models here find the current scope at each call (like shard.db()):
      // outside a scope their calls reject with NoTenantError.
      const current: ModelBinding = {
        get tenantId() {
          return als.getStore()?.scope?.id
        },
        get tenant() {
          return als.getStore()?.scope?.modelSide() ?? null
        },
        apex: this.#apexSide,
      }
      this.#models = (
        this.#registry === null ? EMPTY_MODELS : this.#registry.bind(current, this.#apexModelsObject())
      ) as Models
    }
    return this.#models
  }

  /** Where apex models run: `shard.apex`, and apex's prepared-statement path. */
  readonly #apexSide: ModelSide = Object.freeze({
    db: () => this.apex,
    attachesApex: false,
    runner: Object.freeze<PreparedRunner>({
      run: (template, parameters, map) =>
        executePrepared(this.#apexBinding(), APEX_PREPARED_OWNER, template, parameters, map),
      first: (template, parameters) =>
        executePreparedFirst(this.#apexBinding(), APEX_PREPARED_OWNER, template, parameters),
      readSync: (template, parameters, first) =>
        readPreparedSync(this.#apexBinding(), APEX_PREPARED_OWNER, template, parameters, first),
    }),
  })

  /** Apex models: one set per instance, shared by every scope; they always run on apex. */
  #apexModelsObject(): object {
    this.#apexModels ??= (this.#registry as ModelRegistry).bind(
      { tenantId: undefined, tenant: null, apex: this.#apexSide },
      null,
    )
    return this.#apexModels
  }

  /** The models of a scope or transaction: tenanted ones on `side` (run as the scope), apex ones shared. */
  scopeModels(tenantId: string, side: ModelSide): Models {
    if (this.#registry === null) return EMPTY_MODELS as Models
    return this.#registry.bind({ tenantId, tenant: side, apex: this.#apexSide }, this.#apexModelsObject()) as Models
  }

  assertOpen(): void {
    if (this.#closing !== undefined) throw new ShardinesClosedError()
  }

  /** Refuses statements once close() has given up waiting (running scopes may finish until then). */
  assertNotClosed(): void {
    if (this.#closed) throw new ShardinesClosedError()
  }

  insideScopeOf(tenantId: string): boolean {
    for (let frame = this.#als.getStore(); frame !== undefined; frame = frame.parent) {
      if (frame.scope?.id === tenantId) return true
    }
    return false
  }

  migrationSets(): Promise<{ apex: MigrationSet; tenant: MigrationSet }> {
    this.#sets ??= (async () => {
      const [apex, tenant] = await Promise.all([
        loadMigrations(this.#options.migrations?.apex ?? EMPTY_MIGRATIONS, 'apex'),
        loadMigrations(this.#options.migrations?.tenant ?? EMPTY_MIGRATIONS, 'tenant'),
      ])
      return { apex, tenant }
    })()
    // A failed load (e.g. a syntax error in a migration file) is retried next time.
    this.#sets.catch(() => {
      this.#sets = undefined
    })
    return this.#sets
  }

  async acquire(tenantId: string, ready: boolean): Promise<TenantLease> {
    const lease = await this.storage.acquire(tenantId)
    if (!ready) return lease
    const state = stateOf(lease.handle)
    if (state.ready) return lease
    try {
      state.readying ??= this.#makeReady(tenantId, lease).finally(() => {
        state.readying = null
      })
      await state.readying
      state.ready = true
      return lease
    } catch (error) {
      lease.release()
      throw error
    }
  }

  /** The version check on open (one pragma), then lazy migration or the 'check' error. */
  async #makeReady(tenantId: string, lease: TenantLease): Promise<void> {
    if (this.migrateOnOpen === 'off') return
    const { tenant } = await this.migrationSets()
    // The adapter may have read the stamp while it opened the file (its first read): no statement then.
    const stamp = lease.versionStampAtOpen ?? (await readVersionStamp(lease.handle, this.storage.busyTimeout))
    if (stamp === tenant.latestStamp) return
    if (this.migrateOnOpen === 'check') {
      const applied = await appliedMigrations(lease.handle, tenantId, tenant)
      if (tenant.names.every((name, i) => applied[i] === name)) return
      throw new TenantSchemaOutdatedError(tenantId, applied.at(-1) ?? null, tenant.names.slice(applied.length))
    }
    const outcome = await runMigrations(lease.handle, tenantId, tenant, this.log, this.storage)
    if (outcome.error) throw outcome.error
  }

  async withTenant<T>(
    id: string,
    fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
  ): Promise<Awaited<T>> {
    this.assertOpen()
    assertTenantId(id)
    if (typeof fn !== 'function') throw new InvalidOptionsError('withTenant(id, fn) needs a function.')
    const lease = await this.acquire(id, true)
    const scope = new TenantScopeImpl<TenantDB, ApexDB, Models>(this, id, lease, this.#locate, this.#als.getStore())
    this.#running++
    let result: Awaited<T>
    try {
      result = await this.#als.run(scope, fn, scope)
    } finally {
      scope.close()
      // What the scope left open (a controlled transaction, an unawaited t.transaction or
      // connection() callback) is rolled back now, so the tenant never waits for it.
      const leftOpen = scope.resources.size > 0 ? await scope.resources.abandonAll() : 0
      scope.unpinAttachments()
      this.#running--
      this.scopesWithResources.delete(scope.resources)
      lease.release()
      if (leftOpen > 0 && !scope.failed) scope.failed = new TransactionLeftOpenError(id, leftOpen)
    }
    if (scope.failed !== undefined) throw scope.failed
    return result
  }

  async withTenants<const Ids extends readonly string[], T>(
    ids: Ids,
    fn: (x: TenantsScope<Ids[number], TenantDB, ApexDB>) => T | Promise<T>,
  ): Promise<Awaited<T>> {
    this.assertOpen()
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new InvalidOptionsError('withTenants(ids, fn) needs a non-empty array of tenant ids.')
    }
    for (const id of ids) assertTenantId(id)
    const unique = [...new Set(ids as readonly string[])]
    requireAttach(this.storage, `withTenants(${unique.join(', ')})`)
    if (unique.length > this.storage.maxAttached) {
      throw new AttachLimitError(unique.length, this.storage.maxAttached)
    }
    const leases: TenantLease[] = []
    let scratch: ScratchHandle | undefined
    let closed = false
    try {
      // Pinning each tenant keeps it from being destroyed mid-query and applies migrateOnOpen.
      for (const id of unique) leases.push(await this.acquire(id, true))
      scratch = await this.storage.openScratch()
      const label = `withTenants(${unique.join(', ')})`
      const policy: AttachPolicy = Object.freeze({
        label,
        readable: new Set([...unique, APEX]),
      })
      const binding = bindHandle(scratch, {
        label,
        owner: null,
        isClosed: () => closed,
        locate: this.#locate,
        maxAttached: this.storage.maxAttached,
        log: this.log,
        // Everything here is read-only, raw SQL included: the guard refuses any write.
        guard: readOnlyGuard(label),
        busyTimeout: this.storage.busyTimeout,
        readsOthersOnly: true,
      })
      const db = createBoundKysely<never>(binding, new AttachQueryCompiler(policy), this.plugins)
      const scope: TenantsScope<Ids[number], TenantDB, ApexDB> = Object.freeze({
        ids: Object.freeze([...unique]) as readonly Ids[number][],
        db: db as unknown as TenantsScope<Ids[number], TenantDB, ApexDB>['db'],
        attach: async (name: string) => {
          if (name !== APEX && !unique.includes(name)) {
            throw new InvalidOptionsError(
              `attach("${name}"): only apex and the ids given to withTenants can be attached.`,
            )
          }
          await new ScopedConnection(binding).attach(name)
        },
      })
      return await fn(scope)
    } finally {
      closed = true
      if (scratch) await scratch.close()
      for (const lease of leases) lease.release()
    }
  }

  mapTenants<T>(
    fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
    options: MapTenantsOptions = {},
  ): Promise<MapTenantsResult<Awaited<T>>[]> {
    this.assertOpen()
    return mapTenants(this.storage.list(), (id) => this.withTenant(id, fn), options)
  }

  middleware<Req extends NodeRequestLike = NodeRequestLike, Res extends NodeResponseLike = NodeResponseLike>(
    resolve: TenantResolver<Req>,
    options?: TenantMiddlewareOptions,
  ): NodeTenantMiddleware<Req, Res> {
    return nodeTenantMiddleware<Req, Res>(this, resolve, options)
  }

  honoMiddleware<C extends HonoContextLike = HonoContextLike>(
    resolve: HonoTenantResolver<C>,
    options?: TenantMiddlewareOptions,
  ): HonoTenantMiddleware<C> {
    return honoTenantMiddleware<C>(this, resolve, options)
  }

  db(): Kysely<TenantScopeDB<TenantDB, ApexDB>> {
    const scope = this.#als.getStore()?.scope
    if (scope === undefined) throw new NoTenantError('shard.db()')
    return scope.db
  }

  currentTenant(): string | undefined {
    return this.#als.getStore()?.scope?.id
  }

  get apex(): Kysely<ApexDB> {
    this.#apex ??= createBoundKysely<ApexDB>(this.#apexBinding(), plainCompiler(), this.plugins)
    return this.#apex
  }

  #apexBinding(): HandleBinding {
    this.assertOpen()
    this.#apexBindingValue ??= bindHandle(this.storage.apex(), {
      label: APEX,
      owner: null,
      // After close() a kept `shard.apex` reports the closed instance, not a closed "apex" scope.
      isClosed: () => {
        if (this.#closed) throw new ShardinesClosedError()
        return false
      },
      inContextOf: this.inContextOf,
      runInFrame: this.runInFrame,
      locate: this.#locate,
      maxAttached: 0,
      syncReads: this.storage.capabilities.syncReads,
      log: this.log,
      // shard.apex writes apex, but attaches, pragmas and raw transaction control are Shardines' alone.
      guard: apexGuard(),
      busyTimeout: this.storage.busyTimeout,
      resources: this.#apexResources,
    })
    return this.#apexBindingValue
  }

  prepare<Args = Record<string, any>, O = unknown>(
    build: (db: Kysely<TenantScopeDB<TenantDB, ApexDB>>, p: Params<Args>) => Compilable<O>,
  ): PreparedQuery<Args, O> {
    this.assertOpen()
    const db = createBoundKysely<TenantScopeDB<TenantDB, ApexDB>>(
      COMPILE_ONLY,
      new AttachQueryCompiler({ label: undefined, readable: TENANT_READABLE }),
      this.plugins,
    )
    const template = compilePrepared(db, build as never, this.plugins)
    const current = () => {
      const scope = this.#als.getStore()?.scope
      if (scope === undefined) throw new NoTenantError('a prepared query')
      return scope
    }
    return createPreparedQuery<Args, O>(template, {
      run: (template, parameters, map) => current().execute(template, parameters, map),
      first: (template, parameters) => current().executeFirst(template, parameters),
      readSync: (template, parameters, first) => current().readSync(template, parameters, first),
    })
  }

  prepareApex<Args = Record<string, any>, O = unknown>(
    build: (db: Kysely<ApexDB>, p: Params<Args>) => Compilable<O>,
  ): PreparedQuery<Args, O> {
    this.assertOpen()
    const db = createBoundKysely<ApexDB>(COMPILE_ONLY, plainCompiler(), this.plugins)
    const template = compilePrepared(db, build as never, this.plugins)
    return createPreparedQuery<Args, O>(template, this.#apexSide.runner)
  }

  stats(): PoolStats {
    return this.storage.stats()
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#shutDown(options.timeout ?? 5000)
    return this.#closing
  }

  async #shutDown(timeout: number): Promise<void> {
    if (!Number.isFinite(timeout) || timeout < 0) {
      throw new InvalidOptionsError(`close({ timeout }) takes a number of milliseconds, not ${String(timeout)}.`)
    }
    const deadline = performance.now() + timeout
    // Running scopes and apex transactions finish on their own if they can.
    while ((this.#running > 0 || this.#apexResources.size > 0) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(10, Math.max(1, deadline - performance.now()))))
    }
    // Past the deadline: their later statements are refused, their open transactions rolled back.
    this.#closed = true
    for (const resources of [...this.scopesWithResources]) await resources.abandonAll()
    await this.#apexResources.abandonAll()
    await this.storage.close()
  }
}

/** The scope object behind `withTenant`: a value bound to one tenant's pinned handle. */
class TenantScopeImpl<TenantDB, ApexDB, Models> implements TenantScope<TenantDB, ApexDB, Models>, ContextFrame {
  readonly id: string
  /** The async context this scope was opened in (an enclosing scope or transaction), for ContextFrame. */
  readonly parent: ContextFrame | undefined
  readonly token = undefined
  readonly handle: StorageHandle
  /** What this scope opened that must end with it. */
  readonly resources: ScopeResources
  /** Set when the scope must reject although its function resolved (e.g. it left a transaction open). */
  failed: Error | undefined
  /** Schemas this scope attached explicitly (t.attach), pinned on the handle until the scope ends. */
  #pinned: string[] | undefined
  readonly #binding: HandleBinding
  readonly #shard: ShardinesImpl<ApexDB, TenantDB, Models>
  #db: Kysely<TenantScopeDB<TenantDB, ApexDB>> | undefined
  #models: Models | undefined
  #modelSide: ModelSide | undefined
  #closed = false

  constructor(
    shard: ShardinesImpl<ApexDB, TenantDB, Models>,
    id: string,
    lease: TenantLease,
    locate: (schema: string) => StorageLocation,
    parent: ContextFrame | undefined,
  ) {
    this.id = id
    this.#shard = shard
    this.parent = parent
    this.handle = lease.handle
    this.resources = new ScopeResources(shard.scopesWithResources)
    // Each statement is its own owner; an enclosing scope's (or this scope's) transaction is joined
    // from inside its callback through the async context (inContextOf), and waited for from elsewhere.
    this.#binding = bindHandle(lease.handle, {
      label: id,
      inContextOf: shard.inContextOf,
      runInFrame: shard.runInFrame,
      // A scope still running when the instance is closed gets ShardinesClosedError, not the driver's "connection is not open".
      isClosed: () => {
        shard.assertNotClosed()
        return this.#closed
      },
      locate,
      maxAttached: shard.storage.maxAttached,
      syncReads: shard.storage.capabilities.syncReads,
      refuseAttach: shard.storage.capabilities.attach
        ? null
        : (schema) => {
            throw new CrossDatabaseQueryError(shard.storage.kind, `A statement reading ${schema}.<table>`, id)
          },
      log: shard.log,
      guard: tenantGuard(lease.handle, id),
      busyTimeout: shard.storage.busyTimeout,
      resources: this.resources,
    })
  }

  /** This frame's scope (a scope is the first frame of its own context). */
  get scope(): TenantScopeImpl<TenantDB, ApexDB, Models> {
    return this
  }

  get db(): Kysely<TenantScopeDB<TenantDB, ApexDB>> {
    this.#db ??= createBoundKysely(this.#binding, tenantCompiler(this.handle, this.id), this.#shard.plugins)
    return this.#db
  }

  get models(): Models {
    // Made on first touch: a scope that never uses models pays nothing for them.
    this.#models ??= this.#shard.scopeModels(this.id, this.modelSide())
    return this.#models
  }

  /** Where this scope's tenanted models run: `t.db`, and this handle's prepared path as this scope. */
  modelSide(): ModelSide {
    this.#modelSide ??= {
      db: () => this.db,
      attachesApex: this.#shard.storage.capabilities.attach,
      runner: {
        run: (template, parameters, map) => this.execute(template, parameters, map),
        first: (template, parameters) => this.executeFirst(template, parameters),
        readSync: (template, parameters, first) => this.readSync(template, parameters, first),
      },
    }
    return this.#modelSide
  }

  transaction<T>(fn: (trx: TenantTransaction<TenantDB, ApexDB, Models>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => {
      const scope = this
      let models: Models | undefined
      // Prepared statements run inside the transaction: the callback's async context holds it.
      return fn(
        Object.freeze({
          id: this.id,
          db: trx,
          get models(): Models {
            models ??= scope.#shard.scopeModels(scope.id, { ...scope.modelSide(), db: () => trx })
            return models
          },
        }),
      )
    })
  }

  attach(name: 'apex'): Promise<void> {
    if (name !== APEX) {
      return Promise.reject(
        new InvalidOptionsError(
          `t.attach("${String(name)}"): a tenant scope can attach only apex; use withTenants for other tenants.`,
        ),
      )
    }
    // Pinned until the scope ends: another scope's write transaction detaches apex (BEGIN IMMEDIATE
    // would lock it), and this scope's next statement attaches it again.
    if (this.#pinned === undefined) {
      this.#pinned = [APEX]
      const state = stateOf(this.handle)
      state.pinned.set(APEX, (state.pinned.get(APEX) ?? 0) + 1)
    }
    return new ScopedConnection(this.#binding).attach(APEX)
  }

  /** Ends this scope's pins on attachments (the attachments themselves stay, as any attachment does). */
  unpinAttachments(): void {
    if (this.#pinned === undefined) return
    const { pinned } = stateOf(this.handle)
    for (const schema of this.#pinned) {
      const count = (pinned.get(schema) ?? 1) - 1
      if (count > 0) pinned.set(schema, count)
      else pinned.delete(schema)
    }
    this.#pinned = undefined
  }

  /** Runs a prepared statement on this scope's handle (its own owner: it joins a transaction only from inside its callback). */
  execute<T>(
    template: PreparedStatementSource,
    parameters: readonly unknown[],
    map: (result: QueryResult<unknown>) => T,
  ): Promise<T> {
    return executePrepared(this.#binding, this, template, parameters, map)
  }

  /** The first row of a prepared select, on this scope's handle. */
  executeFirst<T>(template: PreparedStatementSource, parameters: readonly unknown[]): Promise<T | undefined> {
    return executePreparedFirst<T>(this.#binding, this, template, parameters)
  }

  /** A prepared read, synchronously, as this scope (see `readPreparedSync`). */
  readSync<T>(template: PreparedStatementSource, parameters: readonly unknown[], first: boolean): T[] | T | undefined {
    return readPreparedSync<T>(this.#binding, this, template, parameters, first)
  }

  close(): void {
    this.#closed = true
  }
}
