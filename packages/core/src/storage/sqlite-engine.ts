/**
 * What core knows of the SQLite engine family (better-sqlite3, libSQL), kept
 * in one place so an engine of another family has one module to answer:
 *
 * - the Kysely dialect pieces (adapter, query compiler, introspector);
 * - the schema names the engine reserves (`main`, `temp`) and apex's;
 * - transaction control: `begin immediate` for writes, `begin` (deferred)
 *   for read-only transactions, savepoints for nested ones;
 * - the migration version stamp in the file header (`pragma user_version`);
 * - catalog reads: whether a table exists, a table's columns, and the queries
 *   that describe a schema (for drift checks);
 * - the error codes core acts on.
 *
 * The statement guard, which reads the engine's compiled programs, is its own
 * layer (`guard/`).
 */
import {
  CompiledQuery,
  type DatabaseIntrospector,
  type DialectAdapter,
  IdentifierNode,
  type Kysely,
  type QueryCompiler,
  type RawBuilder,
  RawNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely'
import { APEX } from './storage-adapter.js'

// The dialect.

/** Kysely's adapter for the engine's SQL (SQLite's): one stateless instance, shared by every Shardines Kysely instance. */
export const ENGINE_ADAPTER: DialectAdapter = new SqliteAdapter()

/**
 * Kysely's query compiler for the engine's SQL (SQLite's): the compiler of
 * bindings that attach nothing (apex, migrations), the dialect's, and the base
 * class of the ATTACH compiler.
 */
export const EngineQueryCompiler = SqliteQueryCompiler
export type EngineQueryCompiler = SqliteQueryCompiler

/** Kysely's introspector for the engine (`db.introspection`): SQLite's, reading `sqlite_master` and `pragma_table_info`. */
export function createEngineIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
  return new SqliteIntrospector(db)
}

// Schema names.

/**
 * The schema names the engine gives a connection's own databases: `main` (the
 * file opened) and `temp`. They are never attached, and an unqualified table
 * resolves in them; any other schema name is an attached database.
 */
export const LOCAL_SCHEMAS: ReadonlySet<string> = new Set(['main', 'temp'])

/**
 * Names no attached database can take, so no tenant id either: the engine's own
 * (`main`, `temp`) and the apex database's (`apex`).
 */
export const RESERVED_SCHEMAS: ReadonlySet<string> = new Set([APEX, ...LOCAL_SCHEMAS])

// Transaction control (run on core's internal path, never judged by the guard).

/**
 * Begins a write transaction taking the write lock up front, so two processes
 * never deadlock upgrading read locks. It also write-locks every database
 * attached at that moment (see `detachBeforeImmediate`).
 */
export const BEGIN_IMMEDIATE = 'begin immediate'

/** Begins a deferred transaction (read-only ones): its locks are taken by its first read. */
export const BEGIN_DEFERRED = 'begin'

/** Ends the open transaction, keeping its changes. */
export const COMMIT = 'commit'

/** Ends the open transaction, undoing its changes. */
export const ROLLBACK = 'rollback'

/** A savepoint statement's command: Kysely's `savepoint`, `rollbackToSavepoint` and `releaseSavepoint`. */
export type SavepointCommand = 'savepoint' | 'rollback to' | 'release'

/**
 * A savepoint statement for a name Shardines chose (`shardines_<n>`, nothing
 * to escape): a transaction begun inside another one's callback.
 *
 * @example
 * ```ts
 * savepointSql('rollback to', 'shardines_1') // rollback to "shardines_1"
 * ```
 */
export function savepointSql(command: SavepointCommand, name: string): string {
  return `${command} "${name}"`
}

/**
 * A savepoint statement for a caller's name (a controlled transaction's
 * `trx.savepoint(name)`), quoted by Kysely's compiler as Kysely's SQLite driver does.
 */
export function compileSavepoint(
  command: SavepointCommand,
  name: string,
  compileQuery: QueryCompiler['compileQuery'],
): CompiledQuery {
  const node = RawNode.createWithChildren([RawNode.createWithSql(`${command} `), IdentifierNode.create(name)])
  return compileQuery(node as never, { queryId: `savepoint-${name}` } as never)
}

