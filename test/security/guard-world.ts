// Shared by the statement-guard suites: a shard on fresh temp files (fixture
// schema, models, seeded apex and two seeded tenants), and the observations a
// hostile statement must leave untouched: every database file's content (read
// through separate read-only connections), every tenant connection's
// attachments as Shardines sees them, and each connection's pragma state.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  apex,
  createShardines,
  defineModels,
  type Migration,
  type ShardinesOptions,
  type StorageHandle,
  tenanted,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from '../helpers/fixture-schema.js'
import { tempDir } from '../helpers/temp-dir.js'

export type { ApexDB, TenantDB }

/** The fixture schema's models: apex accounts and plans, tenanted documents and comments. */
export const guardModels = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts'),
  Plan: apex('plans'),
  Document: tenanted('documents', {
    belongsTo: { owner: ['Account', 'owner_id'] },
    hasMany: { comments: ['Comment', 'document_id'] },
  }),
  Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
})

/** The seeded apex accounts, as `shard.apex` returns them. */
export const APEX_ACCOUNTS = [
  { id: 1, email: 'ann@x.test', plan: 'pro' },
  { id: 2, email: 'bob@x.test', plan: 'free' },
  { id: 3, email: 'cy@x.test', plan: 'team' },
]

/** The four documents each seeded tenant starts with (titles prefixed with the tenant id). */
export function seededDocuments(id: string) {
  return [
    { id: 1, title: `${id} plan`, owner_id: 1, status: 'open' },
    { id: 2, title: `${id} spec`, owner_id: 2, status: 'closed' },
    { id: 3, title: `${id} orphan`, owner_id: null, status: 'open' },
    { id: 4, title: `${id} ghost`, owner_id: 9, status: 'open' },
  ]
}

export interface WorldOptions {
  /** Tenants to create and seed (default acme and beta). */
  tenants?: readonly string[]
  /** Tenant migrations (default: the fixture's). */
  tenantMigrations?: Record<string, Migration>
  migrateOnOpen?: ShardinesOptions['migrateOnOpen']
  /** An existing data folder (reopening a world), instead of a fresh one. */
  dir?: string
  /** Skip seeding (reopening a world). */
  seed?: boolean
  /** Shardines' `log` option (statements then take the logged path). */
  log?: ShardinesOptions['log']
  /** sqliteStorage's statementCacheSize (0: every statement judged again). */
  statementCacheSize?: number
}

/**
 * A shard with models on fresh temp files: apex migrated and seeded (three
 * accounts, two plans, an index and a view), each tenant created with four
 * documents and two comments. Every handle the storage hands out is recorded,
 * so tests can read a connection's pragma state from outside Shardines.
 */
export async function makeWorld(options: WorldOptions = {}) {
  const dir = options.dir ?? tempDir('shardines-guard-')
  const outside = tempDir('shardines-guard-outside-')
  const handles: StorageHandle[] = []
  // synchronous 'off': nothing here tests durability, and fsyncs would dominate the run time.
  const storage = sqliteStorage({
    dir,
    synchronous: 'off',
    ...(options.statementCacheSize === undefined ? {} : { statementCacheSize: options.statementCacheSize }),
  })
  const acquire = storage.acquire.bind(storage)
  storage.acquire = async (id) => {
    const lease = await acquire(id)
    if (!handles.includes(lease.handle)) handles.push(lease.handle)
    return lease
  }
  const apexHandle = storage.apex.bind(storage)
  storage.apex = () => {
    const handle = apexHandle()
    if (!handles.includes(handle)) handles.push(handle)
    return handle
  }
  const shard = createShardines({
    storage,
    migrations: { apex: apexMigrations, tenant: options.tenantMigrations ?? tenantMigrations },
    models: guardModels,
    ...(options.migrateOnOpen === undefined ? {} : { migrateOnOpen: options.migrateOnOpen }),
    ...(options.log === undefined ? {} : { log: options.log }),
  })
  const tenants = options.tenants ?? ['acme', 'beta']
  if (options.seed !== false) {
    await shard.migrate.apex()
    await shard.apex.insertInto('accounts').values(APEX_ACCOUNTS).execute()
    await shard.apex
      .insertInto('plans')
      .values([
        { id: 'free', name: 'Free' },
        { id: 'pro', name: 'Pro' },
      ])
      .execute()
    await shard.apex.schema.createIndex('accounts_email').on('accounts').column('email').execute()
    await sql`create view paid as select * from accounts where plan != 'free'`.execute(shard.apex)
    for (const id of tenants) {
      await shard.tenants.create(id)
      await shard.withTenant(id, async (t) => {
        await t.db.insertInto('documents').values(seededDocuments(id)).execute()
        await t.db
          .insertInto('comments')
          .values([
            { id: 1, document_id: 1, body: `${id} first` },
            { id: 2, document_id: 2, body: `${id} second` },
          ])
          .execute()
      })
    }
  }
  const apexFile = path.join(dir, 'apex.sqlite3')
  const tenantFile = (id: string) => path.join(dir, 'tenants', `${id}.sqlite3`)
  /** The open better-sqlite3 connection Shardines uses for `name` ('apex' or a tenant id), if any. */
  const rawHandle = (name: string): Database.Database | undefined => {
    for (let i = handles.length - 1; i >= 0; i--) {
      const handle = handles[i] as StorageHandle
      if (handle.name !== name || handle.closed) continue
      return (handle as unknown as { db: Database.Database }).db
    }
    return undefined
  }
  return { shard, dir, outside, tenants, apexFile, tenantFile, rawHandle, handles }
}

