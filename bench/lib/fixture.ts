/**
 * The benchmark schema (the same as test/helpers/fixtures.ts: two apex tables,
 * two tenant migrations) and temp folders that are removed when the process exits.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { type SqliteStorageOptions, sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type Shardines } from '@shardines/core'
import type { Generated, Migration } from 'kysely'

export interface ApexDB {
  accounts: { id: Generated<number>; email: string; plan: Generated<string> }
  plans: { id: string; name: string }
}

export interface TenantDB {
  documents: { id: Generated<number>; title: string; owner_id: number | null; status: Generated<string> }
  comments: { id: Generated<number>; document_id: number; body: string }
}

export const apexMigrations: Record<string, Migration> = {
  '001_accounts': {
    async up(db) {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('plan', 'text', (c) => c.notNull().defaultTo('free'))
        .execute()
      await db.schema
        .createTable('plans')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .execute()
    },
  },
}

export const tenantMigrations: Record<string, Migration> = {
  '001_documents': {
    async up(db) {
      await db.schema
        .createTable('documents')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'integer')
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
        .execute()
    },
  },
  '002_comments': {
    async up(db) {
      await db.schema
        .createTable('comments')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('document_id', 'integer', (c) => c.notNull().references('documents.id'))
        .addColumn('body', 'text', (c) => c.notNull())
        .execute()
    },
  },
}

/** The raw DDL the two tenant migrations produce (for raw better-sqlite3 baselines). */
export const TENANT_DDL = [
  'create table "documents" ("id" integer primary key, "title" text not null, "owner_id" integer, "status" text default \'open\' not null)',
  'create table "comments" ("id" integer primary key, "document_id" integer not null references "documents" ("id"), "body" text not null)',
]

export type BenchShard = Shardines<ApexDB, TenantDB>

/** A Shardines instance over `dir` with the benchmark schema; apex migrated. */
export async function openShard(dir: string, storage: Partial<SqliteStorageOptions> = {}): Promise<BenchShard> {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir, onWarning: (m) => console.error(`warning: ${m}`), ...storage }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  return shard
}

const made: string[] = []
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh folder under the OS temp folder, removed when the process exits. */
export function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `shardines-bench-${name}-`))
  made.push(dir)
  return dir
}

/** A folder under the OS temp folder kept across runs (tenant sets that take long to build). */
export function cacheDir(name: string): string {
  return path.join(os.tmpdir(), 'shardines-bench-cache', name)
}

/** The tenant file of `id` under a storage folder (the adapter's layout). */
export function tenantFile(dir: string, id: string): string {
  return path.join(dir, 'tenants', `${id}.sqlite3`)
}
