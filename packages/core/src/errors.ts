import { match } from 'ts-pattern'

/**
 * Every error Shardines throws extends {@link ShardinesError} and carries a
 * stable `code` that programs can match on (with ts-pattern or a switch).
 *
 * @example
 * ```ts
 * try { await shard.withTenant('acme', fn) }
 * catch (e) { if (e instanceof ShardinesError && e.code === 'TENANT_NOT_FOUND') … }
 * ```
 */
export type ShardinesErrorCode =
  | 'NO_TENANT'
  | 'INVALID_TENANT_ID'
  | 'TENANT_NOT_FOUND'
  | 'TENANT_EXISTS'
  | 'RECORD_NOT_FOUND'
  | 'READ_ONLY_ATTACHMENT'
  | 'TENANT_SCOPE_CLOSED'
  | 'ATTACH_LIMIT'
  | 'MIGRATION_FAILED'
  | 'TENANT_SCHEMA_OUTDATED'
  | 'SHARDINES_CLOSED'
  | 'INVALID_OPTIONS'
  | 'UNKNOWN_SCHEMA'
  | 'STORAGE_FAILED'
  | 'STATEMENT_REFUSED'
  | 'TENANT_BUSY'
  | 'TRANSACTION_LEFT_OPEN'
  | 'TENANT_ARCHIVED'
  | 'CROSS_DATABASE_QUERY'
  | 'INVALID_JOB_CONTEXT'
  | 'POOL_EXHAUSTED'

export interface ShardinesErrorOptions {
  cause?: unknown
  tenantId?: string | undefined
}

/** A tenant id's shape (labels such as `withTenants(a, b)` do not match). */
const TENANT_ID_SHAPE = /^[a-z0-9][a-z0-9_-]{0,63}$/

/** The base class of every error Shardines throws. */
export class ShardinesError extends Error {
  readonly code: ShardinesErrorCode
  /** The tenant the failed operation was for, when there was one. */
  readonly tenantId: string | undefined

  constructor(code: ShardinesErrorCode, message: string, options: ShardinesErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.tenantId = options.tenantId
  }
}

/** A tenant-scoped operation ran outside `withTenant`. */
export class NoTenantError extends ShardinesError {
  constructor(what = 'this operation') {
    super('NO_TENANT', `No tenant is in scope: ${what} needs one. Run it inside shard.withTenant(id, fn).`)
  }
}

/** A tenant id broke the id rules; nothing touched the filesystem. */
export class InvalidTenantIdError extends ShardinesError {
  /** Why the id was refused. */
  readonly reason: string
  constructor(id: unknown, reason: string) {
    super(
      'INVALID_TENANT_ID',
      `Invalid tenant id ${describeId(id)}: ${reason}. A tenant id is 1–64 characters of a-z, 0-9, "_" and "-", starts with a letter or digit, and is not one of apex, main, temp.`,
    )
    this.reason = reason
  }
}

/** The tenant has no database (never created, or destroyed). */
export class TenantNotFoundError extends ShardinesError {
  constructor(tenantId: string) {
    super(
      'TENANT_NOT_FOUND',
      `Tenant "${tenantId}" does not exist. Create it with shard.tenants.create("${tenantId}") (CLI: shardines tenants create ${tenantId}).`,
      { tenantId },
    )
  }
}

/** `tenants.create` found the tenant already there (possibly made by another process). */
export class TenantExistsError extends ShardinesError {
  constructor(tenantId: string) {
    super('TENANT_EXISTS', `Tenant "${tenantId}" already exists; nothing was changed.`, {
      tenantId,
    })
  }
}

/** `findOrThrow` found no row. */
export class RecordNotFoundError extends ShardinesError {
  readonly model: string
  readonly key: unknown
  constructor(model: string, key: unknown, tenantId?: string) {
    super(
      'RECORD_NOT_FOUND',
      `${model} ${JSON.stringify(key)} was not found${tenantId ? ` in tenant "${tenantId}"` : ''}.`,
      { tenantId },
    )
    this.model = model
    this.key = key
  }
}

