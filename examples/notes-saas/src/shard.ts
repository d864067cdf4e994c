import { fileURLToPath } from 'node:url'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, defineModels, type StorageAdapter, tenanted } from '@shardines/core'
import type { ApexDB } from './db/apex.js'
import type { TenantDB } from './db/tenant.js'

/** The app's folders, absolute, so the app works from any working directory. */
export const APP_ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../data', import.meta.url))
export const MIGRATIONS = {
  apex: fileURLToPath(new URL('../migrations/apex', import.meta.url)),
  tenant: fileURLToPath(new URL('../migrations/tenant', import.meta.url)),
}

export interface NotesShardOptions {
  /** The data folder: `<dir>/apex.sqlite3` and `<dir>/tenants/<id>.sqlite3`. */
  dir?: string
  /** Tenant handles kept open. */
  maxOpen?: number
  /** Another storage adapter instead of `sqliteStorage({ dir, maxOpen })` (then `dir` is unused). */
  storage?: StorageAdapter
}

/**
 * The models. `Note.author` and `Comment.author` cross from a tenant's file to
 * apex: `include('author')` compiles into one query with apex ATTACHed read-only.
 * (`memberships` has a two-column key, so it is queried through `shard.apex`.)
 */
export const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts'),
  Plan: apex('plans'),
  Tenant: apex('tenants', { belongsTo: { plan: ['Plan', 'plan_id'], owner: ['Account', 'owner_id'] } }),
  Note: tenanted('notes', {
    belongsTo: { author: ['Account', 'author_id'] },
    hasMany: { comments: ['Comment', 'note_id'] },
  }),
  Comment: tenanted('comments', { belongsTo: { note: ['Note', 'note_id'], author: ['Account', 'author_id'] } }),
})

/** The app's Shardines instance: apex holds accounts, plans and the tenant directory; each tenant its notes. */
export function createNotesShard(options: NotesShardOptions = {}) {
  return createShardines({
    models,
    storage:
      options.storage ?? sqliteStorage({ dir: options.dir ?? DEFAULT_DATA_DIR, maxOpen: options.maxOpen ?? 256 }),
    migrations: MIGRATIONS,
  })
}

export type NotesShard = ReturnType<typeof createNotesShard>
