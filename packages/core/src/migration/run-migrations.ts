import type { Kysely } from 'kysely'
import { bindHandle } from '../connection/handle-binding.js'
import { createBoundKysely, plainCompiler } from '../connection/kysely-factory.js'
import type { QueryLogger } from '../connection/query-log.js'
import { runInternal } from '../connection/statement-runner.js'
import { TransactionGate } from '../connection/transaction-gate.js'
import { MigrationError } from '../errors.js'
import { READ_VERSION_STAMP, tableExistsQuery, versionStampOf, writeVersionStamp } from '../storage/sqlite-engine.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import type { MigrationSet } from './migration-source.js'

/** The same tables Kysely's `Migrator` keeps, so the two tools agree on what ran. */
export const MIGRATION_TABLE = 'kysely_migration'
export const MIGRATION_LOCK_TABLE = 'kysely_migration_lock'

/** One database's result, as it appears in a `MigrationReport`. */
export interface MigrationOutcome {
  readonly id: string
  /** The last applied migration before the run (null for none). */
  readonly from: string | null
  /** The last applied migration after the run; equals `from` when it failed. */
  readonly to: string | null
  readonly status: 'migrated' | 'up-to-date' | 'failed'
  readonly error?: MigrationError
}

/** Reads the version stamp kept in `user_version` (one pragma: the cheap check on open). */
export async function readVersionStamp(handle: StorageHandle, busyTimeout?: number): Promise<number> {
  // Through a private binding: another process committing to the file makes the read wait (off the event loop).
  const { rows } = await runInternal(bindHandle(handle, { label: handle.name, busyTimeout }), READ_VERSION_STAMP)
  return versionStampOf(rows)
}

/** Names of the migrations applied to the database, in order ([] when it has none). */
export async function readAppliedMigrations(db: Kysely<any>): Promise<string[]> {
  const { rows } = await db.executeQuery<{ n: number }>(tableExistsQuery(MIGRATION_TABLE))
  if ((rows[0]?.n ?? 0) === 0) return []
  const applied = await db.selectFrom(MIGRATION_TABLE).select('name').orderBy('name').execute()
  return applied.map((row) => row.name as string)
}

/**
 * Applies a database's pending migrations in ONE transaction (`begin immediate`,
 * which also serialises two processes migrating the same file): either all of
 * them apply, or none does and the database stays exactly at its previous
 * version. Kysely's `Migrator` cannot give this on SQLite (kysely#56), so the
 * loop is ours; the bookkeeping tables are Kysely's.
 *
 * Never throws for a failing migration: the outcome carries a {@link MigrationError}.
 */
export async function runMigrations(
  handle: StorageHandle,
  label: string,
  set: MigrationSet,
  log: QueryLogger | null,
  options: { readonly busyTimeout?: number } = {},
): Promise<MigrationOutcome> {
  // What a scope left on a shared connection (temp tables, triggers) must not catch the migration's statements.
  if (handle.leftovers) await handle.resetConnection()
  // One owner for the whole run; a migration's own db.transaction() becomes a savepoint of it.
  const binding = bindHandle(handle, { label, owner: {}, log, busyTimeout: options.busyTimeout })
  const db = createBoundKysely<any>(binding, plainCompiler(), [])
  const transaction = new TransactionGate(binding)

  if ((await readVersionStamp(handle, options.busyTimeout)) === set.latestStamp && set.latestStamp !== 0) {
    return { id: label, from: set.latest, to: set.latest, status: 'up-to-date' }
  }

  let from: string | null = null
  let current: string | undefined
  try {
    await transaction.begin({})
  } catch (error) {
    return { id: label, from, to: from, status: 'failed', error: new MigrationError(label, undefined, error) }
  }
  try {
    await ensureMigrationTables(db)
    const applied = await readAppliedMigrations(db)
    from = applied.at(-1) ?? null
    const divergence = firstDivergence(applied, set.names)
    if (divergence !== undefined) throw new Error(divergence)
    const pending = set.migrations.slice(applied.length)
    const done = Math.min(applied.length, set.names.length) + pending.length
    for (const { name, migration } of pending) {
      current = name
      await migration.up(db)
      await db.insertInto(MIGRATION_TABLE).values({ name, timestamp: new Date().toISOString() }).execute()
    }
    current = undefined
    // A database ahead of this code (a newer release migrated it) keeps its stamp.
    if (applied.length <= set.names.length) {
      await db.executeQuery(writeVersionStamp(set.stamps[done] ?? 0))
    }
    await transaction.commit()
    if (pending.length > 0) handle.clearStatementCache()
    const to = pending.at(-1)?.name ?? from
    return { id: label, from, to, status: pending.length > 0 ? 'migrated' : 'up-to-date' }
  } catch (error) {
    try {
      await transaction.rollback()
    } catch {
      // The failure may already have ended the transaction; nothing was committed either way.
    }
    handle.clearStatementCache()
    return { id: label, from, to: from, status: 'failed', error: new MigrationError(label, current, error) }
  }
}

async function ensureMigrationTables(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable(MIGRATION_TABLE)
    .ifNotExists()
    .addColumn('name', 'varchar(255)', (col) => col.notNull().primaryKey())
    .addColumn('timestamp', 'varchar(255)', (col) => col.notNull())
    .execute()
  await db.schema
    .createTable(MIGRATION_LOCK_TABLE)
    .ifNotExists()
    .addColumn('id', 'varchar(255)', (col) => col.notNull().primaryKey())
    .addColumn('is_locked', 'integer', (col) => col.notNull().defaultTo(0))
    .execute()
}

/**
 * Applied migrations must be a prefix of the known ones (or, for a database
 * migrated by a newer release, the known ones a prefix of the applied).
 */
function firstDivergence(applied: readonly string[], known: readonly string[]): string | undefined {
  const n = Math.min(applied.length, known.length)
  for (let i = 0; i < n; i++) {
    if (applied[i] !== known[i]) {
      return `the database has migration "${applied[i]}" where this code expects "${known[i]}" (migrations must only be appended, never renamed, removed or inserted before applied ones)`
    }
  }
  return undefined
}
