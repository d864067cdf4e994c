import type { Kysely, QueryCompiler, QueryResult } from 'kysely'
import { AttachQueryCompiler } from '../attach/attach-query-compiler.js'
import { attachExplicitly } from '../connection/attachments.js'
import { bindHandle, type HandleBinding } from '../connection/handle-binding.js'
import { stateOf } from '../connection/handle-state.js'
import { createBoundKysely } from '../connection/kysely-factory.js'
import { ScopeResources } from '../connection/scope-resources.js'
import {
  executePrepared,
  executePreparedFirst,
  type PreparedStatementSource,
  readPreparedSync,
} from '../connection/statement-runner.js'
import { CrossDatabaseQueryError, InvalidOptionsError } from '../errors.js'
import { type EventHub, emitRefusal } from '../events/event-hub.js'
import { type GuardPolicy, scopeGuard } from '../guard/statement-guard.js'
import type { ModelSide } from '../registry/model-registry.js'
import type { ShardinesContext } from '../shardines-context.js'
import { APEX, type StorageHandle, type StorageLocation, type TenantLease } from '../storage/storage-adapter.js'
import type { ContextFrame } from './scope-context.js'
import type { TenantScope, TenantScopeDB, TenantTransaction } from './scope-types.js'

/** What a tenant scope may read besides its own file: apex, attached on demand. */
export const TENANT_READABLE: ReadonlySet<string> = new Set([APEX])

/** The ATTACH compiler of every tenant scope: each compiles with its tenant's id as the label of refusals. */
const TENANT_COMPILER = new AttachQueryCompiler({ label: undefined, readable: TENANT_READABLE })

/** Each tenant handle's view of {@link TENANT_COMPILER}, shared by the handle's scopes. */
const tenantCompilers = new WeakMap<StorageHandle, QueryCompiler>()

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

function tenantCompiler(handle: StorageHandle, id: string): QueryCompiler {
  let compiler = tenantCompilers.get(handle)
  if (compiler === undefined) {
    compiler = { compileQuery: (node, queryId) => TENANT_COMPILER.compileFor(id, node, queryId) }
    tenantCompilers.set(handle, compiler)
  }
  return compiler
}

/**
 * The shared compiler, seen from one scope while someone listens: a write the
 * ATTACH compiler refuses is reported as a `guard:refusal` event of the scope.
 */
function reportingCompiler(
  compiler: QueryCompiler,
  events: EventHub,
  tenantId: string,
  scopeId: number,
): QueryCompiler {
  return {
    compileQuery(node, queryId) {
      try {
        return compiler.compileQuery(node, queryId)
      } catch (error) {
        emitRefusal(events, tenantId, error, scopeId)
        throw error
      }
    },
  }
}

/** What a scope uses of its instance (the instance implements it). */
export interface ScopeHost<Models> extends Pick<ShardinesContext, 'storage' | 'log' | 'plugins' | 'events'> {
  /** Scopes that have opened a transaction or connection() hold (close() ends those after its timeout). */
  readonly scopesWithResources: Set<ScopeResources>
  /** Whether the current async context runs inside the transaction or connection() that `token` holds. */
  readonly inContextOf: (token: object) => boolean
  /** Runs `fn` marked as inside `token`'s transaction or connection() callback. */
  readonly runInFrame: <T>(token: object, fn: () => T) => T
  /** Throws `ShardinesClosedError` once close() has given up waiting for running scopes. */
  assertNotClosed(): void
  /** The models of a scope or transaction: tenanted ones on `side` (run as the scope), apex ones shared. */
  scopeModels(tenantId: string, side: ModelSide): Models
}

/** The scope object behind `withTenant`: a value bound to one tenant's pinned handle. */
export class TenantScopeImpl<TenantDB, ApexDB, Models> implements TenantScope<TenantDB, ApexDB, Models>, ContextFrame {
  readonly id: string
  /** The async context this scope was opened in (an enclosing scope or transaction), for ContextFrame. */
  readonly parent: ContextFrame | undefined
  readonly token = undefined
  /** The `scopeId` of this scope's events; 0 when its start was not observed. */
  readonly scopeId: number
  readonly handle: StorageHandle
  /** What this scope opened that must end with it. */
  readonly resources: ScopeResources
  /** Set when the scope must reject although its function resolved (e.g. it left a transaction open). */
  failed: Error | undefined
  /** Schemas this scope attached explicitly (t.attach), pinned on the handle until the scope ends. */
  #pinned: string[] | undefined
  readonly #binding: HandleBinding
  readonly #host: ScopeHost<Models>
  #db: Kysely<TenantScopeDB<TenantDB, ApexDB>> | undefined
  #models: Models | undefined
  #modelSide: ModelSide | undefined
  #closed = false

  constructor(
    host: ScopeHost<Models>,
    id: string,
    lease: TenantLease,
    locate: (schema: string) => StorageLocation,
    parent: ContextFrame | undefined,
    scopeId = 0,
  ) {
    this.id = id
    this.scopeId = scopeId
    this.#host = host
    this.parent = parent
    this.handle = lease.handle
    this.resources = new ScopeResources(host.scopesWithResources)
    // Each statement is its own owner; an enclosing scope's (or this scope's) transaction is joined
    // from inside its callback through the async context (inContextOf), and waited for from elsewhere.
    this.#binding = bindHandle(lease.handle, {
      label: id,
      inContextOf: host.inContextOf,
      runInFrame: host.runInFrame,
      // A scope still running when the instance is closed gets ShardinesClosedError, not the driver's "connection is not open".
      isClosed: () => {
        host.assertNotClosed()
        return this.#closed
      },
      locate,
      maxAttached: host.storage.maxAttached,
      syncReads: host.storage.capabilities.syncReads,
      refuseAttach: host.storage.capabilities.attach
        ? null
        : (schema) => {
            throw new CrossDatabaseQueryError(host.storage.kind, `A statement reading ${schema}.<table>`, id)
          },
      log: host.log,
      events: host.events,
      scopeId,
      guard: tenantGuard(lease.handle, id),
      busyTimeout: host.storage.busyTimeout,
      resources: this.resources,
    })
  }

  /** This frame's scope (a scope is the first frame of its own context). */
  get scope(): TenantScopeImpl<TenantDB, ApexDB, Models> {
    return this
  }

  get db(): Kysely<TenantScopeDB<TenantDB, ApexDB>> {
    if (this.#db === undefined) {
      const compiler = tenantCompiler(this.handle, this.id)
      const events = this.#host.events
      this.#db = createBoundKysely(
        this.#binding,
        this.scopeId === 0 && events.emit === null
          ? compiler
          : reportingCompiler(compiler, events, this.id, this.scopeId),
        this.#host.plugins,
      )
    }
    return this.#db
  }

  get models(): Models {
    // Made on first touch: a scope that never uses models pays nothing for them.
    this.#models ??= this.#host.scopeModels(this.id, this.modelSide())
    return this.#models
  }

  /** Where this scope's tenanted models run: `t.db`, and this handle's prepared path as this scope. */
  modelSide(): ModelSide {
    this.#modelSide ??= {
      db: () => this.db,
      attachesApex: this.#host.storage.capabilities.attach,
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
            models ??= scope.#host.scopeModels(scope.id, { ...scope.modelSide(), db: () => trx })
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
    return attachExplicitly(this.#binding, APEX)
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
