// Opens a readable tenant, then one whose file it may not read (run as a user
// without permission on it), then the readable one again; prints one JSON line.
// Usage: unreadable-tenant-child.ts <dir> <readableId> <unreadableId>
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, ShardinesError, StorageError } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, readable, unreadable] = process.argv.slice(2) as [string, string, string]
const warnings: string[] = []
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir, maxOpen: 1, onWarning: (message) => warnings.push(message) }),
  migrations: { tenant: tenantMigrations },
})
const titles = (id: string) =>
  shard.withTenant(id, async (t) => (await t.db.selectFrom('documents').select('title').execute()).map((r) => r.title))

const before = await titles(readable)
const statsBefore = shard.stats()
const attempts: unknown[] = []
for (let i = 0; i < 2; i++) {
  try {
    attempts.push({ outcome: 'read', rows: await titles(unreadable) })
  } catch (error) {
    attempts.push({
      outcome: 'error',
      name: (error as Error).name,
      isStorageError: error instanceof StorageError,
      code: error instanceof ShardinesError ? error.code : (error as { code?: string }).code,
      tenantId: error instanceof ShardinesError ? error.tenantId : undefined,
      reason: error instanceof StorageError ? error.reason : undefined,
      driverCode: error instanceof StorageError ? error.driverCode : undefined,
      message: (error as Error).message,
    })
  }
}
const statsAfter = shard.stats()
const after = await titles(readable)
const statsEnd = shard.stats()
await shard.close()
console.log(
  JSON.stringify({
    uid: process.getuid?.(),
    before,
    after,
    attempts,
    statsBefore,
    statsAfter,
    statsEnd,
    warnings,
  }),
)
