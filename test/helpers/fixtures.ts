import { type SqliteStorageOptions, sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type ShardinesOptions, type StorageAdapter } from '@shardines/core'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from './fixture-schema.js'
import { tempDir } from './temp-dir.js'

export { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from './fixture-schema.js'

export type StorageFactory = (dir: string, options?: Partial<SqliteStorageOptions>) => StorageAdapter

export const sqliteFactory: StorageFactory = (dir, options) => sqliteStorage({ dir, ...options })

/** A Shardines instance on a fresh temp folder with the fixture schema, apex migrated. */
export async function makeShard(
  options: Partial<ShardinesOptions> & {
    storageOptions?: Partial<SqliteStorageOptions>
    factory?: StorageFactory
  } = {},
) {
  const dir = tempDir()
  const { storageOptions, factory = sqliteFactory, ...rest } = options
  const shard = createShardines<ApexDB, TenantDB>({
    storage: factory(dir, storageOptions),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
    ...rest,
  })
  await shard.migrate.apex()
  return { shard, dir }
}