/** A write or DDL aimed at an attached (read-only) database. */
export class ReadOnlyAttachmentError extends ShardinesError {
  readonly schema: string
  readonly table: string | undefined
  /** `scope` is the tenant id of a `withTenant` scope, or a label such as `withTenants(a, b)`. */
  constructor(schema: string, table: string | undefined, scope: string | undefined) {
    const target = table ? `"${schema}"."${table}"` : `"${schema}"`
    const hint =
      schema === 'apex'
        ? 'Write to apex through shard.apex or an apex model.'
        : `Write to tenant "${schema}" inside shard.withTenant("${schema}", fn).`
    const tenantId = scope !== undefined && TENANT_ID_SHAPE.test(scope) ? scope : undefined
    const from =
      tenantId !== undefined ? ` from tenant "${tenantId}"'s scope` : scope !== undefined ? ` from ${scope}` : ''
    super('READ_ONLY_ATTACHMENT', `Refused a write to ${target}${from}: attached databases are read-only. ${hint}`, {
      tenantId,
    })
    this.schema = schema
    this.table = table
  }
}

/** A scope's `db`, models or transaction was used after the scope ended. */
export class TenantScopeClosedError extends ShardinesError {
  constructor(tenantId: string) {
    super(
      'TENANT_SCOPE_CLOSED',
      `The scope for tenant "${tenantId}" has ended; its db and models cannot be used any more. Await all work inside withTenant, or open a new scope.`,
      { tenantId },
    )
  }
}

/** A query would need more attached databases than SQLite allows on one connection. */
export class AttachLimitError extends ShardinesError {
  readonly limit: number
  readonly requested: number
  constructor(requested: number, limit: number, tenantId?: string) {
    super(
      'ATTACH_LIMIT',
      `A query needs ${requested} attached databases but SQLite allows ${limit} per connection. For work across many tenants use shard.mapTenants(fn), which visits tenants one scope at a time.`,
      { tenantId },
    )
    this.limit = limit
    this.requested = requested
  }
}

/** A migration failed for a tenant (or apex); the database stayed at its previous version. */
export class MigrationError extends ShardinesError {
  /** The migration that failed, when known. */
  readonly migration: string | undefined
  constructor(tenantId: string, migration: string | undefined, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause)
    super(
      'MIGRATION_FAILED',
      `Migration ${migration ? `"${migration}" ` : ''}failed for ${tenantId === 'apex' ? 'the apex database' : `tenant "${tenantId}"`}: ${why}. The database was left at its previous version.`,
      { cause, tenantId },
    )
    this.migration = migration
  }
}

/** `migrateOnOpen: 'check'` found a tenant behind the latest migration. */
export class TenantSchemaOutdatedError extends ShardinesError {
  readonly version: string | null
  readonly pending: readonly string[]
  constructor(tenantId: string, version: string | null, pending: readonly string[]) {
    super(
      'TENANT_SCHEMA_OUTDATED',
      `Tenant "${tenantId}" is at migration ${version ?? '(none)'} with ${pending.length} pending (${pending.join(', ')}). Run shard.migrate.tenant("${tenantId}") or \`shardines migrate --all\`.`,
      { tenantId },
    )
    this.version = version
    this.pending = pending
  }
}

/** The instance was closed with `shard.close()`. */
export class ShardinesClosedError extends ShardinesError {
  constructor() {
    super('SHARDINES_CLOSED', 'This Shardines instance has been closed; create a new one.')
  }
}

/** `createShardines` or a call got options it cannot use. */
export class InvalidOptionsError extends ShardinesError {
  constructor(message: string) {
    super('INVALID_OPTIONS', message)
  }
}

/** A query named a schema that is not available in this scope. */
export class UnknownSchemaError extends ShardinesError {
  readonly schema: string
  constructor(schema: string, allowed: readonly string[], scope: string | undefined) {
    const tenantId = scope !== undefined && TENANT_ID_SHAPE.test(scope) ? scope : undefined
    super(
      'UNKNOWN_SCHEMA',
      `The query names schema "${schema}", which is not available here (available: ${allowed.join(', ') || 'none'}). Other tenants' tables are reachable only inside shard.withTenants([...ids], fn).`,
      { tenantId },
    )
    this.schema = schema
  }
}

