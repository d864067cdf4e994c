// Serves requests over more tenants than the process has file descriptors for.
// Run under `ulimit -n 256` with a maxOpen far above that; prints one JSON line.
// Usage: fd-limit-child.ts <dir> <tenantCount> <maxOpen> <journalMode>
import * as fs from 'node:fs'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, count, maxOpen, journalMode] = process.argv.slice(2)
const warnings: string[] = []
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({
    dir: dir!,
    maxOpen: Number(maxOpen),
    journalMode: journalMode as 'wal' | 'delete',
    onWarning: (message) => warnings.push(message),
  }),
  migrations: { tenant: tenantMigrations },
})
const limit = Number(/Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1])
const ids = Array.from({ length: Number(count) }, (_, i) => `fd${String(i).padStart(4, '0')}`)
const failures: string[] = []
let served = 0
let maxOpenSeen = 0

async function serve(id: string, round: number): Promise<void> {
  try {
    const n = await shard.withTenant(id, async (t) => {
      await t.db
        .insertInto('documents')
        .values({ title: `${id}:${round}` })
        .execute()
      const rows = await t.db.selectFrom('documents').select('title').execute()
      if (rows.some((r) => !r.title.startsWith(`${id}:`))) throw new Error(`${id} saw another tenant's row`)
      return rows.length
    })
    if (n !== round + 1) throw new Error(`${id} has ${n} rows in round ${round}`)
    served++
    maxOpenSeen = Math.max(maxOpenSeen, shard.stats().open)
  } catch (error) {
    failures.push(`${id} round ${round}: ${(error as Error).message}`)
  }
}

// Two rounds over every tenant, eight requests at a time (each lane pins its tenant while it runs).
for (let round = 0; round < 2; round++) {
  let next = 0
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ids.length) await serve(ids[next++]!, round)
    }),
  )
}
const stats = shard.stats()
await shard.close()
console.log(
  JSON.stringify({
    limit,
    served,
    failures: failures.slice(0, 20),
    failureCount: failures.length,
    warnings,
    stats,
    maxOpenSeen,
  }),
)