export type World = Awaited<ReturnType<typeof makeWorld>>
export type Shard = World['shard']

/** Pragmas read on the raw file that a refused statement must not have changed (header fields). */
const FILE_PRAGMAS = ['user_version', 'application_id', 'journal_mode', 'page_size', 'auto_vacuum', 'schema_version']

function quoteId(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * A deterministic dump of a database file, read on a separate read-only
 * better-sqlite3 connection: header pragmas, `sqlite_master`, and every row of
 * every table (sorted).
 */
export function dumpFile(file: string): unknown {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    const header = FILE_PRAGMAS.map((name) => [name, db.pragma(name, { simple: true })])
    const master = db.prepare('select type, name, tbl_name, sql from sqlite_master order by type, name').all() as {
      type: string
      name: string
      sql: string | null
    }[]
    const tables = master
      .filter((row) => row.type === 'table' && !(row.sql ?? '').toLowerCase().startsWith('create virtual'))
      .map((row) => [
        row.name,
        (
          db
            .prepare(`select * from ${quoteId(row.name)}`)
            .raw(true)
            .all() as unknown[]
        )
          .map((r) => JSON.stringify(r))
          .sort(),
      ])
    return { header, master, tables }
  } finally {
    db.close()
  }
}

/** The sha256 of {@link dumpFile}. */
export function hashFile(file: string): string {
  return createHash('sha256')
    .update(JSON.stringify(dumpFile(file)))
    .digest('hex')
}

/** Rows of one table of a database file, read on a separate read-only connection, ordered by rowid. */
export function rowsOf(file: string, table: string): Record<string, unknown>[] {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return db.prepare(`select * from ${quoteId(table)} order by rowid`).all() as Record<string, unknown>[]
  } finally {
    db.close()
  }
}

/** Every file under `root` (recursively), without SQLite's side files, as relative paths. */
function filesUnder(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (!/-(wal|shm|journal)$/.test(entry.name)) out.push(path.relative(root, full))
    }
  }
  walk(root)
  return out.sort()
}

/** Every database file in the world's folders, each with the hash of its content. */
export function fileHashes(world: World): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [label, root] of [
    ['data', world.dir],
    ['outside', world.outside],
  ] as const) {
    for (const rel of filesUnder(root)) {
      const full = path.join(root, rel)
      out[`${label}/${rel}`] = rel.endsWith('.sqlite3') ? hashFile(full) : `${fs.statSync(full).size} bytes`
    }
  }
  return out
}

/** Connection settings a refused pragma or transaction statement must not have changed. */
const CONNECTION_PRAGMAS = [
  'query_only',
  'foreign_keys',
  'journal_mode',
  'busy_timeout',
  'locking_mode',
  'writable_schema',
  'recursive_triggers',
  'defer_foreign_keys',
  'synchronous',
  'cache_size',
  'hard_heap_limit',
  'soft_heap_limit',
  'temp_store',
  'trusted_schema',
  'ignore_check_constraints',
  'reverse_unordered_selects',
  'read_uncommitted',
  'secure_delete',
  'legacy_alter_table',
  'cell_size_check',
  'automatic_index',
  'mmap_size',
  'journal_size_limit',
  'analysis_limit',
  'threads',
]

/** The pragma state of a raw connection, plus whether it is in a transaction and how LIKE compares case. */
export function connectionState(db: Database.Database | undefined): unknown {
  if (db === undefined) return 'closed'
  const pragmas = CONNECTION_PRAGMAS.map((name) => [name, db.pragma(name, { simple: true })])
  const like = db.prepare("select 'a' like 'A' as ci").get()
  return { pragmas, like, inTransaction: db.inTransaction }
}

/**
 * What a tenant's connection looks like to a fresh scope: its databases
 * (`pragma database_list` through Shardines) once apex is attached, and how
 * many temp objects it has. The list before attaching must be part of it.
 */
export async function tenantView(shard: Shard, id: string) {
  return shard.withTenant(id, async (t) => {
    // Read first: reading temp opens it, and it then shows in database_list.
    const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
    const list = async () =>
      (await sql<{ name: string; file: string }>`pragma database_list`.execute(t.db)).rows.map(
        (r) => `${r.name}=${r.file}`,
      )
    const unattached = await list()
    await t.attach('apex')
    const databases = await list()
    for (const entry of unattached) {
      if (!databases.includes(entry)) throw new Error(`${id}: ${entry} was attached before t.attach('apex') only`)
    }
    return { databases, tempObjects: temp.rows[0]?.n }
  })
}

/** Everything a refused statement must leave as it was. */
export async function observe(world: World) {
  const views: Record<string, unknown> = {}
  for (const id of world.tenants) views[id] = await tenantView(world.shard, id)
  const connections: Record<string, unknown> = {}
  for (const name of ['apex', ...world.tenants]) connections[name] = connectionState(world.rawHandle(name))
  return { files: fileHashes(world), views, connections }
}
