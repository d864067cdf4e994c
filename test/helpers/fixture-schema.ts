/**
 * The fixture schema shared by the tests and the benchmarks: two apex tables,
 * two tenant migrations. Pure data: importing it loads no test harness.
 */
import type { Migration } from '@shardines/core'
import type { Generated } from 'kysely'

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
