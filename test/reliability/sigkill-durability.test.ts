// A writer process killed with SIGKILL loses no transaction it saw committed,
// and no transaction is half there.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createShardines } from '@shardines/core'
import { sql } from 'kysely'
import { spawnTsChild } from '../helpers/child-process.js'
import { type ApexDB, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

/** A fresh storage folder holding tenant `id`, created in `journalMode`, with no process holding it. */
async function folderWithTenant(id: string, journalMode: 'delete' | 'wal'): Promise<string> {
  const dir = tempDir()
  const setup = createShardines({
    storage: sqliteFactory(dir, { journalMode }),
    migrations: { tenant: tenantMigrations },
  })
  await setup.tenants.create(id)
  await setup.close()
  return dir
}

for (const journalMode of ['delete', 'wal'] as const) {
  test(`SIGKILL during writes (${journalMode} journal): every reported commit survives, none is torn`, {
    timeout: 60_000,
  }, async () => {
    const dir = await folderWithTenant('durable', journalMode)

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

    const shard = createShardines<ApexDB, TenantDB>({
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

for (const journalMode of ['delete', 'wal'] as const) {
  test(`two writer processes on one tenant (${journalMode} journal), both killed: no busy errors, every reported commit survives`, {
    timeout: 60_000,
  }, async () => {
    const dir = await folderWithTenant('shared', journalMode)
    const writers = [1, 2].map((w) =>
      spawnTsChild(new URL('./children/writer-child.ts', import.meta.url), [dir, 'shared', journalMode, String(w)]),
    )
    try {
      await Promise.all(writers.map((child) => child.waitForLine((line) => line === 'committed 100', 45_000)))
    } finally {
      for (const child of writers) child.process.kill('SIGKILL')
    }
    for (const child of writers) {
      const { signal } = await child.exited
      assert.equal(signal, 'SIGKILL', `a writer ended on its own (a busy error?):\n${child.stderr()}`)
    }
    const shard = createShardines<ApexDB, TenantDB>({
      storage: sqliteFactory(dir, { journalMode }),
      migrations: { tenant: tenantMigrations },
    })
    const rows = await shard.withTenant('shared', (t) =>
      t.db.selectFrom('documents').select(['title', 'status', 'owner_id']).execute(),
    )
    await shard.close()
    writers.forEach((child, i) => {
      const writer = i + 1
      const reported = child.lines.filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)))
      const parts = new Map<number, string[]>()
      for (const row of rows.filter((r) => r.owner_id === writer)) {
        parts.set(Number(row.title), [...(parts.get(Number(row.title)) ?? []), row.status])
      }
      assert.deepEqual(
        reported.filter((n) => !parts.has(n)),
        [],
        `writer ${writer} lost reported commits`,
      )
      for (const [n, got] of parts)
        assert.deepEqual(got.sort(), ['a', 'b', 'c'], `writer ${writer}: transaction ${n} is torn`)
    })
  })
}
