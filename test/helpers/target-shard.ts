/**
 * A Shardines instance on a storage behaviour target (see
 * `@shardines/core`'s `StorageBehaviourTarget`), with the fixture schema and
 * its models: what the storage behaviour suite and other adapter-neutral tests
 * build their shards with. Imports no driver and no adapter.
 */
import {
  apex,
  createShardines,
  defineModels,
  type ShardinesOptions,
  type StorageBehaviourTarget,
  type StorageTargetOptions,
  tenanted,
} from '@shardines/core'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from './fixture-schema.js'
import { tempDir } from './temp-dir.js'

export { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from './fixture-schema.js'

/** The fixture schema's models: apex accounts and plans, tenanted documents (owned by an account) and comments. */
export const fixtureModels = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts'),
  Plan: apex('plans'),
  Document: tenanted('documents', {
    belongsTo: { owner: ['Account', 'owner_id'] },
    hasMany: { comments: ['Comment', 'document_id'] },
  }),
  Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
})

export interface TargetShardOptions {
  /** What to ask of the target's adapter (pool size, no fsyncs, a variant). */
  readonly storage?: StorageTargetOptions
  /** The storage folder; default a fresh temp folder (removed when the test file ends). */
  readonly dir?: string
  readonly log?: ShardinesOptions['log']
  readonly migrateOnOpen?: ShardinesOptions['migrateOnOpen']
}

/** A Shardines instance over a fresh adapter of `target`, fixture migrations and models, apex migrated. */
export async function makeTargetShard(target: StorageBehaviourTarget, options: TargetShardOptions = {}) {
  const dir = options.dir ?? tempDir()
  const shard = createShardines({
    storage: target.create(dir, options.storage),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    models: fixtureModels,
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.migrateOnOpen === undefined ? {} : { migrateOnOpen: options.migrateOnOpen }),
  })
  await shard.migrate.apex()
  return { shard, dir }
}

export type TargetShard = Awaited<ReturnType<typeof makeTargetShard>>['shard']
