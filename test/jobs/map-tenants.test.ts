import assert from 'node:assert/strict'
import { test } from 'node:test'
import { makeShard } from '../helpers/fixtures.js'

// shard.mapTenants(fn, { concurrency, signal, onProgress }) on real tenant files.
async function shardWithTenants(n: number) {
  const { shard, dir } = await makeShard()
  const ids = Array.from({ length: n }, (_, i) => `t${String(i).padStart(2, '0')}`)
  for (const id of ids) {
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values(Array.from({ length: Number(id.slice(1)) + 1 }, (_, k) => ({ title: `${id}-${k}` })))
        .execute(),
    )
  }
  return { shard, dir, ids }
}

test('collects { id, value } per tenant in id order, each fn running in its own tenant', async (t) => {
  const { shard, ids } = await shardWithTenants(12)
  t.after(() => shard.close())
  const results = await shard.mapTenants(
    async (s) => {
      const rows = await s.db.selectFrom('documents').select('title').execute()
      return {
        scope: s.id,
        current: shard.currentTenant(),
        count: rows.length,
        own: rows.every((r) => r.title.startsWith(`${s.id}-`)),
      }
    },
    { concurrency: 3 },
  )
  assert.deepEqual(
    results.map((r) => r.id),
    ids,
  )
  for (const [i, r] of results.entries()) {
    assert.equal(r.error, undefined)
    assert.deepEqual(r.value, { scope: r.id, current: r.id, count: i + 1, own: true })
  }
  assert.equal(shard.currentTenant(), undefined)
  assert.equal(shard.stats().pinned, 0)
})

test('one failing tenant never stops the rest; its error is reported with its id', async (t) => {
  const { shard, ids } = await shardWithTenants(8)
  t.after(() => shard.close())
  const results = await shard.mapTenants(
    async (s) => {
      if (s.id === 't03') throw new Error('t03 is broken')
      if (s.id === 't05')
        await s.db
          .selectFrom('no_such_table' as any)
          .selectAll()
          .execute()
      return s.id.toUpperCase()
    },
    { concurrency: 2 },
  )
  assert.equal(results.length, ids.length)
  const failed = results.filter((r) => r.error !== undefined)
  assert.deepEqual(
    failed.map((r) => r.id),
    ['t03', 't05'],
  )
  assert.equal((failed[0]!.error as Error).message, 't03 is broken')
  assert.match(String((failed[1]!.error as Error).message), /no_such_table/)
  assert.deepEqual(
    results.filter((r) => r.error === undefined).map((r) => r.value),
    ids.filter((id) => id !== 't03' && id !== 't05').map((id) => id.toUpperCase()),
  )
})

test('never runs more than `concurrency` tenants at once', async (t) => {
  const { shard } = await shardWithTenants(10)
  t.after(() => shard.close())
  let running = 0
  let peak = 0
  await shard.mapTenants(
    async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise((resolve) => setTimeout(resolve, 5))
      running--
    },
    { concurrency: 3 },
  )
  assert.equal(peak, 3)
})

test('an aborted signal stops new tenants from starting; those started finish and are reported', async (t) => {
  const { shard } = await shardWithTenants(10)
  t.after(() => shard.close())
  const controller = new AbortController()
  const started: string[] = []
  const results = await shard.mapTenants(
    async (s) => {
      started.push(s.id)
      if (started.length === 3) controller.abort()
      await new Promise((resolve) => setTimeout(resolve, 5))
      return s.id
    },
    { concurrency: 2, signal: controller.signal },
  )
  assert.ok(started.length >= 3 && started.length <= 4, `started ${started.length}`)
  assert.deepEqual(
    results.map((r) => r.id),
    started.sort(),
  )
  assert.ok(results.every((r) => r.value === r.id))

  const none = await shard.mapTenants(() => assert.fail('must not run'), { signal: AbortSignal.abort() })
  assert.deepEqual(none, [])
})

test('onProgress counts every finished tenant, with its outcome, outside any tenant scope', async (t) => {
  const { shard, ids } = await shardWithTenants(6)
  t.after(() => shard.close())
  const progress: { done: number; id: string; ok: boolean; current: string | undefined }[] = []
  await shard.mapTenants(
    (s) => {
      if (s.id === 't02') throw new Error('no')
      return 1
    },
    { concurrency: 2, onProgress: (p) => progress.push({ ...p, current: shard.currentTenant() }) },
  )
  assert.deepEqual(
    progress.map((p) => p.done),
    [1, 2, 3, 4, 5, 6],
  )
  assert.deepEqual(progress.map((p) => p.id).sort(), ids)
  assert.deepEqual(
    progress.filter((p) => !p.ok).map((p) => p.id),
    ['t02'],
  )
  assert.ok(progress.every((p) => p.current === undefined))
})

test('no tenants: an empty result', async (t) => {
  const { shard } = await makeShard()
  t.after(() => shard.close())
  assert.deepEqual(await shard.mapTenants(() => 1), [])
})
