import type { SqliteStorageOptions } from '@shardines/adapter-sqlite'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { StorageAdapter, StorageHandle } from '@shardines/core'
import type { Database } from 'better-sqlite3'
import { type Kysely, sql } from 'kysely'
import { makeShard } from '../helpers/fixtures.js'

/**
 * Every ATTACH / DETACH statement SQLite was asked to run, as `<handle>: <sql>`.
 * Collected at the lowest level we can reach without a mock: the
 * better-sqlite3 `prepare` of each real connection the pool opens (the adapter
 * prepares each ATTACH itself, outside Kysely and outside the `log` option).
 */
export interface AttachLog {
  readonly statements: string[]
  /** How many ATTACH statements ran on handles named `name` (a tenant id, or 'scratch'). */
  attaches(name?: string): number
  /** Every distinct connection the storage handed out, in the order first seen. */
  readonly handles: StorageHandle[]
}

const instrumented = new WeakSet<object>()

function instrument(handle: StorageHandle, log: string[], handles: StorageHandle[]): void {
  const db = (handle as unknown as { db?: Database }).db
  if (db === undefined) throw new Error('attach-helpers expects better-sqlite3 handles (SqliteHandle.db)')
  if (instrumented.has(db)) return
  instrumented.add(db)
  handles.push(handle)
  const prepare = db.prepare.bind(db)
  db.prepare = ((source: string) => {
    if (/^\s*(attach|detach)\b/i.test(source)) log.push(`${handle.name}: ${source}`)
    return prepare(source)
  }) as Database['prepare']
}

/** The SQLite storage with every tenant and scratch connection instrumented for {@link AttachLog}. */
export function countingStorage(
  options: SqliteStorageOptions,
  log: string[],
  handles: StorageHandle[] = [],
): StorageAdapter {
  const storage = sqliteStorage(options)
  const acquire = storage.acquire.bind(storage)
  storage.acquire = async (id) => {
    const lease = await acquire(id)
    instrument(lease.handle, log, handles)
    return lease
  }
  const openScratch = storage.openScratch.bind(storage)
  storage.openScratch = async () => {
    const handle = await openScratch()
    instrument(handle, log, handles)
    return handle
  }
  return storage
}

/** A shard on fresh temp files (fixture schema, apex migrated) whose ATTACH statements are counted. */
export async function makeAttachShard(storageOptions: Partial<SqliteStorageOptions> = {}) {
  const statements: string[] = []
  const handles: StorageHandle[] = []
  const { shard, dir } = await makeShard({
    factory: (d, o) => countingStorage({ dir: d, ...o }, statements, handles),
    storageOptions,
  })
  const log: AttachLog = {
    statements,
    handles,
    attaches: (name) =>
      statements.filter((s) => /: attach\b/i.test(s) && (name === undefined || s.startsWith(`${name}: `))).length,
  }
  return { shard, dir, log }
}

export type AttachShard = Awaited<ReturnType<typeof makeAttachShard>>['shard']

/** The fixture's apex rows. */
export async function seedApex(shard: AttachShard): Promise<void> {
  await shard.apex
    .insertInto('accounts')
    .values([
      { id: 1, email: 'ann@x.test', plan: 'pro' },
      { id: 2, email: 'bob@x.test', plan: 'free' },
      { id: 3, email: 'cy@x.test', plan: 'team' },
    ])
    .execute()
  await shard.apex
    .insertInto('plans')
    .values([
      { id: 'free', name: 'Free' },
      { id: 'pro', name: 'Pro' },
    ])
    .execute()
}

/** Creates tenant `id` with four documents (owners 1, 2, none, and 9 which apex lacks) and two comments. */
export async function seedTenant(shard: AttachShard, id: string, titlePrefix = ''): Promise<void> {
  await shard.tenants.create(id)
  await shard.withTenant(id, async (t) => {
    await t.db
      .insertInto('documents')
      .values([
        { id: 1, title: `${titlePrefix}Plan`, owner_id: 1, status: 'open' },
        { id: 2, title: `${titlePrefix}Spec`, owner_id: 2, status: 'closed' },
        { id: 3, title: `${titlePrefix}Orphan`, owner_id: null, status: 'open' },
        { id: 4, title: `${titlePrefix}Ghost`, owner_id: 9, status: 'open' },
      ])
      .execute()
    await t.db
      .insertInto('comments')
      .values([
        { id: 1, document_id: 1, body: 'first' },
        { id: 2, document_id: 2, body: 'second' },
      ])
      .execute()
  })
}

/** The databases attached to the connection `db` runs on (`pragma database_list`, raw so nothing is attached by asking). */
export async function attachedNames(db: Kysely<never> | Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`pragma database_list`.execute(db)
  return rows.map((r) => r.name).filter((n) => n !== 'main' && n !== 'temp')
}

/** Resolves once pending promise reactions and I/O callbacks have run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Apex seeded, with an index and a view (DDL targets to aim at), and tenant acme seeded. */
export async function setupWithApexIndexAndView() {
  const { shard, log } = await makeAttachShard()
  await seedApex(shard)
  await shard.apex.schema.createIndex('accounts_email').on('accounts').column('email').execute()
  await sql`create view paid as select * from accounts where plan != 'free'`.execute(shard.apex)
  await seedTenant(shard, 'acme')
  return { shard, log }
}
