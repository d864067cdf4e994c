import * as fs from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { stateOf } from '../connection/handle-state.js'
import { InvalidOptionsError, MigrationError } from '../errors.js'
import type { ShardinesContext } from '../shardines-context.js'
import type { SerializedError, SerializedMigrationOutcome, WorkerMigrationSource } from '../storage/storage-adapter.js'
import type { MigrationReport, MigrationRunnerInfo } from './migration-reports.js'
import type { MigrationSource } from './migration-source.js'
import { emitMigration } from './observe-migration.js'
import { type MigrationOutcome, runMigrations } from './run-migrations.js'

/**
 * Defaults of `migrate.all`, stated once:
 * - one worker thread per core (`os.availableParallelism()`), each migrating
 *   one tenant at a time in its own `begin immediate` transaction, opening the
 *   file with the adapter's pragmas (busy timeout included) and closing it after;
 * - workers are used when the tenant migrations can be imported by a worker:
 *   `migrations.tenant` is a folder, or `migrations.tenantModule` names a module.
 *   Otherwise (objects or a provider: functions cannot cross threads) the tenants
 *   are migrated on the main thread, `concurrency` at a time, and the report says why.
 */
export interface MigrateAllOptions {
  /** Worker threads (or, on the main thread, tenants at once). Default: one per core. */
  concurrency?: number
  /** Called after each tenant, on the main thread. An exception it throws is ignored. */
  onProgress?: (progress: { done: number; total: number; id: string; status: MigrationOutcome['status'] }) => void
  /** Stops starting new tenants once aborted; the report covers those that ran. */
  signal?: AbortSignal
  /** `'auto'` (default): workers when possible; `'main-thread'` forces the main thread. */
  runner?: 'auto' | 'main-thread'
}

/** Where the migrations came from, as given to `createShardines`. */
export interface MigrationSources {
  readonly tenant?: MigrationSource | undefined
  readonly tenantModule?: string | URL | undefined
}

export async function migrateAll(
  ctx: ShardinesContext,
  sources: MigrationSources,
  options: MigrateAllOptions,
): Promise<MigrationReport> {
  ctx.assertOpen()
  const concurrency = options.concurrency ?? availableParallelism()
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionsError(
      `migrate.all: concurrency must be a whole number of at least 1, not ${String(options.concurrency)}.`,
    )
  }
  const ids: string[] = []
  for await (const id of ctx.storage.list()) ids.push(id)
  const { tenant } = await ctx.migrationSets()
  const total = ids.length
  const results = new Map<string, MigrationOutcome>()
  const record = (outcome: MigrationOutcome, durationMs: number): void => {
    results.set(outcome.id, outcome)
    emitMigration(ctx.events, 'all', outcome, durationMs, { done: results.size, total })
    try {
      options.onProgress?.({ done: results.size, total, id: outcome.id, status: outcome.status })
    } catch {
      // A failing progress display must not stop (or half-report) a migration run.
    }
  }

  const choice =
    options.runner === 'main-thread' ? mainThread('runner: "main-thread" was asked for') : chooseRunner(ctx, sources)
  let runner: MigrationRunnerInfo
  if (choice.kind === 'workers' && ctx.storage.capabilities.workerMigrations && ids.length > 0) {
    const workers = Math.min(concurrency, ids.length)
    runner = { kind: 'workers', workers }
    try {
      await ctx.storage.migrateInWorkers?.({
        ids,
        workers,
        source: choice.source,
        names: tenant.names,
        signal: options.signal,
        onOutcome: (outcome) => record(rebuildOutcome(outcome), outcome.durationMs ?? 0),
      })
    } catch (error) {
      // The runner itself broke (e.g. a worker could not load the migrations): every tenant it did not finish is failed.
      if (!options.signal?.aborted) {
        for (const id of ids) {
          if (!results.has(id))
            record({ id, from: null, to: null, status: 'failed', error: new MigrationError(id, undefined, error) }, 0)
        }
      }
    }
  } else {
    runner =
      choice.kind === 'workers' ? mainThread(`the ${ctx.storage.kind} storage adapter has no worker runner`) : choice
    if (ids.length === 0 && choice.kind === 'workers') runner = { kind: 'workers', workers: 0 }
    await migrateOnMainThread(ctx, ids, concurrency, options.signal, record)
  }

  const tenants = ids.flatMap((id) => results.get(id) ?? [])
  return {
    migrated: tenants.filter((t) => t.status === 'migrated').length,
    upToDate: tenants.filter((t) => t.status === 'up-to-date').length,
    failed: tenants.filter((t) => t.status === 'failed').length,
    tenants,
    runner,
  }
}

