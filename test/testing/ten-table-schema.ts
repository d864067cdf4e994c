/**
 * A tenant schema of ten migrations (ten tables, each with two indexes), big
 * enough that migrating a tenant costs what it costs an app, and one apex
 * table. Pure data: importing it loads no test harness.
 */
import type { Migration } from '@shardines/core'
import type { Generated } from 'kysely'

export interface ApexDB {
  accounts: { id: Generated<number>; email: string }
}

interface Table {
  id: Generated<number>
  label: string
  n: number
  note: string | null
  created_at: Generated<string>
}

/** `items` is the table the tests write; `t02`…`t10` are there to be migrated. */
export interface TenantDB {
  items: Table
  t02: Table
  t03: Table
  t04: Table
  t05: Table
  t06: Table
  t07: Table
  t08: Table
  t09: Table
  t10: Table
}

export const TABLES = ['items', 't02', 't03', 't04', 't05', 't06', 't07', 't08', 't09', 't10'] as const

export const apexMigrations: Record<string, Migration> = {
  '001_accounts': {
    async up(db) {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .execute()
    },
  },
}

export const tenantMigrations: Record<string, Migration> = Object.fromEntries(
  TABLES.map((table, i) => [
    `${String(i + 1).padStart(3, '0')}_${table}`,
    {
      async up(db) {
        await db.schema
          .createTable(table)
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('label', 'text', (c) => c.notNull())
          .addColumn('n', 'integer', (c) => c.notNull())
          .addColumn('note', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull().defaultTo('2026-01-01'))
          .execute()
        await db.schema.createIndex(`${table}_label`).on(table).column('label').execute()
        await db.schema.createIndex(`${table}_n_created`).on(table).columns(['n', 'created_at']).execute()
      },
    } satisfies Migration,
  ]),
)
