import type { Compilable, Kysely, KyselyPlugin } from 'kysely'
import { bindHandle, type HandleBinding } from '../connection/handle-binding.js'
import { createBoundKysely, plainCompiler } from '../connection/kysely-factory.js'
import { QueryLogger } from '../connection/query-log.js'
import { ScopeResources } from '../connection/scope-resources.js'
import { executePrepared, executePreparedFirst, readPreparedSync } from '../connection/statement-runner.js'
import { InvalidOptionsError, NoTenantError, ShardinesClosedError, TransactionLeftOpenError } from '../errors.js'
import { EventHub, errorCodeOf } from '../events/event-hub.js'
import type { ShardinesEventListener, ShardinesEventType } from '../events/shardines-event.js'
import { apexGuard } from '../guard/statement-guard.js'
import {
  type HonoContextLike,
  type HonoTenantMiddleware,
  type HonoTenantResolver,
  honoTenantMiddleware,
  type NodeResponseLike,
  type NodeTenantMiddleware,
  nodeTenantMiddleware,
  type TenantMiddlewareOptions,
} from '../http/middleware.js'
import type { NodeRequestLike } from '../http/tenant-request.js'
import type { TenantResolver } from '../http/tenant-resolvers.js'
import { createMigrateApi, type MigrateApi } from '../migration/migrate-api.js'
import { acquireTenant } from '../migration/migrate-on-open.js'
import { EMPTY_MIGRATIONS, loadMigrations, type MigrationSet } from '../migration/migration-source.js'
import type { Params, PreparedQuery, PreparedRunner } from '../prepared/prepared-query.js'
import { createModelRegistry, type ModelSide } from '../registry/model-registry.js'
import type { CloseOptions, Shardines } from '../shardines.js'
import type { ShardinesContext } from '../shardines-context.js'
import type { MigrateOnOpen, ShardinesOptions } from '../shardines-options.js'
import {
  APEX,
  type PoolStats,
  type StorageAdapter,
  type StorageLocation,
  type TenantLease,
} from '../storage/storage-adapter.js'
import { type Budgets, budgetsOf } from '../tenant/budgets.js'
import { type JobContext, jobContextOf, tenantOfJobContext } from '../tenant/job-context.js'
import { type MapTenantsOptions, type MapTenantsResult, mapTenants } from '../tenant/map-tenants.js'
import { ScopeContext } from '../tenant/scope-context.js'
import type { TenantScope, TenantScopeDB, TenantsScope } from '../tenant/scope-types.js'
import { assertTenantId } from '../tenant/tenant-id.js'
import { type ScopeHost, TenantScopeImpl } from '../tenant/tenant-scope.js'
import { createTenantsApi, type TenantsApi } from '../tenant/tenants-api.js'
import { withTenants } from '../tenant/with-tenants.js'
import { InstanceModels } from './instance-models.js'
import { prepareApexQuery, prepareTenantQuery } from './prepare.js'

/** A scope observed from its start (someone listened): what its `scope:end` event reports. */
interface ObservedScope {
  readonly tenantId: string
  readonly scopeId: number
  readonly started: number
  /** When its handle was acquired (0 until then). */
  acquired: number
  /** What its function threw, if it threw. */
  thrown: { readonly error: unknown } | undefined
}

/** Prepared apex statements own no transaction: they wait while any apex transaction is open. */
const APEX_PREPARED_OWNER = Object.freeze({})

/**
 * The instance behind {@link Shardines} (made by `createShardines`): the
 * entry points, the apex handle, and the lifecycle (close). Tenant scopes
 * (`tenant/tenant-scope.ts`), the fan-outs (`tenant/with-tenants.ts`,
 * `tenant/map-tenants.ts`), prepare and the models live in their own modules;
 * they reach the instance through {@link ShardinesContext} and {@link ScopeHost}.
 */
