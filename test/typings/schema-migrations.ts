import type { Migration } from '@shardines/core'
import { type Kysely, sql } from 'kysely'

/**
 * The migrations behind the golden files in `generated/`: a small schema that
 * covers the column kinds codegen maps (rowid aliases, defaults, nullable
 * columns, dates, JSON, booleans, blobs, text primary keys).
 */
export const apexMigrations: Record<string, Migration> = {
  '001_accounts': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('plan_id', 'text', (c) => c.notNull().defaultTo('free'))
        .addColumn('created_at', 'datetime', (c) => c.notNull().defaultTo(sql`current_timestamp`))
        .execute()
      await db.schema
        .createTable('plans')
        .addColumn('id', 'text', (c) => c.primaryKey().notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('price_cents', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

export const tenantMigrations: Record<string, Migration> = {
  '001_documents': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('documents')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'integer')
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
        .addColumn('archived', 'boolean', (c) => c.notNull().defaultTo(0))
        .addColumn('meta', 'json')
        .addColumn('created_at', 'datetime', (c) => c.notNull().defaultTo(sql`current_timestamp`))
        .execute()
    },
  },
  '002_comments': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('comments')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('document_id', 'integer', (c) => c.notNull().references('documents.id'))
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('attachment', 'blob')
        .execute()
    },
  },
}