/** One tenant on the main thread, through the pool (so scopes of this process wait for it). */
export async function migrateTenantHere(ctx: ShardinesContext, id: string): Promise<MigrationOutcome> {
  const { tenant } = await ctx.migrationSets()
  const lease = await ctx.acquire(id, false)
  try {
    const outcome = await runMigrations(lease.handle, id, tenant, ctx.log, ctx.storage)
    if (outcome.status !== 'failed') stateOf(lease.handle).ready = true
    return outcome
  } finally {
    lease.release()
  }
}

async function migrateOnMainThread(
  ctx: ShardinesContext,
  ids: readonly string[],
  concurrency: number,
  signal: AbortSignal | undefined,
  record: (outcome: MigrationOutcome, durationMs: number) => void,
): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < ids.length && !signal?.aborted) {
      const id = ids[next++] as string
      const started = performance.now()
      let outcome: MigrationOutcome
      try {
        outcome = await migrateTenantHere(ctx, id)
      } catch (error) {
        outcome = { id, from: null, to: null, status: 'failed', error: new MigrationError(id, undefined, error) }
      }
      record(outcome, performance.now() - started)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, ids.length)) }, lane))
}

type RunnerChoice = { kind: 'workers'; source: WorkerMigrationSource } | { kind: 'main-thread'; reason: string }

function mainThread(reason: string): { kind: 'main-thread'; reason: string } {
  return { kind: 'main-thread', reason }
}

/** Decides whether worker threads can load the tenant migrations, and from where. */
export function chooseRunner(ctx: ShardinesContext, sources: MigrationSources): RunnerChoice {
  if (!ctx.storage.capabilities.workerMigrations) {
    return mainThread(`the ${ctx.storage.kind} storage adapter has no worker runner`)
  }
  let source: WorkerMigrationSource
  if (sources.tenantModule !== undefined) {
    const location = toLocation(sources.tenantModule)
    source = { kind: 'module', location }
  } else if (typeof sources.tenant === 'string') {
    source = { kind: 'folder', location: path.resolve(sources.tenant) }
  } else if (sources.tenant === undefined) {
    return mainThread('there are no tenant migrations')
  } else {
    return mainThread(
      'migrations.tenant is given as objects or a provider, and functions cannot cross to worker threads; give a folder, or set migrations.tenantModule to a module exporting them',
    )
  }
  if (!needsTypeScript(source)) return { kind: 'workers', source }
  const loader = resolveTypeScriptLoader()
  if (loader === undefined) {
    return mainThread('the tenant migrations are TypeScript and tsx (which workers use to load them) is not installed')
  }
  return { kind: 'workers', source: { ...source, loader } }
}

function toLocation(module: string | URL): string {
  if (module instanceof URL) return module.href
  if (module.startsWith('file:')) return module
  return pathToFileURL(path.resolve(module)).href
}

function needsTypeScript(source: WorkerMigrationSource): boolean {
  const isTs = (file: string) => /\.[cm]?ts$/.test(file) && !/\.d\.[cm]?ts$/.test(file)
  if (source.kind === 'module') return isTs(source.location)
  try {
    return fs.readdirSync(source.location).some(isTs)
  } catch {
    return false
  }
}

/** tsx's programmatic API, from core's dependencies or the application's. */
function resolveTypeScriptLoader(): string | undefined {
  try {
    return import.meta.resolve('tsx/esm/api')
  } catch {
    return undefined
  }
}

/** Turns a worker's plain outcome back into one with a real `MigrationError` (and a cause with name, code, stack). */
export function rebuildOutcome(outcome: SerializedMigrationOutcome): MigrationOutcome {
  const { error, durationMs: _durationMs, ...rest } = outcome
  if (error === undefined) return rest
  return { ...rest, error: new MigrationError(outcome.id, error.migration, rebuildError(error.cause)) }
}

function rebuildError(serialized: SerializedError): Error {
  const error = new Error(serialized.message)
  error.name = serialized.name
  if (serialized.code !== undefined) (error as Error & { code?: string }).code = serialized.code
  if (serialized.stack !== undefined) error.stack = serialized.stack
  return error
}

/** The plain shape a worker posts for an error (the inverse of {@link rebuildOutcome}'s cause). */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code
    return {
      name: error.name,
      message: error.message,
      code: typeof code === 'string' ? code : undefined,
      stack: error.stack,
    }
  }
  return { name: 'Error', message: String(error) }
}

/** A worker's outcome as plain data. */
export function serializeOutcome(outcome: MigrationOutcome): SerializedMigrationOutcome {
  const { error, ...rest } = outcome
  if (error === undefined) return rest
  return { ...rest, error: { migration: error.migration, cause: serializeError(error.cause ?? error) } }
}