/**
 * Why the statement guard refused a statement (see {@link StatementRefusedError}):
 * - `attach` / `detach`: an `ATTACH` or `DETACH` not issued by Shardines;
 * - `vacuum-into`: `VACUUM INTO` a file;
 * - `pragma`: a pragma that changes the database or the connection;
 * - `transaction-control`: raw `BEGIN` / `COMMIT` / `ROLLBACK` / `SAVEPOINT` / `RELEASE`;
 * - `function`: a function that reaches outside the database (`load_extension`);
 * - `fall-through`: an unqualified name that resolved to an attached database;
 * - `read-only-scope`: any write where nothing may be written (`withTenants`, synchronous reads);
 * - `temp-on-shared-connection`: a temp table, view or trigger on `shard.apex`, whose connection every request shares;
 * - `multiple-statements`: more than one statement in one string (one runs per call).
 */
export type StatementRefusal =
  | 'attach'
  | 'detach'
  | 'vacuum-into'
  | 'pragma'
  | 'transaction-control'
  | 'function'
  | 'fall-through'
  | 'read-only-scope'
  | 'temp-on-shared-connection'
  | 'multiple-statements'

/**
 * The statement guard refused a statement before SQLite ran it: judged from
 * SQLite's compiled program, so it holds for builder queries, `sql` fragments,
 * raw SQL and prepared queries alike. Nothing was executed.
 */
export class StatementRefusedError extends ShardinesError {
  readonly kind: StatementRefusal
  /** The refused SQL. */
  readonly sql: string
  /** The attached schema a `fall-through` statement reached. */
  readonly schema: string | undefined
  constructor(
    kind: StatementRefusal,
    sql: string,
    scope: string,
    detail: { schema?: string | undefined; pragma?: string | undefined; fn?: string | undefined } = {},
  ) {
    const tenantId = TENANT_ID_SHAPE.test(scope) && scope !== 'apex' ? scope : undefined
    const where = tenantId !== undefined ? `tenant "${tenantId}"'s scope` : scope === 'apex' ? 'shard.apex' : scope
    const shown = sql.length > 200 ? `${sql.slice(0, 200)}…` : sql
    const why = match(kind)
      .with(
        'attach',
        () =>
          'ATTACH is refused: Shardines attaches what a scope may read. Use apex.<table> in a builder query or t.attach("apex"); for other tenants use shard.withTenants([...ids], fn).',
      )
      .with('detach', () => 'DETACH is refused: attachments belong to Shardines and end with the connection.')
      .with(
        'vacuum-into',
        () => 'VACUUM INTO writes a file anywhere on disk and is refused. Use shard.tenants.backup(id, destPath).',
      )
      .with(
        'pragma',
        () =>
          `pragma ${detail.pragma ?? ''} is refused: it changes the database or the connection shared by every scope. Only reading pragmas without a value (user_version, table_info(…), index_list(…), …) and pragma_* table functions are allowed; set connection options in sqliteStorage({...}) or in a migration.`,
      )
      .with(
        'transaction-control',
        () =>
          'raw transaction control is refused: it would bypass the transaction gate that keeps scopes apart. Use t.transaction(fn), db.transaction().execute(fn) or db.startTransaction().',
      )
      .with('function', () => `${detail.fn ?? 'this function'}() reaches outside the database and is refused.`)
      .with(
        'fall-through',
        () =>
          `an unqualified table resolved to the attached database "${detail.schema ?? '?'}". Qualify it: main.<table> for this tenant's table, ${detail.schema ?? 'apex'}.<table> to read the attached one.`,
      )
      .with(
        'temp-on-shared-connection',
        () =>
          'temp tables, views and triggers are refused on shard.apex: its connection is shared by every request of the process and would keep them. Create temp objects inside a tenant scope (they end with it), or use a real apex table.',
      )
      .with(
        'multiple-statements',
        () => 'the string holds more than one statement; nothing ran. Run one statement per call.',
      )
      .with(
        'read-only-scope',
        () =>
          'this connection is read-only (withTenants, synchronous reads): nothing may be written, temp objects included. Write inside shard.withTenant(id, fn).',
      )
      .exhaustive()
    super('STATEMENT_REFUSED', `Refused a statement from ${where}: ${why} Statement: ${shown}`, { tenantId })
    this.kind = kind
    this.sql = sql
    this.schema = detail.schema
  }
}

