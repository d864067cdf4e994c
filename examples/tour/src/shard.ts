import * as path from 'node:path'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, defineModels, tenanted } from '@shardines/core'
import type { ApexDB } from './db/apex.js' // generated: npx shardines codegen --out src/db
import type { TenantDB } from './db/tenant.js'

const root = path.join(import.meta.dirname, '..')

const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts'),
  Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
})

export const shard = createShardines({
  // data/apex.sqlite3 and data/tenants/<id>.sqlite3 (TOUR_DATA_DIR moves them)
  storage: sqliteStorage({ dir: process.env.TOUR_DATA_DIR ?? path.join(root, 'data'), maxOpen: 256 }),
  migrations: { apex: path.join(root, 'migrations/apex'), tenant: path.join(root, 'migrations/tenant') },
  migrateOnOpen: 'lazy', // migrate a tenant that is behind on first open
  models,
})
