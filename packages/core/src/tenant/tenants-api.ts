import { InvalidOptionsError } from '../errors.js'
import { errorCodeOf } from '../events/event-hub.js'
import type { LifecycleOperation } from '../events/shardines-event.js'
import { tenantStatus } from '../migration/migration-status.js'
import { observeMigration } from '../migration/observe-migration.js'
import { runMigrations } from '../migration/run-migrations.js'
import type { ShardinesContext } from '../shardines-context.js'
import { APEX, type StorageCapabilities } from '../storage/storage-adapter.js'
import type {
  ArchivedTenant,
  DoctorFinding,
  DoctorOptions,
  DoctorReport,
  LayoutMigrationOptions,
  LayoutMigrationReport,
} from './lifecycle-types.js'
import { assertTenantId } from './tenant-id.js'

/** `shard.tenants`: the tenant lifecycle. Every id is validated before the filesystem is touched. */
export interface TenantsApi {
  /**
   * Creates the tenant's database with every tenant migration applied, atomically:
   * it appears complete or not at all. `TenantExistsError` if it exists (also
   * when another process created it first).
   */
  create(id: string): Promise<void>
  exists(id: string): Promise<boolean>
  /** Every tenant id, sorted. */
  list(): AsyncIterable<string>
  /**
   * New scopes get `TenantNotFoundError` at once; waits for running scopes to
   * end, then closes the handle and removes the file and its `-wal`/`-shm`.
   * Resolves to whether the tenant existed.
   */
  destroy(id: string): Promise<boolean>
  /**
   * An online, consistent copy of a live tenant (or `'apex'`) at `destPath`.
   * Refused with `InvalidOptionsError` (nothing written) when `destPath` is
   * inside the data folder, or is an existing file and `overwrite` is not
   * set; nothing is ever written over a live tenant or apex database.
   */
  backup(id: string, destPath: string, options?: BackupOptions): Promise<void>
  /**
   * An online, consistent copy of a live tenant (or `'apex'`) streamed as the
   * bytes of an SQLite database file, e.g. to pipe into an upload or an HTTP
   * response (`Readable.from(shard.tenants.export(id))`). The snapshot is
   * taken when iteration starts; what the adapter staged is removed when it
   * ends or is abandoned.
   */
  export(id: string): AsyncIterable<Uint8Array>
  /** Creates tenant `toId` as a consistent copy of `fromId` (e.g. a staging copy). */
  fork(fromId: string, toId: string): Promise<void>
  /**
   * Gives tenant `from` the id `to`, atomically across processes: new scopes
   * of `from` get `TenantNotFoundError` at once; it waits for running scopes
   * (and other processes' transactions on the file) like `destroy`, then moves
   * the file. `TenantExistsError` when `to` is taken (live or archived).
   */
  rename(from: string, to: string): Promise<void>
  /**
   * Moves the tenant out of the live set into the archive (compressed, with
   * its schema version recorded), waiting like `destroy`. Scopes then get
   * `TenantArchivedError` until `restore`.
   */
  archive(id: string): Promise<ArchivedTenant>
  /** Brings an archived tenant back (it migrates lazily on first open, as usual). */
  restore(id: string): Promise<void>
  /** The archived tenants, sorted by id. */
  archived(): AsyncIterable<ArchivedTenant>
  /**
   * Checks the data folder and every tenant: leftovers of killed operations,
   * stale locks, stray files, damaged files, unknown versions or drift. With
   * `{ fix: true }` it removes and completes what is safe to. `needsPerson`
   * counts what is left for a person (the CLI exits non-zero then).
   */
  doctor(options?: DoctorOptions): Promise<DoctorReport>
  /**
   * Re-encrypts the tenant's database with the key the storage's key resolver
   * gives it now (`previousKey`: the key it is encrypted with today), waiting
   * like `rename`; new scopes wait for it. `InvalidOptionsError` when the
   * storage does not encrypt (capability `rekey`), `StorageError` when
   * `previousKey` does not open the database (nothing changed).
   */
  rekey(id: string, options: RekeyOptions): Promise<void>
  /** Moves every tenant file into the configured layout (`sqliteStorage({ layout })`); resumable, safe while the app runs. */
  migrateLayout(options?: LayoutMigrationOptions): Promise<LayoutMigrationReport>
}

