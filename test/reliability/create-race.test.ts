// Four processes create the same tenant at once: one wins, three get
// TenantExistsError, and the file is whole.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createShardines } from '@shardines/core'
import { sql } from 'kysely'
import { spawnTsChild } from '../helpers/child-process.js'
import { makeShard, sqliteFactory } from '../helpers/fixtures.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'

test('four processes create the same tenant at once: exactly one succeeds, the file passes integrity_check', {
  timeout: 30_000,
}, async () => {
  const { shard, dir } = await makeShard()
  await shard.close()
  const children = Array.from({ length: 4 }, () =>
    spawnTsChild(new URL('./children/create-race-child.ts', import.meta.url), [dir, 'contested']),
  )
  try {
    await Promise.all(children.map((child) => child.waitForLine((line) => line === 'ready')))
    for (const child of children) child.send('go')
    const results = await Promise.all(
      children.map(async (child) => {
        const line = await child.waitForLine((l) => l.startsWith('{'))
        return JSON.parse(line) as { pid: number; outcome: string; built: boolean; code?: string; message?: string }
      }),
    )
    const winners = results.filter((r) => r.outcome === 'created')
    const losers = results.filter((r) => r.outcome !== 'created')
    assert.equal(winners.length, 1, JSON.stringify(results))
    for (const loser of losers) assert.equal(loser.code, 'TENANT_EXISTS', JSON.stringify(loser))
    // The winner built the file. A loser either waited for the tenant's lifecycle lock and then
    // found the tenant there (built nothing), or built a copy and lost at the atomic link into place.
    assert.ok(winners[0]?.built, JSON.stringify(results))
    for (const child of children) assert.equal((await child.exited).code, 0, child.stderr())

    // No temporary file is left, and the one file is whole and was built by the winner.
    assert.deepEqual(
      snapshotTree(dir).filter((p) => p.startsWith('tenants/')),
      ['tenants/', 'tenants/contested.sqlite3'],
    )
    const reopened = createShardines<unknown, { created_by: { pid: number }; documents: { id: number } }>({
      storage: sqliteFactory(dir),
      migrateOnOpen: 'off',
    })
    await reopened.withTenant('contested', async (t) => {
      const check = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(t.db)
      assert.deepEqual(check.rows, [{ integrity_check: 'ok' }])
      assert.deepEqual(await t.db.selectFrom('created_by').select('pid').execute(), [{ pid: winners[0]!.pid }])
      assert.deepEqual(await t.db.selectFrom('documents').selectAll().execute(), [])
    })
    await reopened.close()
  } finally {
    for (const child of children) child.process.kill('SIGKILL')
  }
})

test('a process killed with SIGKILL in the middle of a create leaves no visible tenant, and the id can be created', {
  timeout: 30_000,
}, async () => {
  const { shard, dir } = await makeShard()
  const child = spawnTsChild(new URL('./children/create-race-child.ts', import.meta.url), [dir, 'crashed'])
  try {
    await child.waitForLine((line) => line === 'ready')
    child.send('go')
    // The child's last migration waits 150 ms: kill it while the temporary database is being built.
    await child.waitForLine((line) => line === 'building')
    child.process.kill('SIGKILL')
    assert.equal((await child.exited).signal, 'SIGKILL')
  } finally {
    child.process.kill('SIGKILL')
  }
  assert.ok(
    child.lines.every((l) => !l.startsWith('{')),
    'the child finished its create before it was killed: the test proves nothing',
  )
  assert.equal(await shard.tenants.exists('crashed'), false)
  const ids: string[] = []
  for await (const id of shard.tenants.list()) ids.push(id)
  assert.deepEqual(ids, [])
  await assert.rejects(
    shard.withTenant('crashed', () => 1),
    { code: 'TENANT_NOT_FOUND' },
  )
  await shard.tenants.create('crashed')
  assert.deepEqual(await shard.withTenant('crashed', (t) => t.db.selectFrom('documents').selectAll().execute()), [])
  // What the crash left is only a hidden temporary file beside the tenants.
  const leftovers = snapshotTree(dir).filter(
    (p) => p.startsWith('tenants/') && p !== 'tenants/' && p !== 'tenants/crashed.sqlite3',
  )
  for (const file of leftovers) assert.match(file, /^tenants\/\.creating-crashed-/)
  await shard.close()
})
