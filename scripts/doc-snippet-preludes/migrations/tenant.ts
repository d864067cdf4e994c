// migrations/tenant.ts of docs/migrations.md ("Worker threads"): the tenant migrations as objects.
import type { Migration } from '@shardines/core'

export const tenant: Record<string, Migration> = {
  '001_documents': {
    async up(db) {
      await db.schema
        .createTable('documents')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .execute()
    },
  },
}
