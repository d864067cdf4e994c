import { type Kysely, sql } from 'kysely'

/** Plans (the price list) and accounts (people who sign in). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('plans')
    .addColumn('id', 'text', (c) => c.primaryKey().notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('max_notes', 'integer', (c) => c.notNull())
    .addColumn('monthly_price_cents', 'integer', (c) => c.notNull())
    .execute()
  await db
    .insertInto('plans')
    .values([
      { id: 'free', name: 'Free', max_notes: 200, monthly_price_cents: 0 },
      { id: 'team', name: 'Team', max_notes: 10_000, monthly_price_cents: 2_900 },
      { id: 'business', name: 'Business', max_notes: 1_000_000, monthly_price_cents: 9_900 },
    ])
    .execute()
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('accounts').execute()
  await db.schema.dropTable('plans').execute()
}
