import type { Migration } from '@shardines/core'
import type { Kysely } from 'kysely'

/** A small schema for the codegen tests: one apex table, one tenant table, and a later migration adding a column. */
export const apexMigrations: Record<string, Migration> = {
  '001_users': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('email', 'varchar(255)', (c) => c.notNull())
        .execute()
    },
  },
}

export const tenantMigrations: Record<string, Migration> = {
  '001_notes': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('notes')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('author_id', 'integer')
        .addColumn('pinned', 'boolean', (c) => c.notNull().defaultTo(0))
        .execute()
    },
  },
}

/** Adds `notes.color`: regenerating must change tenant.ts and nothing else. */
export const addColorMigration: Record<string, Migration> = {
  '002_note_color': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('notes').addColumn('color', 'text').execute()
    },
  },
}
