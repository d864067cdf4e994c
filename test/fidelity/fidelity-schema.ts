/**
 * The schema both targets of the differential suite start from: one migration
 * (`up`), run by Shardines when it creates the tenant and run directly on the
 * plain file for bare Kysely. Pure data: importing it loads no harness.
 */
import type { Migration } from '@shardines/core'
import { type Generated, type Kysely, sql } from 'kysely'

export interface DB {
  items: { id: Generated<number>; name: string; qty: Generated<number>; category: string | null; meta: string | null }
  tags: { id: Generated<number>; item_id: number; label: string }
  counters: { name: string; value: number }
  log: { id: Generated<number>; message: string }
}

export const SEED_ITEMS = [
  { id: 1, name: 'apple', qty: 5, category: 'fruit', meta: '{"color":"red","sizes":[1,2]}' },
  { id: 2, name: 'banana', qty: 12, category: 'fruit', meta: '{"color":"yellow","sizes":[3]}' },
  { id: 3, name: 'carrot', qty: 7, category: 'vegetable', meta: null },
  { id: 4, name: 'daikon', qty: 0, category: 'vegetable', meta: '{"color":"white"}' },
  { id: 5, name: 'eggplant', qty: 3, category: null, meta: null },
] as const

/** Builds the tables and seeds them; both targets run exactly this. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('items')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('qty', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('category', 'text')
    .addColumn('meta', 'text')
    .execute()
  await db.schema
    .createTable('tags')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('item_id', 'integer', (c) => c.notNull().references('items.id').onDelete('cascade'))
    .addColumn('label', 'text', (c) => c.notNull())
    .addUniqueConstraint('tags_item_label', ['item_id', 'label'])
    .execute()
  await db.schema
    .createTable('counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute()
  await db.schema
    .createTable('log')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('message', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('items_category').on('items').column('category').execute()
  await db.schema
    .createView('fruit')
    .as(db.selectFrom('items').selectAll().where('category', '=', 'fruit'))
    .execute()
  await db
    .insertInto('items')
    .values(SEED_ITEMS.map((row) => ({ ...row })))
    .execute()
  await db
    .insertInto('tags')
    .values([
      { id: 1, item_id: 1, label: 'sweet' },
      { id: 2, item_id: 1, label: 'crunchy' },
      { id: 3, item_id: 2, label: 'sweet' },
      { id: 4, item_id: 3, label: 'crunchy' },
    ])
    .execute()
  await db
    .insertInto('counters')
    .values([
      { name: 'a', value: 1 },
      { name: 'b', value: 10 },
    ])
    .execute()
  await sql`insert into log (message) values ('seeded')`.execute(db)
}

/** The tenant migrations, as Shardines takes them: `{ name: migration }`. */
export const fidelityMigrations: Record<string, Migration> = { '001': { up } }
