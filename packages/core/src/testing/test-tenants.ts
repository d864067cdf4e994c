import { AsyncResource } from 'node:async_hooks'
import { assertTenantId, InvalidOptionsError, type Shardines, type TenantScope } from '../index.js'
import { assertTestPrefix, DEFAULT_TEST_PREFIX, TestTenantIds } from './test-tenant-ids.js'

/**
 * How a test tenant is made:
 * - `'fork'` (default): a copy of a template tenant that was created and
 *   migrated once (`shard.tenants.fork(template, id)`), so each test pays a
 *   file copy instead of every migration;
 * - `'create'`: `shard.tenants.create(id)`, every tenant migration each time
 *   (what a storage that cannot fork falls back to).
 */
export type TestTenantStrategy = 'fork' | 'create'

/** Options of {@link createTestTenants} and {@link withTestTenant}. */
export interface TestTenantsOptions<ApexDB = any, TenantDB = any, Models = any> {
  /**
   * Starts every id this helper makes: `<prefix>-<pid>[t<thread>]-<random>-<n>`. 1–32
   * characters of `a-z 0-9 _ -`, starting with a letter or digit
   * (`InvalidOptionsError` otherwise). Default `'test'`.
   */
  readonly prefix?: string
  /**
   * An existing tenant to copy instead of a template of the helper's own,
   * e.g. one a global setup created and seeded once for every worker. The
   * helper never writes to it or destroys it.
   */
  readonly template?: string
  /**
   * Fills the template once, after its migrations (with `'fork'`), or each
   * new tenant (with `'create'`), inside `withTenant`. Not used with `template`.
   */
  readonly seed?: (t: TenantScope<TenantDB, ApexDB, Models>) => unknown
  /** `'fork'` (default) or `'create'`; see {@link TestTenantStrategy}. */
  readonly strategy?: TestTenantStrategy
}

/**
 * Fresh tenants for tests, each a copy of one template migrated once per
 * worker process. Ids never collide across processes, threads or helpers, so
 * parallel workers can share one data folder. Make one per test file with
 * {@link createTestTenants}; use {@link TestTenants.run} (which destroys its
 * tenant), or {@link TestTenants.create} with {@link TestTenants.cleanup}
 * after each test; and {@link TestTenants.dispose} after all.
 */
