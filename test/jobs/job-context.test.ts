// Carrying the tenant into background work: shard.jobContext() when a job is
// enqueued, shard.runJob(ctx, fn) when it runs. Through a real queue that runs
// without a server (plainjob on its own SQLite file): a job enqueued in tenant A
// runs in A even when the worker is busy inside B's scope; a forged payload is
// refused before any file is touched.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { InvalidJobContextError, InvalidTenantIdError, NoTenantError, TenantNotFoundError } from '@shardines/core'
import Database from 'better-sqlite3'
import { better, defineQueue, defineWorker, type Job } from 'plainjob'
import { makeShard } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { hostileTenantIds, showId } from '../security/hostile-tenant-ids.js'

const quietLogger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

test('jobContext() captures the current tenant as plain JSON; outside a scope it is NoTenantError', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const ctx = await shard.withTenant('acme', () => shard.jobContext())
  assert.deepEqual(JSON.parse(JSON.stringify(ctx)), { shardines: 1, tenant: 'acme' })
  assert.throws(() => shard.jobContext(), NoTenantError)
  await shard.close()
})

test('a job enqueued in tenant A runs in A through plainjob, even when the worker is busy inside tenant B’s scope', async () => {
  const { shard } = await makeShard()
  for (const id of ['acme', 'globex']) await shard.tenants.create(id)
  const queueFile = path.join(tempDir(), 'jobs.sqlite3')
  const queue = defineQueue({ connection: better(new Database(queueFile)), logger: quietLogger })
  // Enqueued from inside each tenant's request: the payload carries the context with the job's data.
  for (const id of ['acme', 'globex', 'acme']) {
    await shard.withTenant(id, () => queue.add('digest', { ctx: shard.jobContext(), title: `digest for ${id}` }))
  }
  const ran: { job: number; tenant: string | undefined; outer: string | undefined }[] = []
  const failures: string[] = []
  let done = 0
  const finished = new Promise<void>((resolve) => {
    const worker = defineWorker(
      'digest',
      (job: Job) =>
        // The worker is inside globex's scope (busy with another tenant's work) when it runs the job.
        shard.withTenant('globex', async () => {
          const outer = shard.currentTenant()
          const { ctx, title } = JSON.parse(job.data) as { ctx: unknown; title: string }
          await shard.runJob(ctx, async (t) => {
            ran.push({ job: job.id, tenant: shard.currentTenant(), outer })
            await t.db.insertInto('documents').values({ title }).execute()
          })
          assert.equal(shard.currentTenant(), 'globex', 'leaving the job restores the outer scope')
        }),
      {
        queue,
        pollIntervall: 5,
        logger: quietLogger,
        onCompleted: () => {
          if (++done === 3) {
            void worker.stop().then(resolve)
          }
        },
        onFailed: (job, error) => {
          failures.push(`job ${job.id}: ${error}`)
          if (++done === 3) void worker.stop().then(resolve)
        },
      },
    )
    void worker.start()
  })
  await finished
  queue.close()
  assert.deepEqual(failures, [])
  assert.deepEqual(
    ran.map((r) => [r.tenant, r.outer]),
    [
      ['acme', 'globex'],
      ['globex', 'globex'],
      ['acme', 'globex'],
    ],
  )
  const titles = async (id: string) =>
    (await shard.withTenant(id, (t) => t.db.selectFrom('documents').select('title').orderBy('id').execute())).map(
      (r) => r.title,
    )
  assert.deepEqual(await titles('acme'), ['digest for acme', 'digest for acme'])
  assert.deepEqual(await titles('globex'), ['digest for globex'])
  await shard.close()
})

test('forged job contexts are refused before any file is touched: hostile ids, wrong shapes, extra keys', async () => {
  const { shard, dir } = await makeShard()
  await shard.tenants.create('acme')
  const before = snapshotTree(dir)
  let ran = 0
  const run = (ctx: unknown) => shard.runJob(ctx, () => ran++)
  for (const { label, id } of hostileTenantIds(dir)) {
    await assert.rejects(run({ shardines: 1, tenant: id }), InvalidTenantIdError, `${label}: ${showId(id)}`)
    // The same through a JSON round trip, as a queue stores it.
    if (typeof id === 'string') {
      await assert.rejects(run(JSON.parse(JSON.stringify({ shardines: 1, tenant: id }))), InvalidTenantIdError)
    }
  }
  for (const [label, ctx] of [
    ['null', null],
    ['a string', 'acme'],
    ['an array', ['acme']],
    ['no version', { tenant: 'acme' }],
    ['another version', { shardines: 2, tenant: 'acme' }],
    ['the version as a string', { shardines: '1', tenant: 'acme' }],
    ['an extra key', { shardines: 1, tenant: 'acme', as: 'admin' }],
    ['a __proto__ key from JSON', JSON.parse('{"shardines":1,"tenant":"acme","__proto__":{"tenant":"globex"}}')],
    ['a class instance', Object.assign(new (class Ctx {})(), { shardines: 1, tenant: 'acme' })],
  ] as const) {
    await assert.rejects(run(ctx), InvalidJobContextError, label)
  }
  assert.equal(ran, 0)
  assert.deepEqual(snapshotTree(dir), before, 'a refused job touched the data folder')
  // A well-formed context of a tenant that does not exist is that tenant's error; nothing is created.
  await assert.rejects(run({ shardines: 1, tenant: 'ghost' }), TenantNotFoundError)
  assert.equal(fs.existsSync(path.join(dir, 'tenants', 'ghost.sqlite3')), false)
  await shard.close()
})
