import * as fs from 'node:fs'
import * as path from 'node:path'
import { type SqliteStorageOptions, sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type ShardinesOptions } from '@shardines/core'
import Database from 'better-sqlite3'

/**
 * Tenant migrations as plain `.mjs` files (worker threads import them from a
 * folder). They use only the `db` they are given, so they need no imports.
 * Every migration appends its name to `migration_log`: a second application
 * would show as a second row.
 */
export const MIGRATION_FILES: Record<string, string> = {
  '001_documents': `
export async function up(db) {
  await db.schema.createTable('documents')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createTable('migration_log')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .execute()
  await db.insertInto('migration_log').values({ name: '001_documents' }).execute()
}`,
  // Three statements (plus the log row): what the benchmark calls a three-statement migration.
  '002_unique_titles': `
export async function up(db) {
  await db.schema.alterTable('documents').addColumn('slug', 'text').execute()
  await db.schema.createIndex('documents_title_unique').unique().on('documents').column('title').execute()
  await db.schema.createTable('tags').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text').execute()
  await db.insertInto('migration_log').values({ name: '002_unique_titles' }).execute()
}`,
  '003_notes': `
export async function up(db) {
  await db.schema.createTable('notes').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('body', 'text').execute()
  await db.insertInto('migration_log').values({ name: '003_notes' }).execute()
}`,
}

/** Writes the first `count` migrations into `<root>/<name>` and returns the folder. */
export function writeMigrations(root: string, name: string, count: number): string {
  const folder = path.join(root, name)
  fs.mkdirSync(folder, { recursive: true })
  for (const [file, text] of Object.entries(MIGRATION_FILES).slice(0, count)) {
    fs.writeFileSync(path.join(folder, `${file}.mjs`), text)
  }
  return folder
}

export function tenantFile(dir: string, id: string): string {
  return path.join(dir, 'tenants', `${id}.sqlite3`)
}

export function shardAt(
  dir: string,
  tenant: string,
  options: Partial<ShardinesOptions> & { storageOptions?: Partial<SqliteStorageOptions> } = {},
) {
  const { storageOptions, ...rest } = options
  return createShardines({
    storage: sqliteStorage({ dir, synchronous: 'off', ...storageOptions }),
    migrations: { tenant },
    ...rest,
  })
}

export const tenantIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `t${String(i).padStart(5, '0')}`)

/**
 * Creates `ids` at the migrations of `folder`, each with two documents: the
 * first is made through the library, the rest are byte copies of it (fast).
 */
export async function seedTenants(dir: string, folder: string, ids: readonly string[]): Promise<void> {
  const shard = shardAt(dir, folder)
  const [first, ...rest] = ids as [string, ...string[]]
  await shard.tenants.create(first)
  await shard.withTenant(first, async (t) => {
    await (t.db as any)
      .insertInto('documents')
      .values([{ title: 'alpha' }, { title: 'beta' }])
      .execute()
  })
  await shard.close()
  const source = tenantFile(dir, first)
  for (const id of rest) fs.copyFileSync(source, tenantFile(dir, id))
}

/** Reads a tenant file directly: version stamp, applied migrations, log, integrity, columns. */
export function inspect(dir: string, id: string) {
  // Read-write on purpose: opening rolls back a hot journal left by a killed process, as any next open would.
  const db = new Database(tenantFile(dir, id), { fileMustExist: true })
  try {
    const tables = (db.prepare(`select name from sqlite_master where type = 'table'`).all() as { name: string }[]).map(
      (r) => r.name,
    )
    return {
      userVersion: db.pragma('user_version', { simple: true }) as number,
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      applied: (db.prepare('select name from kysely_migration order by name').all() as { name: string }[]).map(
        (r) => r.name,
      ),
      log: (db.prepare('select name from migration_log order by id').all() as { name: string }[]).map((r) => r.name),
      documents: db.prepare('select title from documents order by id').pluck().all() as string[],
      documentColumns: (db.prepare('select name from pragma_table_info(?)').all('documents') as { name: string }[]).map(
        (r) => r.name,
      ),
      tables,
    }
  } finally {
    db.close()
  }
}