/** Options of {@link TenantsApi.rekey}. */
export interface RekeyOptions {
  /** The key the tenant's database is encrypted with now. */
  readonly previousKey: string
}

/** Options of {@link TenantsApi.backup}. */
export interface BackupOptions {
  /** Replace an existing file at the destination (never a live database). Default false. */
  readonly overwrite?: boolean
}

export function createTenantsApi(ctx: ShardinesContext): TenantsApi {
  return Object.freeze({
    async create(id: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(id)
      await observed(ctx, 'create', id, undefined, async () => {
        const { tenant } = await ctx.migrationSets()
        await ctx.storage.create(id, async (handle) => {
          const outcome = await observeMigration(ctx.events, 'create', () =>
            runMigrations(handle, id, tenant, ctx.log, ctx.storage),
          )
          if (outcome.error) throw outcome.error
        })
      })
    },
    async exists(id: string): Promise<boolean> {
      ctx.assertOpen()
      assertTenantId(id)
      return ctx.storage.exists(id)
    },
    list(): AsyncIterable<string> {
      ctx.assertOpen()
      return ctx.storage.list()
    },
    async destroy(id: string): Promise<boolean> {
      ctx.assertOpen()
      assertTenantId(id)
      if (ctx.insideScopeOf(id)) {
        // destroy waits for the tenant's scopes to end, and the caller is one of them.
        throw new InvalidOptionsError(
          `tenants.destroy("${id}") was called inside a scope of tenant "${id}" and would wait for itself forever. Call it outside withTenant("${id}", …).`,
        )
      }
      return observed(ctx, 'destroy', id, undefined, () => ctx.storage.destroy(id))
    },
    async backup(id: string, destPath: string, options: BackupOptions = {}): Promise<void> {
      ctx.assertOpen()
      if (id !== APEX) assertTenantId(id)
      if (typeof destPath !== 'string' || destPath.length === 0) {
        throw new InvalidOptionsError(`tenants.backup("${id}", destPath) needs a destination path.`)
      }
      const backup = supported(ctx, 'backup', 'backupToPath', ctx.storage.backup)
      await observed(ctx, 'backup', id, undefined, () =>
        backup(id, destPath, { overwrite: options.overwrite === true }),
      )
    },
    export(id: string): AsyncIterable<Uint8Array> {
      ctx.assertOpen()
      if (id !== APEX) assertTenantId(id)
      return supported(ctx, 'export', 'exportStream', ctx.storage.export)(id)
    },
    async fork(fromId: string, toId: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(fromId)
      assertTenantId(toId)
      await observed(ctx, 'fork', fromId, toId, () => ctx.storage.fork(fromId, toId))
    },
    async rename(from: string, to: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(from)
      assertTenantId(to)
      notInsideScope(ctx, 'rename', from)
      if (from === to) throw new InvalidOptionsError(`tenants.rename("${from}", "${to}"): the ids are the same.`)
      const rename = supported(ctx, 'rename', 'rename', ctx.storage.rename)
      await observed(ctx, 'rename', from, to, () => rename(from, to))
    },
    async archive(id: string): Promise<ArchivedTenant> {
      ctx.assertOpen()
      assertTenantId(id)
      notInsideScope(ctx, 'archive', id)
      const archive = supported(ctx, 'archive', 'archive', ctx.storage.archive)
      return observed(ctx, 'archive', id, undefined, () => archive(id))
    },
    async restore(id: string): Promise<void> {
      ctx.assertOpen()
      assertTenantId(id)
      const restore = supported(ctx, 'restore', 'archive', ctx.storage.restore)
      await observed(ctx, 'restore', id, undefined, () => restore(id))
    },
    archived(): AsyncIterable<ArchivedTenant> {
      ctx.assertOpen()
      return supported(ctx, 'archived', 'archive', ctx.storage.listArchived)()
    },
    async doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
      ctx.assertOpen()
      const files = await supported(ctx, 'doctor', 'doctor', ctx.storage.doctor)(options)
      // Versions: what the files hold against the migrations this code knows.
      const findings: DoctorFinding[] = [...files.findings]
      const damaged = new Set(files.findings.filter((f) => f.kind === 'damaged').map((f) => f.tenantId))
      const { tenant } = await ctx.migrationSets()
      for await (const id of ctx.storage.list()) {
        if (damaged.has(id)) continue
        const row = await tenantStatus(ctx, tenant, id)
        if (row.error !== undefined) continue // the adapter's check names what is wrong with the file
        const unknown = row.version !== null && !tenant.names.includes(row.version)
        if (unknown || row.drift) {
          findings.push({
            kind: 'version',
            path: ctx.storage.locate(id),
            tenantId: id,
            detail: unknown
              ? `its version ${row.version} is not a migration this code knows (deployed code older than the tenant?)`
              : `its schema differs from the template's at version ${row.version ?? '(none)'} (drift)`,
            fixed: false,
            needsPerson: true,
          })
        } else if (row.pending.length > 0) {
          findings.push({
            kind: 'behind',
            path: ctx.storage.locate(id),
            tenantId: id,
            detail: `${row.pending.length} pending migration${row.pending.length === 1 ? '' : 's'} (applied when it is next opened, or by shardines migrate)`,
            fixed: false,
            needsPerson: false,
          })
        }
      }
      return { tenants: files.tenants, findings, needsPerson: findings.filter((f) => f.needsPerson && !f.fixed).length }
    },
    async rekey(id: string, options: RekeyOptions): Promise<void> {
      ctx.assertOpen()
      assertTenantId(id)
      notInsideScope(ctx, 'rekey', id)
      const previousKey = (options as RekeyOptions | undefined)?.previousKey
      if (typeof previousKey !== 'string' || previousKey.length === 0) {
        throw new InvalidOptionsError(
          `tenants.rekey("${id}", { previousKey }) needs the key the tenant is encrypted with now, as a non-empty string.`,
        )
      }
      const rekey = supported(ctx, 'rekey', 'rekey', ctx.storage.rekey)
      await observed(ctx, 'rekey', id, undefined, () => rekey(id, previousKey))
    },
    async migrateLayout(options: LayoutMigrationOptions = {}): Promise<LayoutMigrationReport> {
      ctx.assertOpen()
      return supported(ctx, 'migrateLayout', 'layoutMigration', ctx.storage.migrateLayout)(options)
    },
  })
}

