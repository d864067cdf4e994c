// The app's instance, as docs/models.md declares it: the `shard` of the docs' snippets.
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, defineModels, tenanted } from '@shardines/core'
import type { ApexDB } from '../../db/apex.js'
import type { TenantDB } from '../../db/tenant.js'

export const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts', { belongsTo: { plan: ['Plan', 'plan_id'] } }),
  Plan: apex('plans', { hasMany: { accounts: ['Account', 'plan_id'] } }),
  Document: tenanted('documents', {
    belongsTo: { owner: ['Account', 'owner_id'] },
    hasMany: { comments: ['Comment', 'document_id'] },
    hasOne: { settings: ['Setting', 'document_id'] },
  }),
  Comment: tenanted('comments', {
    belongsTo: { document: ['Document', 'document_id'], author: ['Account', 'author_id'] },
  }),
  Setting: tenanted('document_settings'),
})

export const storage = sqliteStorage({ dir: './data' })

export const shard = createShardines({
  storage,
  migrations: { apex: './migrations/apex', tenant: './migrations/tenant' },
  models,
})
