// A second process on a shared data folder, driven over stdin: each line is a
// JSON command `{ seq, op, args }`; each answer is one JSON line
// `{ seq, ok, result }` or `{ seq, ok: false, error: { name, code, message } }`.
// Prints "ready" first.
// Usage: lifecycle-child.ts <dir> <journalMode>
import * as readline from 'node:readline'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, ShardinesError } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, journalMode] = process.argv.slice(2)
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir: dir!, journalMode: journalMode as 'wal' | 'delete' }),
  migrations: { tenant: tenantMigrations },
})

const ops: Record<string, (...args: any[]) => Promise<unknown>> = {
  create: (id: string) => shard.tenants.create(id),
  destroy: (id: string) => shard.tenants.destroy(id),
  rename: (from: string, to: string) => shard.tenants.rename(from, to),
  archive: (id: string) => shard.tenants.archive(id),
  restore: (id: string) => shard.tenants.restore(id),
  exists: (id: string) => shard.tenants.exists(id),
  insert: (id: string, titles: string[]) =>
    shard.withTenant(id, async (t) => {
      for (const title of titles) await t.db.insertInto('documents').values({ title }).execute()
    }),
  titles: (id: string) =>
    shard.withTenant(id, async (t) =>
      (await t.db.selectFrom('documents').select('title').orderBy('id').execute()).map((r) => r.title),
    ),
  stats: async () => shard.stats(),
}

console.log('ready')
const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const { seq, op, args } = JSON.parse(line) as { seq: number; op: string; args: unknown[] }
  if (op === 'exit') break
  try {
    const run = ops[op]
    if (run === undefined) throw new Error(`unknown op ${op}`)
    const result = await run(...args)
    console.log(JSON.stringify({ seq, ok: true, result: result ?? null }))
  } catch (error) {
    const code = error instanceof ShardinesError ? error.code : (error as { code?: string }).code
    console.log(
      JSON.stringify({
        seq,
        ok: false,
        error: { name: (error as Error).name, code, message: (error as Error).message },
      }),
    )
  }
}
await shard.close()
// stdin may stay open (the parent's pipe): leave explicitly.
process.exit(0)