/**
 * Runs a lifecycle step and reports it as a `tenant:<operation>` event, timed,
 * when someone listens (arguments are checked before: a refused id is no event).
 */
async function observed<T>(
  ctx: ShardinesContext,
  operation: LifecycleOperation,
  tenantId: string,
  target: string | undefined,
  run: () => Promise<T>,
): Promise<T> {
  if (ctx.events.emit === null) return run()
  const started = performance.now()
  const type = `tenant:${operation}` as const
  const extra = target === undefined ? {} : { target }
  let result: T
  try {
    result = await run()
  } catch (error) {
    ctx.events.emit?.({
      type,
      tenantId,
      durationMs: performance.now() - started,
      outcome: 'error',
      errorCode: errorCodeOf(error),
      ...extra,
    })
    throw error
  }
  ctx.events.emit?.({ type, tenantId, durationMs: performance.now() - started, outcome: 'ok', ...extra })
  return result
}

/** An optional adapter method, bound, or a typed refusal naming the adapter and the capability it lacks. */
function supported<F extends (...args: never[]) => unknown>(
  ctx: ShardinesContext,
  name: string,
  capability: keyof StorageCapabilities,
  method: F | undefined,
): F {
  if (!ctx.storage.capabilities[capability] || method === undefined) {
    throw new InvalidOptionsError(
      `tenants.${name}() is not supported by the ${ctx.storage.kind} storage adapter (it does not declare the ${capability} capability).`,
    )
  }
  return method.bind(ctx.storage) as F
}

/** A lifecycle step that waits for the tenant's scopes, called from inside one of them, would wait for itself. */
function notInsideScope(ctx: ShardinesContext, name: string, id: string): void {
  if (ctx.insideScopeOf(id)) {
    throw new InvalidOptionsError(
      `tenants.${name}("${id}") was called inside a scope of tenant "${id}" and would wait for itself forever. Call it outside withTenant("${id}", …).`,
    )
  }
}
