// One of several processes creating the same tenant at the same moment.
// Prints "ready", waits for "go" on stdin, creates, prints one JSON line.
// Usage: create-race-child.ts <dir> <tenantId>
import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { Migration } from '@shardines/core'
import { createShardines, ShardinesError } from '@shardines/core'
import { readStdinLine } from '../../helpers/child-process.js'
import { tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, id] = process.argv.slice(2)
// A slow last migration keeps every process inside its create at once.
let built = false
const slow: Migration = {
  async up(db) {
    built = true
    console.log('building')
    await new Promise((resolve) => setTimeout(resolve, 150))
    await db.schema.createTable('created_by').addColumn('pid', 'integer').execute()
    await db.insertInto('created_by').values({ pid: process.pid }).execute()
  },
}
const shard = createShardines({
  storage: sqliteStorage({ dir: dir! }),
  migrations: { tenant: { ...tenantMigrations, '003_created_by': slow } },
})
console.log('ready')
await readStdinLine()
try {
  await shard.tenants.create(id!)
  console.log(JSON.stringify({ pid: process.pid, outcome: 'created', built }))
} catch (error) {
  const code = error instanceof ShardinesError ? error.code : undefined
  console.log(
    JSON.stringify({
      pid: process.pid,
      outcome: 'error',
      built,
      name: (error as Error).name,
      code,
      message: (error as Error).message,
    }),
  )
}
await shard.close()
// stdin stays open (the parent's pipe): leave explicitly.
process.exit(0)