/**
 * Another connection (usually another process) held the tenant's lock for
 * longer than the storage adapter's `busyTimeout`. The statement did not run;
 * it waited off the event loop, so other tenants were not held up.
 */
export class TenantBusyError extends ShardinesError {
  /** How long the statement (or scope) waited, in milliseconds. */
  readonly waitedMs: number
  /** Set when the tenant's scope budget (`budgets.perTenant`) refused the scope: that limit. */
  readonly limit: number | undefined = undefined

  /** A scope that waited `waitedMs` for one of the tenant's `limit` concurrent scope slots (`budgets.perTenant`). */
  static overBudget(tenantId: string, limit: number, waitedMs: number): TenantBusyError {
    const error = new TenantBusyError(tenantId, waitedMs)
    error.message = `Tenant "${tenantId}" already runs ${limit} scopes (its budget, budgets.perTenant), and this one waited ${Math.round(waitedMs)} ms for a slot (budgets.timeout); it did not start. Retry later, or raise the budget.`
    ;(error as { limit: number | undefined }).limit = limit
    return error
  }
  constructor(scope: string, waitedMs: number, options: { cause?: unknown; inTransaction?: boolean } = {}) {
    const tenantId = TENANT_ID_SHAPE.test(scope) && scope !== 'apex' ? scope : undefined
    const what = tenantId !== undefined ? `Tenant "${tenantId}"` : scope === 'apex' ? 'The apex database' : scope
    super(
      'TENANT_BUSY',
      options.inTransaction === true
        ? `${what} is locked by another connection, and a statement inside a transaction cannot wait for it (SQLite requires the transaction to be rolled back). The transaction is rolled back; run it again.`
        : `${what} stayed locked by another connection for ${Math.round(waitedMs)} ms (the storage busyTimeout); the statement did not run. Retry later, keep other processes' transactions on it short, or raise busyTimeout.`,
      { cause: options.cause, tenantId },
    )
    this.waitedMs = waitedMs
  }
}

/**
 * Every global scope slot (`budgets.pinned`: scopes running at once across
 * tenants, each pinning a tenant handle) stayed taken for `budgets.timeout`:
 * the scope for `tenantId` did not start.
 */
export class PoolExhaustedError extends ShardinesError {
  readonly limit: number
  readonly waitedMs: number
  constructor(tenantId: string, limit: number, waitedMs: number) {
    super(
      'POOL_EXHAUSTED',
      `A scope of tenant "${tenantId}" waited ${Math.round(waitedMs)} ms for one of the ${limit} scope slots of this process (budgets.pinned: each running scope pins a tenant handle), and none came free; it did not start. Retry later, or raise budgets.pinned (and the storage's maxOpen).`,
      { tenantId },
    )
    this.limit = limit
    this.waitedMs = waitedMs
  }
}

/**
 * A scope ended while a transaction it began (a controlled transaction from
 * `startTransaction()`, or one whose callback was not awaited) or a
 * `connection()` callback was still open. Shardines rolled it back so the
 * tenant is never left waiting; the scope's promise rejects with this error.
 */
export class TransactionLeftOpenError extends ShardinesError {
  /** How many transactions or connection holds were rolled back. */
  readonly count: number
  constructor(tenantId: string, count: number) {
    super(
      'TRANSACTION_LEFT_OPEN',
      `The scope for tenant "${tenantId}" ended with ${count} transaction${count === 1 ? '' : 's'} still open; ${count === 1 ? 'it was' : 'they were'} rolled back. Commit or roll back a startTransaction() before the scope's function returns, and await t.transaction(…) and connection() callbacks.`,
      { tenantId },
    )
    this.count = count
  }
}

