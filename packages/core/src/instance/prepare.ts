import type { Compilable, Kysely, KyselyPlugin } from 'kysely'
import { AttachQueryCompiler } from '../attach/attach-query-compiler.js'
import { bindHandle, type HandleBinding } from '../connection/handle-binding.js'
import { createBoundKysely, plainCompiler } from '../connection/kysely-factory.js'
import { InvalidOptionsError, NoTenantError } from '../errors.js'
import {
  compilePrepared,
  createPreparedQuery,
  type Params,
  type PreparedQuery,
  type PreparedRunner,
} from '../prepared/prepared-query.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import { TENANT_READABLE, type TenantScopeImpl } from '../tenant/tenant-scope.js'

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

/**
 * `shard.prepare(build)`: compiles a tenant query once, with the tenant
 * scope's ATTACH compiler; each run goes to the scope current at the call
 * (`NoTenantError` outside one), on that scope's handle.
 */
export function prepareTenantQuery<DB, Args, O>(
  plugins: readonly KyselyPlugin[],
  currentScope: () => TenantScopeImpl<any, any, any> | undefined,
  build: (db: Kysely<DB>, p: Params<Args>) => Compilable<O>,
): PreparedQuery<Args, O> {
  const db = createBoundKysely<DB>(
    COMPILE_ONLY,
    new AttachQueryCompiler({ label: undefined, readable: TENANT_READABLE }),
    plugins,
  )
  const template = compilePrepared(db, build as never, plugins)
  const current = () => {
    const scope = currentScope()
    if (scope === undefined) throw new NoTenantError('a prepared query')
    return scope
  }
  return createPreparedQuery<Args, O>(template, {
    run: (template, parameters, map) => current().execute(template, parameters, map),
    first: (template, parameters) => current().executeFirst(template, parameters),
    readSync: (template, parameters, first) => current().readSync(template, parameters, first),
  })
}

/** `shard.prepareApex(build)`: compiles an apex query once; each run goes through apex's prepared path (`runner`). */
export function prepareApexQuery<DB, Args, O>(
  plugins: readonly KyselyPlugin[],
  runner: PreparedRunner,
  build: (db: Kysely<DB>, p: Params<Args>) => Compilable<O>,
): PreparedQuery<Args, O> {
  const db = createBoundKysely<DB>(COMPILE_ONLY, plainCompiler(), plugins)
  const template = compilePrepared(db, build as never, plugins)
  return createPreparedQuery<Args, O>(template, runner)
}
