import { type Kysely, sql } from 'kysely'

/** The tenant directory: which tenants exist, their plan and owner, and who may use them. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey().notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('plan_id', 'text', (c) => c.notNull().references('plans.id'))
    .addColumn('owner_id', 'integer', (c) => c.notNull().references('accounts.id'))
    // Set on staging copies made by POST /fork: the tenant it was copied from.
    .addColumn('staging_of', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`))
    .execute()
  await db.schema
    .createTable('memberships')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('account_id', 'integer', (c) => c.notNull().references('accounts.id'))
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('owner', 'member')`))
    .addPrimaryKeyConstraint('memberships_pk', ['tenant_id', 'account_id'])
    .execute()
  await db.schema.createIndex('memberships_account').on('memberships').column('account_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('memberships').execute()
  await db.schema.dropTable('tenants').execute()
}