export interface TestTenants<ApexDB = any, TenantDB = any, Models = any> {
  /** The prefix of this helper's ids. */
  readonly prefix: string
  /** The tenant copied for each test: the `template` option, or the helper's own (made on first use). */
  readonly templateId: string
  /**
   * How tenants are made now: the option given, or `'create'` after the
   * storage refused a fork with `InvalidOptionsError` (e.g. a remote database).
   */
  readonly strategy: TestTenantStrategy
  /** The tenants this helper made that are not destroyed yet, in creation order. */
  readonly live: readonly string[]
  /**
   * Makes the template now (migrated and seeded) instead of on the first
   * {@link create}, e.g. in a `before` hook so the first test is not slower
   * than the others. Safe to call concurrently and repeatedly.
   */
  ready(): Promise<void>
  /**
   * Creates a fresh tenant and resolves to its id. Destroy it with
   * {@link destroy} or {@link cleanup}.
   *
   * @example
   * ```ts
   * const id = await testTenants.create()   // 'test-2hu8g-k3x9a-1'
   * await shard.withTenant(id, (t) => t.models.Document.create({ title: 'draft' }))
   * ```
   */
  create(): Promise<string>
  /**
   * Creates a fresh tenant, runs `fn` inside `shard.withTenant(id, fn)`, and
   * destroys the tenant when `fn` settles, also when it throws. Resolves to
   * what `fn` returns; rejects with `fn`'s error when it throws.
   */
  run<T>(fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>>
  /** Destroys one of this helper's tenants (waiting for its scopes); resolves to whether it existed. */
  destroy(id: string): Promise<boolean>
  /**
   * Destroys every tenant {@link create} made that is not destroyed yet (for
   * an `afterEach` hook), never those of a {@link run} (it destroys its own,
   * and it may be a concurrent test's, still running). Tests that run
   * concurrently with `create()` should destroy their own tenant instead: an
   * `afterEach` runs when its test ends, while the others still use theirs.
   * Tries them all; rejects with an `AggregateError` if any failed.
   */
  cleanup(): Promise<void>
  /**
   * Destroys every tenant of this helper still alive, then its own template
   * (never a `template` that was given). For an `after`/`afterAll` hook, once
   * no test runs. Later calls of {@link create} are refused.
   */
  dispose(): Promise<void>
}

/**
 * A helper that makes a fresh tenant per test by forking a template tenant
 * that is created and migrated once per process (lazily, on the first
 * `create()`, however many tests ask at once).
 *
 * @example
 * ```ts
 * import { after, afterEach, test } from 'node:test'
 * import { createTestTenants } from '@shardines/core/testing'
 *
 * const testTenants = createTestTenants(shard, {
 *   prefix: 'docs',
 *   seed: (t) => t.models.Document.create({ title: 'Welcome' }), // once, in the template
 * })
 * afterEach(() => testTenants.cleanup())
 * after(() => testTenants.dispose())
 *
 * test('a new document is counted', () =>
 *   testTenants.run(async (t) => {
 *     await t.models.Document.create({ title: 'Draft' })
 *     assert.equal(await t.models.Document.count(), 2)
 *   }))
 * ```
 */
export function createTestTenants<ApexDB, TenantDB, Models>(
  shard: Shardines<ApexDB, TenantDB, Models>,
  options: TestTenantsOptions<ApexDB, TenantDB, Models> = {},
): TestTenants<ApexDB, TenantDB, Models> {
  checkOptions(options)
  return new TestTenantsImpl(shard, options)
}

const KNOWN_OPTIONS = ['prefix', 'template', 'seed', 'strategy'] as const

function checkOptions(options: TestTenantsOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(
      'The test tenants options must be an object: { prefix?, template?, seed?, strategy? }.',
    )
  }
  for (const key of Object.keys(options)) {
    if (!(KNOWN_OPTIONS as readonly string[]).includes(key)) {
      throw new InvalidOptionsError(
        `Unknown test tenants option "${key}"; the options are ${KNOWN_OPTIONS.join(', ')}.`,
      )
    }
  }
  if (options.strategy !== undefined && options.strategy !== 'fork' && options.strategy !== 'create') {
    throw new InvalidOptionsError(
      `The test tenants strategy must be 'fork' or 'create', not ${JSON.stringify(options.strategy)}.`,
    )
  }
  if (options.seed !== undefined && typeof options.seed !== 'function') {
    throw new InvalidOptionsError('The test tenants seed must be a function (t) => …, run inside withTenant.')
  }
  if (options.prefix !== undefined) assertTestPrefix(options.prefix)
  if (options.template !== undefined) {
    assertTenantId(options.template)
    if (options.seed !== undefined) {
      throw new InvalidOptionsError(
        'The test tenants options give both template and seed: seed the given template yourself, or drop template.',
      )
    }
  }
}

/**
 * Runs `fn` in the async context this module was loaded in. The template is
 * shared work: made in the context of whichever test asked first, it would
 * count as that test's (in its access recorder, its spans) and inherit its
 * tenant scope.
 */
const detached = AsyncResource.bind(<T>(fn: () => T): T => fn())

class TestTenantsImpl<ApexDB, TenantDB, Models> implements TestTenants<ApexDB, TenantDB, Models> {
  readonly #shard: Shardines<ApexDB, TenantDB, Models>
  readonly #ids: TestTenantIds
  readonly #seed: TestTenantsOptions<ApexDB, TenantDB, Models>['seed']
  /** Whether the template is the helper's own (created, seeded and destroyed here). */
  readonly #ownTemplate: boolean
  /** Live tenants, each with who destroys it: `run` itself, or the caller of `create` (or `cleanup`). */
  readonly #live = new Map<string, 'run' | 'create'>()
  readonly templateId: string
  #strategy: TestTenantStrategy
  /** The template being made, once asked for; cleared after a failure so a later test retries. */
  #template: Promise<void> | undefined
  #disposed = false
  /** The last fork asked for: the next one starts when it ends (see {@link #fork}). */
  #forks: Promise<unknown> = Promise.resolve()

