import { type SqliteStorageOptions, sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type ShardinesOptions, type StorageAdapter } from '@shardines/core'
import type { Generated, Migration } from 'kysely'
import { tempDir } from './temp-dir.js'

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

export type StorageFactory = (dir: string, options?: Partial<SqliteStorageOptions>) => StorageAdapter

export const sqliteFactory: StorageFactory = (dir, options) => sqliteStorage({ dir, ...options })

/** A Shardines instance on a fresh temp folder with the fixture schema, apex migrated. */
export async function makeShard(
  options: Partial<ShardinesOptions> & {
    storageOptions?: Partial<SqliteStorageOptions>
    factory?: StorageFactory
  } = {},
) {
  const dir = tempDir()
  const { storageOptions, factory = sqliteFactory, ...rest } = options
  const shard = createShardines<ApexDB, TenantDB>({
    storage: factory(dir, storageOptions),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    ...rest,
  })
  await shard.migrate.apex()
  return { shard, dir }
}
