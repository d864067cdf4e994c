// A second process for the concurrency and kill tests.
// Usage: node --import tsx migrate-child.ts <all|open> <dataDir> <migrationsFolder> [startAt]
// `all` runs migrate.all and prints one "done N" line per tenant; `open` opens every
// tenant lazily (migrateOnOpen: 'lazy'), starting at a shared wall-clock instant.
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'

const [mode, dir, folder, startAt] = process.argv.slice(2) as [string, string, string, string | undefined]
const shard = createShardines({
  storage: sqliteStorage({ dir, synchronous: 'off', busyTimeout: 20_000 }),
  migrations: { tenant: folder },
})
if (startAt !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())))
if (mode === 'all') {
  const report = await shard.migrate.all({
    onProgress: ({ done, id, status }) => process.stdout.write(`done ${done} ${id} ${status}\n`),
  })
  process.stdout.write(
    `${JSON.stringify({ migrated: report.migrated, upToDate: report.upToDate, failed: report.failed })}\n`,
  )
} else {
  const ids: string[] = []
  for await (const id of shard.tenants.list()) ids.push(id)
  await Promise.all(
    ids.map((id) =>
      shard.withTenant(id, (t) =>
        t.db
          .selectFrom('documents' as never)
          .selectAll()
          .execute(),
      ),
    ),
  )
  process.stdout.write(`opened ${ids.length}\n`)
}
await shard.close()
