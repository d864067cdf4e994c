// A writer process killed with SIGKILL loses no transaction it saw committed,
// and no transaction is half there.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createShardines } from '@shardines/core'
import { sql } from 'kysely'
import { spawnTsChild } from '../helpers/child-process.js'
import { sqliteFactory, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

interface TenantDB {
  documents: { id: number; title: string; status: string }
}

for (const journalMode of ['delete', 'wal'] as const) {
  test(`SIGKILL during writes (${journalMode} journal): every reported commit survives, none is torn`, {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir()
    const setup = createShardines({
      storage: sqliteFactory(dir, { journalMode }),
      migrations: { tenant: tenantMigrations },
    })
    await setup.tenants.create('durable')
    await setup.close()

    const child = spawnTsChild(new URL('./children/writer-child.ts', import.meta.url), [dir, 'durable', journalMode])
    try {
      // Let it commit for a while, then kill it mid-stream.
      await child.waitForLine((line) => line === 'committed 150', 45_000)
      await new Promise((resolve) => setTimeout(resolve, 7 + Math.random() * 20))
      child.process.kill('SIGKILL')
    } finally {
      child.process.kill('SIGKILL')
    }
    const { signal } = await child.exited
    assert.equal(signal, 'SIGKILL', `the writer ended on its own:\n${child.stderr()}`)
    const reported = child.lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)))
    assert.ok(reported.length >= 151)

    const shard = createShardines<unknown, TenantDB>({
      storage: sqliteFactory(dir, { journalMode }),
      migrations: { tenant: tenantMigrations },
    })
    const { rows, check } = await shard.withTenant('durable', async (t) => ({
      rows: await t.db.selectFrom('documents').select(['title', 'status']).execute(),
      check: (await sql<{ integrity_check: string }>`pragma integrity_check`.execute(t.db)).rows,
    }))
    await shard.close()
    assert.deepEqual(check, [{ integrity_check: 'ok' }])
    const parts = new Map<number, string[]>()
    for (const row of rows) parts.set(Number(row.title), [...(parts.get(Number(row.title)) ?? []), row.status])
    const missing = reported.filter((n) => !parts.has(n))
    assert.deepEqual(missing, [], 'transactions reported committed were lost')
    for (const [n, got] of parts) assert.deepEqual(got.sort(), ['a', 'b', 'c'], `transaction ${n} is torn`)
    // Surviving transactions are a gapless prefix: at most the one in flight is extra.
    const survivors = [...parts.keys()].sort((a, b) => a - b)
    assert.deepEqual(
      survivors,
      survivors.map((_, i) => i),
    )
    assert.ok(survivors.length - reported.length <= 1)
  })
}