/**
 * What went wrong with a tenant's file, as {@link StorageError.reason}:
 * - `symlink`: the tenant's path is a symbolic link (never followed);
 * - `not-a-file`: a folder or special file where the database should be;
 * - `empty-file`: 0 bytes (SQLite would take it for a new, empty database);
 * - `not-a-database`: not SQLite's format (truncated header, a foreign file);
 * - `corrupt`: SQLite reports the database malformed;
 * - `permission`: the process may not read or write it;
 * - `cannot-open`: SQLite cannot open it, for another reason than running out of descriptors;
 * - `io`: anything else (a disk error, a lifecycle step that failed).
 */
export type StorageFailure =
  | 'symlink'
  | 'not-a-file'
  | 'empty-file'
  | 'not-a-database'
  | 'corrupt'
  | 'permission'
  | 'cannot-open'
  | 'io'

export interface StorageErrorOptions extends ShardinesErrorOptions {
  readonly reason?: StorageFailure
  /** The driver's or the system's code (`SQLITE_NOTADB`, `EACCES`, …), when there is one. */
  readonly driverCode?: string | undefined
}

/**
 * The storage adapter failed in a way no other error describes: for one
 * tenant's file (named, with `reason`), that tenant alone is affected; the
 * pool and every other tenant carry on.
 */
export class StorageError extends ShardinesError {
  readonly reason: StorageFailure
  readonly driverCode: string | undefined
  constructor(message: string, options: StorageErrorOptions = {}) {
    super('STORAGE_FAILED', message, options)
    this.reason = options.reason ?? 'io'
    this.driverCode = options.driverCode
  }
}

/** The tenant is archived (`tenants.archive`): no scope can open it until `tenants.restore`. */
export class TenantArchivedError extends ShardinesError {
  constructor(tenantId: string) {
    super(
      'TENANT_ARCHIVED',
      `Tenant "${tenantId}" is archived. Restore it with shard.tenants.restore("${tenantId}") (CLI: shardines tenants restore ${tenantId}) before using it.`,
      { tenantId },
    )
  }
}

/**
 * A statement needs another database on the tenant's connection (`apex.<table>`
 * in a builder query, `t.attach`, `withTenants`) and the storage adapter
 * cannot attach databases (e.g. libSQL's client mode against remote
 * databases, where each database is a separate server-side connection).
 */
export class CrossDatabaseQueryError extends ShardinesError {
  readonly storageKind: string
  constructor(storageKind: string, what: string, tenantId?: string) {
    super(
      'CROSS_DATABASE_QUERY',
      `${what} needs another database on ${tenantId === undefined ? 'this' : `tenant "${tenantId}"'s`} connection, and the ${storageKind} storage cannot attach databases. Read apex rows through a model include (t.models.X.include('relation'), which runs a separate apex query here) or query shard.apex separately and combine the rows in code; for several tenants use shard.mapTenants(fn).`,
      { tenantId },
    )
    this.storageKind = storageKind
  }
}

/**
 * A background job's payload does not hold a job context made by
 * `shard.jobContext()` (wrong shape, unknown version, extra keys): the job is
 * refused before any tenant is opened. A payload is untrusted input.
 */
export class InvalidJobContextError extends ShardinesError {
  constructor(problem: string) {
    super(
      'INVALID_JOB_CONTEXT',
      `Refused a job: its context ${problem}. Capture the context with shard.jobContext() inside the tenant's scope when enqueueing, and pass it unchanged to shard.runJob(ctx, fn).`,
    )
  }
}

function describeId(id: unknown): string {
  if (typeof id !== 'string') return `(${id === null ? 'null' : typeof id})`
  // JSON.stringify escapes control characters; also escape bidi/format characters so the message is safe to print.
  const shown = id.length > 80 ? `${id.slice(0, 80)}…` : id
  return JSON.stringify(shown).replace(
    /[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}