export class ShardinesInstance<ApexDB, TenantDB, Models>
  implements Shardines<ApexDB, TenantDB, Models>, ShardinesContext, ScopeHost<Models>
{
  readonly storage: StorageAdapter
  readonly log: QueryLogger | null
  readonly events: EventHub
  readonly plugins: readonly KyselyPlugin[]
  readonly migrateOnOpen: MigrateOnOpen
  readonly tenants: TenantsApi
  readonly migrate: MigrateApi
  readonly #options: ShardinesOptions<Models>
  readonly #context = new ScopeContext()
  /** Whether the current async context runs inside the transaction or connection() that `token` holds. */
  readonly inContextOf = this.#context.inContextOf
  /** Runs `fn` marked as inside `token`'s transaction or connection() callback. */
  readonly runInFrame = this.#context.runInFrame
  /** The last `scopeId` given to an observed scope. */
  #lastScopeId = 0
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
  /** The sets once loaded (for checks that must not wait a tick, such as the version check on a miss). */
  #loadedSets: { apex: MigrationSet; tenant: MigrationSet } | undefined
  #apex: Kysely<ApexDB> | undefined
  #apexBindingValue: HandleBinding | undefined
  #closed = false
  readonly #models: InstanceModels<Models>
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

  readonly #budgets: Budgets | undefined

  constructor(options: ShardinesOptions<Models>) {
    this.#options = options
    this.storage = options.storage
    this.log = options.log === undefined ? null : new QueryLogger(options.log)
    const storage = options.storage
    this.events = new EventHub(
      options.log,
      typeof storage.observePool === 'function' ? (listener) => storage.observePool!(listener) : undefined,
    )
    this.plugins = Object.freeze([...(options.plugins ?? [])])
    this.migrateOnOpen = options.migrateOnOpen ?? 'lazy'
    this.#locate = (schema) => this.storage.locate(schema)
    this.tenants = createTenantsApi(this)
    this.migrate = createMigrateApi(this, options.migrations)
    this.#budgets = budgetsOf(options.budgets)
    // Checked (and frozen) now: a bad declaration fails at startup, naming the model and relation.
    this.#models = new InstanceModels(createModelRegistry(options.models, this.plugins), this.#apexSide, this.#context)
  }

  get models(): Models {
    return this.#models.forInstance()
  }

  /** The models of a scope or transaction: tenanted ones on `side` (run as the scope), apex ones shared. */
  scopeModels(tenantId: string, side: ModelSide): Models {
    return this.#models.forScope(tenantId, side)
  }

  assertOpen(): void {
    if (this.#closing !== undefined) throw new ShardinesClosedError()
  }

  /** Refuses statements once close() has given up waiting (running scopes may finish until then). */
  assertNotClosed(): void {
    if (this.#closed) throw new ShardinesClosedError()
  }

  insideScopeOf(tenantId: string): boolean {
    return this.#context.insideScopeOf(tenantId)
  }

  migrationSets(): Promise<{ apex: MigrationSet; tenant: MigrationSet }> {
    this.#sets ??= (async () => {
      const [apex, tenant] = await Promise.all([
        loadMigrations(this.#options.migrations?.apex ?? EMPTY_MIGRATIONS, 'apex'),
        loadMigrations(this.#options.migrations?.tenant ?? EMPTY_MIGRATIONS, 'tenant'),
      ])
      this.#loadedSets = { apex, tenant }
      return this.#loadedSets
    })()
    // A failed load (e.g. a syntax error in a migration file) is retried next time.
    this.#sets.catch(() => {
      this.#sets = undefined
    })
    return this.#sets
  }

  loadedMigrationSets(): { apex: MigrationSet; tenant: MigrationSet } | undefined {
    return this.#loadedSets
  }

  acquire(tenantId: string, ready: boolean): Promise<TenantLease> {
    return acquireTenant(this, tenantId, ready)
  }

  on<K extends ShardinesEventType | '*'>(type: K, listener: ShardinesEventListener<K>): () => void {
    return this.events.on(type, listener)
  }

  withTenant<T>(id: string, fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>> {
    try {
      this.assertOpen()
      assertTenantId(id)
      if (typeof fn !== 'function') throw new InvalidOptionsError('withTenant(id, fn) needs a function.')
    } catch (error) {
      return Promise.reject(error)
    }
    // Observed when someone listens now (it then ends observed too, its budget wait included);
    // nobody listens: no clock is read.
    const observed = this.events.emit === null ? null : this.#scopeStarted(id)
    // Not async itself: without budgets the scope's own promise is returned as is (no extra ticks).
    const budgets = this.#budgets
    return budgets === undefined ? this.#runScope(id, fn, observed) : this.#runBudgeted(budgets, id, fn, observed)
  }

  async #runBudgeted<T>(
    budgets: Budgets,
    id: string,
    fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
    observed: ObservedScope | null,
  ): Promise<Awaited<T>> {
    let leave: () => void
    try {
      leave = await budgets.enter(id, this.#context.currentScope() !== undefined, this.#context.insideScopeOf(id))
    } catch (error) {
      // A budget's timeout (TenantBusyError, PoolExhaustedError) ends the observed scope.
      if (observed !== null) this.#scopeEnded(observed, error)
      throw error
    }
    try {
      return await this.#runScope(id, fn, observed)
    } finally {
      leave()
    }
  }

  /** The scope itself, once its budget (if any) let it in; `observed`: reported (see #scopeStarted). */
  async #runScope<T>(
    id: string,
    fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
    observed: ObservedScope | null,
  ): Promise<Awaited<T>> {
    let lease: TenantLease
    try {
      lease = await this.acquire(id, true)
    } catch (error) {
      if (observed !== null) this.#scopeEnded(observed, error)
      throw error
    }
    if (observed !== null) observed.acquired = performance.now()
    const scope = new TenantScopeImpl<TenantDB, ApexDB, Models>(
      this,
      id,
      lease,
      this.#locate,
      this.#context.currentFrame(),
      observed === null ? 0 : observed.scopeId,
    )
    this.#running++
    let result: Awaited<T>
    try {
      result = await this.#context.runScope(scope, fn)
    } catch (error) {
      if (observed !== null) observed.thrown = { error }
      throw error
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
      if (observed !== null) this.#scopeEnded(observed, observed.thrown?.error ?? scope.failed)
    }
    if (scope.failed !== undefined) throw scope.failed
    return result
  }

  /** Reports `scope:start` and returns what `scope:end` will report from. */
  #scopeStarted(tenantId: string): ObservedScope {
    const parentScopeId = this.#context.currentScope()?.scopeId ?? 0
    const observed: ObservedScope = {
      tenantId,
      scopeId: ++this.#lastScopeId,
      started: performance.now(),
      acquired: 0,
      thrown: undefined,
    }
    this.events.emit?.({
      type: 'scope:start',
      tenantId,
      scopeId: observed.scopeId,
      ...(parentScopeId === 0 ? {} : { parentScopeId }),
    })
    return observed
  }

  /** Reports `scope:end`, with `error` (undefined: it went well) by its code. */
  #scopeEnded(observed: ObservedScope, error: unknown): void {
    const emit = this.events.emit
    if (emit === null) return
    const ended = performance.now()
    const { tenantId, scopeId, started } = observed
    // Until the handle is acquired, the whole scope is acquisition (a failed acquisition: all of it).
    const acquireMs = (observed.acquired || ended) - started
    emit(
      error === undefined
        ? { type: 'scope:end', tenantId, scopeId, durationMs: ended - started, acquireMs, outcome: 'ok' }
        : {
            type: 'scope:end',
            tenantId,
            scopeId,
            durationMs: ended - started,
            acquireMs,
            outcome: 'error',
            errorCode: errorCodeOf(error),
          },
    )
  }

  withTenants<const Ids extends readonly string[], T>(
    ids: Ids,
    fn: (x: TenantsScope<Ids[number], TenantDB, ApexDB>) => T | Promise<T>,
  ): Promise<Awaited<T>> {
    return withTenants<Ids, T, TenantDB, ApexDB>(this, this.#locate, ids, fn)
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
    const scope = this.#context.currentScope()
    if (scope === undefined) throw new NoTenantError('shard.db()')
    return scope.db
  }

  currentTenant(): string | undefined {
    return this.#context.currentScope()?.id
  }

  jobContext(): JobContext {
    const scope = this.#context.currentScope()
    if (scope === undefined) throw new NoTenantError('shard.jobContext()')
    return jobContextOf(scope.id)
  }

  runJob<T>(ctx: unknown, fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>> {
    let tenant: string
    try {
      this.assertOpen()
      tenant = tenantOfJobContext(ctx)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.withTenant(tenant, fn)
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
      events: this.events,
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
    return prepareTenantQuery(this.plugins, () => this.#context.currentScope(), build)
  }

  prepareApex<Args = Record<string, any>, O = unknown>(
    build: (db: Kysely<ApexDB>, p: Params<Args>) => Compilable<O>,
  ): PreparedQuery<Args, O> {
    this.assertOpen()
    return prepareApexQuery(this.plugins, this.#apexSide.runner, build)
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
