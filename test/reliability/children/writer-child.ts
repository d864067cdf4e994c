// Commits transactions to one tenant forever, printing "committed <n>" after each
// commit returns. The parent kills it with SIGKILL and checks that every printed
// transaction survived. Usage: writer-child.ts <dir> <tenantId> <journalMode> [writer]
// (the writer tag goes into owner_id, so several writers can share one tenant)
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, id, journalMode, writer = '0'] = process.argv.slice(2)
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir: dir!, journalMode: journalMode as 'wal' | 'delete' }),
  migrations: { tenant: tenantMigrations },
})
// Each transaction writes three rows: a survivor has all three or none.
for (let n = 0; ; n++) {
  await shard.withTenant(id!, (t) =>
    t.transaction(async (trx) => {
      for (const part of ['a', 'b', 'c']) {
        await trx.db
          .insertInto('documents')
          .values({ title: `${n}`, status: part, owner_id: Number(writer) })
          .execute()
      }
    }),
  )
  // A synchronous write to a pipe on Linux: once printed, the parent has it.
  process.stdout.write(`committed ${n}\n`)
}
