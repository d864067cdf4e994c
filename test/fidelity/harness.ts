/**
 * The differential harness of issue 14 ("`t.db` is a faithful Kysely"): every
 * case is one body of code run twice, once on bare Kysely over a plain
 * better-sqlite3 file and once on `t.db` inside a Shardines tenant scope with
 * the same schema, each from a fresh temp folder. The test asserts the same
 * outcome (resolved value, or the same error, compared loosely where the
 * drivers word it differently) and the same final file contents, read through
 * a separate read-only connection after both are closed.
 */
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, sql } from 'kysely'
import { tempDir } from '../helpers/temp-dir.js'
import { type DB, fidelityMigrations, up } from './fidelity-schema.js'

export type { DB } from './fidelity-schema.js'

/** Every table of a file: its schema objects, then each table's rows in rowid order. */
export interface Rows {
  schema: { type: string; name: string; tbl_name: string; sql: string | null }[]
  tables: Record<string, unknown[]>
}

export interface Target {
  readonly name: 'kysely' | 'shardines'
  /**
   * Runs `body` against this target's database: bare Kysely's one instance, or
   * `t.db` inside a new `withTenant` scope (so concurrent calls are concurrent scopes).
   */
  run<T>(body: (db: Kysely<DB>) => Promise<T>): Promise<T>
  /** Destroys the Kysely instance / closes the Shardines instance (idempotent). */
  close(): Promise<void>
  /** The file's contents, read through a separate read-only connection. */
  dump(): Rows
}

const TENANT = 'acme'

/** Bare Kysely over a plain file, `foreign_keys = ON` as Shardines sets on every connection. */
export async function kyselyTarget(): Promise<Target> {
  const dir = tempDir('fidelity-kysely-')
  const file = path.join(dir, 'plain.sqlite3')
  // The schema is built on one connection and the body runs on a fresh one, as
  // Shardines builds a tenant and then opens it (last_insert_rowid starts at 0).
  const built = new Database(file)
  built.pragma('foreign_keys = ON')
  built.pragma('synchronous = OFF')
  const setup = new Kysely<DB>({ dialect: new SqliteDialect({ database: built }) })
  await up(setup)
  await setup.destroy()
  const database = new Database(file)
  database.pragma('foreign_keys = ON')
  database.pragma('synchronous = OFF')
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }) })
  let closed = false
  return {
    name: 'kysely',
    run: (body) => body(db),
    async close() {
      if (closed) return
      closed = true
      await db.destroy()
    },
    dump: () => dumpFile(file),
  }
}

/** A Shardines instance with one tenant migrated from `{ '001': { up } }`. */
export async function shardinesTarget(): Promise<Target> {
  const dir = tempDir('fidelity-shardines-')
  const shard = createShardines<{}, DB>({
    // No fsync on either side (durability is not what is compared): keeps the suite fast on a busy disk.
    storage: sqliteStorage({ dir, synchronous: 'off', onWarning: () => {} }),
    migrations: { tenant: fidelityMigrations },
  })
  await shard.tenants.create(TENANT)
  let closed = false
  return {
    name: 'shardines',
    run: (body) => shard.withTenant(TENANT, (t) => body(t.db as unknown as Kysely<DB>)),
    async close() {
      if (closed) return
      closed = true
      await withTimeout(shard.close(), 5_000, 'shard.close()')
    },
    dump: () => dumpFile(path.join(dir, 'tenants', `${TENANT}.sqlite3`)),
  }
}

/** Tables Shardines (or Kysely's Migrator with default names) keeps for itself: not compared. */
const IGNORED_TABLE = /^kysely_migration/

function dumpFile(file: string): Rows {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    const schema = (
      db
        .prepare(
          "select type, name, tbl_name, sql from sqlite_master where name not like 'sqlite_autoindex%' order by type, name",
        )
        .all() as Rows['schema']
    ).filter((row) => !IGNORED_TABLE.test(row.tbl_name))
    const tables: Record<string, unknown[]> = {}
    for (const { type, name } of schema) {
      if (type !== 'table') continue
      const rows = tableRows(db, name)
      // Kysely's Migrator stamps each applied migration with the time: compare the names only.
      tables[name] = /_migration$/.test(name) ? rows.map((row) => ({ ...row, timestamp: '<time>' })) : rows
    }
    for (const row of schema) row.sql = normalizeSql(row.sql)
    return { schema, tables }
  } finally {
    db.close()
  }
}

/** A table's rows in rowid order, or ordered by every column for a WITHOUT ROWID table. */
function tableRows(db: Database.Database, name: string): Record<string, unknown>[] {
  const quoted = `"${name.replaceAll('"', '""')}"`
  const { columns, withoutRowid } = db
    .prepare(
      "select count(*) as columns, (select sql like '%without rowid%' from sqlite_master where name = ?) as withoutRowid from pragma_table_info(?)",
    )
    .get(name, name) as { columns: number; withoutRowid: number }
  const order = withoutRowid ? Array.from({ length: columns }, (_, i) => i + 1).join(', ') : 'rowid'
  return db.prepare(`select * from ${quoted} order by ${order}`).all() as Record<string, unknown>[]
}

/** SQLite keeps DDL as written: `create table "main"."x"` and `create table "x"` are the same table. */
function normalizeSql(text: string | null): string | null {
  return text === null ? null : text.replace(/"main"\./g, '').replace(/\bmain\./g, '')
}