// The migration version stamp.

/**
 * Reads the version stamp core keeps in the database header's `user_version`
 * (one pragma, no table: the cheap check when a tenant is opened).
 */
export const READ_VERSION_STAMP: CompiledQuery = CompiledQuery.raw('pragma user_version')

/** The stamp in the rows {@link READ_VERSION_STAMP} returned (0 when never set). */
export function versionStampOf(rows: readonly unknown[]): number {
  return (rows[0] as { user_version?: number } | undefined)?.user_version ?? 0
}

/** Writes the version stamp (inside the migration's transaction, so it commits with the migrations). */
export function writeVersionStamp(stamp: number): CompiledQuery {
  return CompiledQuery.raw(`pragma user_version = ${stamp}`)
}

// Catalog reads.

/**
 * Counts the tables named `table` (a name core chose: no quote inside) in the
 * database: one row, `n` 0 or 1.
 */
export function tableExistsQuery(table: string): CompiledQuery {
  return CompiledQuery.raw(`select count(*) as n from sqlite_master where type = 'table' and name = '${table}'`)
}

/** The column names of a table, in order (`pragma_table_info`): no rows when it does not exist. */
export function tableColumnsQuery(table: string): RawBuilder<{ name: string }> {
  return sql<{ name: string }>`select name from pragma_table_info(${table})`
}

/**
 * The queries whose rows, concatenated, describe the main database's schema.
 * Tables and indexes are described from `pragma_*` functions (so two spellings
 * of the same DDL compare equal); triggers, views and partial-index conditions
 * only exist as SQL text, which the caller compares normalised. Left out:
 * SQLite's own tables (`sqlite_sequence`, `sqlite_stat*`) and `ignoredTables`
 * (names core chose: no quote inside).
 */
export function schemaDescriptionQueries(ignoredTables: readonly string[]): readonly string[] {
  const ignored = `m.name not like 'sqlite\\_%' escape '\\' and m.name not in (${ignoredTables.map((name) => `'${name}'`).join(', ')})`
  return [
    `select m.name, t.type, t.ncol, t.wr, t.strict from main.sqlite_master m
     join pragma_table_list(m.name) t on t.schema = 'main'
   where m.type = 'table' and ${ignored} order by m.name`,
    `select m.name, p.cid, p.name, lower(p.type), p."notnull", p.dflt_value, p.pk, p.hidden
   from main.sqlite_master m join pragma_table_xinfo(m.name, 'main') p
   where m.type = 'table' and ${ignored} order by m.name, p.cid`,
    `select m.name, l.name, l."unique", l.origin, l.partial, x.seqno, x.cid, x.name, x."desc", lower(x.coll), x.key
   from main.sqlite_master m join pragma_index_list(m.name, 'main') l join pragma_index_xinfo(l.name, 'main') x
   where m.type = 'table' and ${ignored} order by m.name, l.name, x.seqno`,
    `select m.name, f.id, f.seq, f."table", f."from", f."to", f.on_update, f.on_delete, f."match"
   from main.sqlite_master m join pragma_foreign_key_list(m.name, 'main') f
   where m.type = 'table' and ${ignored} order by m.name, f.id, f.seq`,
    `select m.type, m.name, m.tbl_name, m.sql from main.sqlite_master m
   where (m.type in ('trigger', 'view') or (m.type = 'index' and m.sql like '% where %'))
     and ${ignored} order by m.type, m.name`,
  ]
}

// Errors.

/**
 * Whether an error means another connection holds the database's lock
 * (`SQLITE_BUSY` and its extended codes), so the same statement can simply
 * run again later. `SQLITE_BUSY_SNAPSHOT` is excluded: a WAL read transaction
 * that meets it must restart, and retrying the statement cannot help.
 */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_RECOVERY' || code === 'SQLITE_BUSY_TIMEOUT'
}
