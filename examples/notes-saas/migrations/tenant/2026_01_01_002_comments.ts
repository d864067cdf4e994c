import { type Kysely, sql } from 'kysely'

/** Comments on notes; deleting a note deletes its comments. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('comments')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('note_id', 'integer', (c) => c.notNull().references('notes.id').onDelete('cascade'))
    .addColumn('author_id', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`))
    .execute()
  await db.schema.createIndex('comments_note').on('comments').column('note_id').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('comments').execute()
}