  constructor(shard: Shardines<ApexDB, TenantDB, Models>, options: TestTenantsOptions<ApexDB, TenantDB, Models>) {
    this.#shard = shard
    // Only a missing prefix means the default: null or '' are refused like any other bad prefix.
    this.#ids = new TestTenantIds(options.prefix === undefined ? DEFAULT_TEST_PREFIX : options.prefix)
    this.#seed = options.seed
    this.#ownTemplate = options.template === undefined
    this.templateId = options.template ?? this.#ids.template()
    this.#strategy = options.strategy ?? 'fork'
  }

  get prefix(): string {
    return this.#ids.prefix
  }

  get strategy(): TestTenantStrategy {
    return this.#strategy
  }

  get live(): readonly string[] {
    return Object.freeze([...this.#live.keys()])
  }

  async ready(): Promise<void> {
    this.#assertUsable()
    if (this.#strategy === 'create' || !this.#ownTemplate) return
    this.#template ??= detached(() => this.#makeTemplate()).catch((error: unknown) => {
      this.#template = undefined
      throw error
    })
    await this.#template
  }

  async #makeTemplate(): Promise<void> {
    const id = this.templateId
    await this.#shard.tenants.create(id)
    if (this.#seed === undefined) return
    try {
      await this.#shard.withTenant(id, this.#seed)
    } catch (error) {
      // A half-seeded template would be copied into every test: remove it, and let the next test try again.
      await this.#shard.tenants.destroy(id).catch(() => undefined)
      throw error
    }
  }

  create(): Promise<string> {
    return this.#create('create')
  }

  async #create(owner: 'run' | 'create'): Promise<string> {
    this.#assertUsable()
    const id = this.#ids.next()
    if (this.#strategy === 'fork') {
      await this.ready()
      try {
        await this.#fork(id)
        this.#live.set(id, owner)
        return id
      } catch (error) {
        // A storage that cannot copy databases (e.g. libSQL on a remote server) refuses with InvalidOptionsError.
        if (!(error instanceof InvalidOptionsError)) throw error
        this.#strategy = 'create'
      }
    }
    await this.#shard.tenants.create(id)
    this.#live.set(id, owner)
    if (this.#seed !== undefined) {
      try {
        await this.#shard.withTenant(id, this.#seed)
      } catch (error) {
        await this.destroy(id).catch(() => undefined)
        throw error
      }
    }
    return id
  }

  /**
   * A fork locks its source in the storage, so forks of one template run one
   * at a time whatever the caller does. Queueing them here, rather than on the
   * storage's lock (which other processes must poll), starts each as soon as
   * the one before it ends.
   */
  #fork(id: string): Promise<void> {
    const fork = this.#forks.then(() => this.#shard.tenants.fork(this.templateId, id))
    this.#forks = fork.catch(() => undefined)
    return fork
  }

  async run<T>(fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>): Promise<Awaited<T>> {
    const id = await this.#create('run')
    let result: Awaited<T>
    try {
      result = await this.#shard.withTenant(id, fn)
    } catch (error) {
      // The test's own failure is what the caller needs to see; a failed destroy is left to dispose().
      await this.destroy(id).catch(() => undefined)
      throw error
    }
    await this.destroy(id)
    return result
  }

  async destroy(id: string): Promise<boolean> {
    if (!this.#live.has(id)) {
      throw new InvalidOptionsError(
        `Tenant "${id}" was not made by this test tenants helper (or is destroyed already); destroy other tenants with shard.tenants.destroy.`,
      )
    }
    const owner = this.#live.get(id)!
    // Forgotten first, so that a cleanup() meanwhile does not destroy it a second time.
    this.#live.delete(id)
    try {
      return await this.#shard.tenants.destroy(id)
    } catch (error) {
      this.#live.set(id, owner) // still there, perhaps: dispose() tries again
      throw error
    }
  }

  cleanup(): Promise<void> {
    // run() destroys its own tenant: those may belong to tests still running (concurrent tests).
    return this.#destroyAll([...this.#live].filter(([, owner]) => owner === 'create').map(([id]) => id))
  }

  async #destroyAll(ids: readonly string[]): Promise<void> {
    const outcomes = await Promise.allSettled(ids.map((id) => this.destroy(id)))
    const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []))
    if (errors.length > 0) {
      throw new AggregateError(errors, `${errors.length} of ${ids.length} test tenants could not be destroyed.`)
    }
  }

  async dispose(): Promise<void> {
    this.#disposed = true
    await this.#destroyAll([...this.#live.keys()])
    const template = this.#template
    this.#template = undefined
    if (template === undefined) return
    // A template that failed to be made was removed already.
    if (await template.then(() => true).catch(() => false)) await this.#shard.tenants.destroy(this.templateId)
  }

  #assertUsable(): void {
    if (this.#disposed) {
      throw new InvalidOptionsError(`The test tenants helper "${this.prefix}" was disposed; make a new one.`)
    }
  }
}

