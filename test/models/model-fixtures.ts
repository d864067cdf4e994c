import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { Migration } from '@shardines/core'
import {
  apex,
  createShardines,
  defineModels,
  type ShardinesLogEvent,
  type ShardinesOptions,
  tenanted,
} from '@shardines/core'
import type { Generated } from 'kysely'
import {
  type ApexDB,
  apexMigrations,
  type TenantDB as FixtureTenantDB,
  tenantMigrations as fixtureTenantMigrations,
} from '../helpers/fixture-schema.js'
import { tempDir } from '../helpers/temp-dir.js'

export type { ApexDB }

/**
 * The shared fixture schema (test/helpers/fixture-schema.ts) with what the
 * relation tests need besides: a comment's author (an apex account) and a
 * one-to-one settings table.
 */
export interface TenantDB extends Omit<FixtureTenantDB, 'comments'> {
  comments: FixtureTenantDB['comments'] & { author_id: number | null }
  document_settings: { id: Generated<number>; document_id: number; color: string }
}

export { apexMigrations }

export const tenantMigrations: Record<string, Migration> = {
  ...fixtureTenantMigrations,
  '003_comment_authors_and_settings': {
    async up(db) {
      await db.schema.alterTable('comments').addColumn('author_id', 'integer').execute()
      await db.schema
        .createTable('document_settings')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('document_id', 'integer', (c) => c.notNull().unique().references('documents.id'))
        .addColumn('color', 'text', (c) => c.notNull())
        .execute()
    },
  },
}

/** The model declarations of the model tests, typed from the two DB interfaces. */
export const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts', { belongsTo: { tier: ['Plan', 'plan'] } }),
  Plan: apex('plans', { hasMany: { accounts: ['Account', 'plan'] } }),
  Document: tenanted('documents', {
    belongsTo: { owner: ['Account', 'owner_id'] },
    hasMany: { comments: ['Comment', 'document_id'] },
    hasOne: { settings: ['Setting', 'document_id'] },
  }),
  Comment: tenanted('comments', {
    belongsTo: { document: ['Document', 'document_id'], author: ['Account', 'author_id'] },
  }),
  Setting: tenanted('document_settings', { belongsTo: { document: ['Document', 'document_id'] } }),
})

/** Every statement the instance ran, with the database it ran on. */
export interface StatementLog {
  readonly events: ShardinesLogEvent[]
  /** The SQL of statements since the last `reset()`, optionally only those on one database. */
  statements(on?: string): string[]
  reset(): void
}

/** A typed instance on a fresh temp folder, apex migrated, with a statement log. */
export async function makeModelShard(options: Partial<ShardinesOptions<typeof models>> = {}) {
  const dir = tempDir()
  const events: ShardinesLogEvent[] = []
  const shard = createShardines({
    storage: sqliteStorage({ dir }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    log: (event) => {
      if (event.level === 'query') events.push(event)
    },
    ...options,
    models,
  })
  await shard.migrate.apex()
  const log: StatementLog = {
    events,
    statements: (on) => events.filter((e) => on === undefined || e.tenantId === on).map((e) => e.query.sql),
    reset: () => {
      events.length = 0
    },
  }
  return { shard, dir, log }
}

/** Plans, two accounts and a tenant `acme` with two documents (one owned by a missing account), comments and a setting. */
export async function seed(shard: Awaited<ReturnType<typeof makeModelShard>>['shard'], tenant = 'acme') {
  await shard.models.Plan.createMany([
    { id: 'free', name: 'Free' },
    { id: 'pro', name: 'Pro' },
  ])
  const ada = await shard.models.Account.create({ email: 'ada@x.test', plan: 'pro' })
  const bob = await shard.models.Account.create({ email: 'bob@x.test' })
  await shard.tenants.create(tenant)
  const ids = await shard.withTenant(tenant, async (t) => {
    const plan = await t.models.Document.create({ title: 'plan', owner_id: ada.id })
    const orphan = await t.models.Document.create({ title: 'orphan', owner_id: 999, status: 'done' })
    const loose = await t.models.Document.create({ title: 'loose', owner_id: null })
    await t.models.Comment.createMany([
      { document_id: plan.id, body: 'first', author_id: bob.id },
      { document_id: plan.id, body: 'second', author_id: null },
      { document_id: orphan.id, body: 'third', author_id: ada.id },
    ])
    await t.models.Setting.create({ document_id: plan.id, color: 'red' })
    return { plan: plan.id, orphan: orphan.id, loose: loose.id }
  })
  return { ada, bob, ...ids }
}