/** A settled promise, comparable across targets. */
export type Outcome = { ok: unknown } | { error: string }

/**
 * An error reduced to what both targets should agree on: SQLite's extended
 * code and its message (found anywhere in the cause chain, with `main.`
 * qualifiers removed), or the class name and message of anything else.
 */
export function describeError(error: unknown): string {
  for (let e: any = error, depth = 0; e != null && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string' && e.code.startsWith('SQLITE_')) {
      return `${e.code}: ${normalizeMessage(String(e.message))}`
    }
  }
  if (error instanceof Error) return `${error.name}: ${normalizeMessage(error.message)}`
  return `thrown: ${String(error)}`
}

function normalizeMessage(message: string): string {
  return message.replace(/"main"\./g, '').replace(/\bmain\./g, '')
}

/** Awaits `promise` and says how it settled (a value, or a described error). */
export async function outcome(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<Outcome> {
  try {
    return { ok: await (typeof promise === 'function' ? promise() : promise) }
  } catch (error) {
    return { error: describeError(error) }
  }
}

/** Outcomes of several promises, in order (like `Promise.allSettled`, comparable). */
export function outcomes(promises: Promise<unknown>[]): Promise<Outcome[]> {
  return Promise.all(promises.map((p) => outcome(p)))
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value
}

/** A real timer, so other branches (and the connection mutex) get to run. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const CASE_TIMEOUT_MS = 4_000

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not settle within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

class TimeoutError extends Error {
  override name = 'TimeoutError'
}

/** What one target did with one case: how the body settled, and the file afterwards. */
export interface Run {
  outcome: Outcome
  file: Rows | { unreadable: string }
}

export type Body = (db: Kysely<DB>) => Promise<unknown>

async function runOn(make: () => Promise<Target>, exercise: (target: Target) => Promise<unknown>): Promise<Run> {
  const target = await make()
  let result: Outcome
  try {
    result = await outcome(withTimeout(exercise(target), CASE_TIMEOUT_MS, `the ${target.name} body`))
  } finally {
    await outcome(target.close())
  }
  let file: Run['file']
  try {
    file = target.dump()
  } catch (error) {
    file = { unreadable: describeError(error) }
  }
  return { outcome: result, file }
}

export interface DifferentialOptions {
  /**
   * Where a case expects the body to reject, a pattern both errors must match
   * (so "both rejected, for the same reason" is checked, not just "both rejected").
   */
  rejects?: RegExp
}

function compare(name: string, kysely: Run, shardines: Run, options: DifferentialOptions): void {
  // FIDELITY_VERBOSE=1 prints what each target did, one JSON line per case (for reading a case, or writing one).
  if (process.env.FIDELITY_VERBOSE) {
    const files = isDeepStrictEqual(kysely.file, shardines.file)
      ? 'same'
      : { kysely: kysely.file, shardines: shardines.file }
    console.log(JSON.stringify({ case: name, kysely: kysely.outcome, shardines: shardines.outcome, files }, jsonSafe))
  }
  if ('unreadable' in kysely.file)
    assert.fail(`the harness could not read the plain Kysely file: ${kysely.file.unreadable}`)
  assert.deepStrictEqual(
    shardines.outcome,
    kysely.outcome,
    'the body settled differently on t.db (actual) than on bare Kysely (expected)',
  )
  if (options.rejects !== undefined) {
    const error = 'error' in kysely.outcome ? kysely.outcome.error : undefined
    assert.ok(error !== undefined, `the case expects a rejection matching ${options.rejects}, bare Kysely resolved`)
    assert.match(error, options.rejects)
  }
  assert.deepStrictEqual(
    shardines.file,
    kysely.file,
    'the tenant file (actual) differs from the plain Kysely file (expected) after the run',
  )
}

/**
 * Registers one test: `body` runs on bare Kysely and on `t.db` (inside one
 * tenant scope), each on a fresh copy of the schema; both must settle the same
 * way and leave the same file.
 */
export function differential(name: string, body: Body, options: DifferentialOptions = {}): void {
  test(name, async () => {
    const kysely = await runOn(kyselyTarget, (target) => target.run(body))
    const shardines = await runOn(shardinesTarget, (target) => target.run(body))
    compare(name, kysely, shardines, options)
  })
}

/**
 * Like {@link differential} for work that Shardines runs in separate scopes:
 * every body starts at once, each in its own `withTenant` scope of the same
 * tenant on Shardines, all on the one Kysely instance on bare Kysely. The
 * outcome is the array of the bodies' outcomes.
 */
export function differentialScopes(name: string, bodies: Body[], options: DifferentialOptions = {}): void {
  test(name, async () => {
    const exercise = (target: Target) => outcomes(bodies.map((body) => target.run(body)))
    const kysely = await runOn(kyselyTarget, exercise)
    const shardines = await runOn(shardinesTarget, exercise)
    compare(name, kysely, shardines, options)
  })
}

/** All rows of a table in rowid order: the usual "what is committed now" read inside bodies. */
export function rowsOf(db: Kysely<DB>, table: keyof DB): Promise<unknown[]> {
  return db.selectFrom(table).selectAll().orderBy(sql`rowid`).execute()
}