/** Helpers made by {@link withTestTenant}, per instance and per set of options. */
const shared = new WeakMap<object, Map<string, TestTenants>>()
/** A number per seed function, so that helpers with different seeds never share a template. */
const seedKeys = new WeakMap<object, number>()
let seedCount = 0

function sharedKey(options: TestTenantsOptions): string {
  let seed = 0
  if (options.seed !== undefined) {
    seed = seedKeys.get(options.seed) ?? ++seedCount
    seedKeys.set(options.seed, seed)
  }
  return JSON.stringify([
    options.prefix ?? DEFAULT_TEST_PREFIX,
    options.template ?? '',
    options.strategy ?? 'fork',
    seed,
  ])
}

/**
 * Runs `fn` in a fresh tenant (a fork of this process's template) and
 * destroys the tenant afterwards, also when `fn` throws; resolves to what
 * `fn` returns. Calls with the same instance and options share one template
 * (`disposeTestTenants(shard)` removes it).
 *
 * @example
 * ```ts
 * test('counts its own documents only', () =>
 *   withTestTenant(shard, async (t) => {
 *     await t.models.Document.create({ title: 'a', owner_id: 1 })
 *     assert.equal(await t.models.Document.count(), 1)
 *   }))
 * ```
 */
export async function withTestTenant<ApexDB, TenantDB, Models, T>(
  shard: Shardines<ApexDB, TenantDB, Models>,
  fn: (t: TenantScope<TenantDB, ApexDB, Models>) => T | Promise<T>,
  options: TestTenantsOptions<ApexDB, TenantDB, Models> = {},
): Promise<Awaited<T>> {
  return await sharedTestTenants(shard, options).run(fn)
}

/** The helper {@link withTestTenant} uses for `shard` and `options` (made on first use). */
export function sharedTestTenants<ApexDB, TenantDB, Models>(
  shard: Shardines<ApexDB, TenantDB, Models>,
  options: TestTenantsOptions<ApexDB, TenantDB, Models> = {},
): TestTenants<ApexDB, TenantDB, Models> {
  checkOptions(options)
  let helpers = shared.get(shard)
  if (helpers === undefined) {
    helpers = new Map()
    shared.set(shard, helpers)
  }
  const key = sharedKey(options as TestTenantsOptions)
  let helper = helpers.get(key)
  if (helper === undefined) {
    helper = createTestTenants(shard, options)
    helpers.set(key, helper)
  }
  return helper
}

/**
 * Disposes every helper {@link withTestTenant} made for `shard`: destroys
 * their tenants still alive and their templates. Call it once, after all
 * tests (`after` in node:test, `afterAll` in vitest), before `shard.close()`.
 */
export async function disposeTestTenants(shard: Shardines<any, any, any>): Promise<void> {
  const helpers = shared.get(shard)
  if (helpers === undefined) return
  shared.delete(shard)
  const outcomes = await Promise.allSettled([...helpers.values()].map((h) => h.dispose()))
  const errors = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []))
  if (errors.length > 0) throw new AggregateError(errors, 'Some test tenants could not be destroyed.')
}
