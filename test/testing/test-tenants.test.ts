import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  createShardines,
  InvalidOptionsError,
  InvalidTenantIdError,
  isValidTenantId,
  MAX_TENANT_ID_LENGTH,
  type StorageAdapter,
} from '@shardines/core'
import {
  createTestTenants,
  DEFAULT_TEST_PREFIX,
  disposeTestTenants,
  MAX_TEST_PREFIX_LENGTH,
  sharedTestTenants,
  withTestTenant,
} from '@shardines/core/testing'
import { makeShard } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { recordingStorage } from '../http/http-client.js'
import { hostileTenantIds, showId } from '../security/hostile-tenant-ids.js'
import { type ApexDB, type TenantDB, tenantMigrations } from './ten-table-schema.js'

async function tenantsOf(shard: { tenants: { list(): AsyncIterable<string> } }): Promise<string[]> {
  const ids: string[] = []
  for await (const id of shard.tenants.list()) ids.push(id)
  return ids
}

/** A shard over a storage that records its calls (create, fork, destroy…), with the ten-table tenant schema. */
function recordedShard(wrap: (storage: StorageAdapter) => StorageAdapter = (s) => s) {
  const dir = tempDir()
  const { storage, calls } = recordingStorage(wrap(sqliteStorage({ dir })))
  const shard = createShardines<ApexDB, TenantDB>({ storage, migrations: { tenant: tenantMigrations } })
  return { shard, calls, dir }
}

describe('createTestTenants', () => {
  test('run() gives fn a fresh tenant forked from a template, resolves to its result, and destroys the tenant', async () => {
    const { shard, calls } = recordedShard()
    const testTenants = createTestTenants(shard, {
      prefix: 'unit',
      seed: (t) => t.db.insertInto('items').values({ label: 'seed', n: 0 }).execute(),
    })
    assert.equal(testTenants.strategy, 'fork')
    assert.deepEqual(await tenantsOf(shard), [], 'the template is made on first use, not before')

    let seen = ''
    const result = await testTenants.run(async (t) => {
      seen = t.id
      assert.equal(shard.currentTenant(), t.id)
      await t.db.insertInto('items').values({ label: 'mine', n: 1 }).execute()
      return t.db.selectFrom('items').select('label').orderBy('n').execute()
    })
    assert.deepEqual(result, [{ label: 'seed' }, { label: 'mine' }])
    assert.match(seen, /^unit-[a-z0-9]+-[a-z0-9]{5}-1$/)
    assert.ok(seen.startsWith(testTenants.templateId.slice(0, -'tpl'.length)), `${seen} / ${testTenants.templateId}`)
    assert.deepEqual(await tenantsOf(shard), [testTenants.templateId], 'only the template is left')
    assert.deepEqual(testTenants.live, [])
    assert.deepEqual(calls.byMethod.get('fork'), [testTenants.templateId, seen])

    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), [])
    await assert.rejects(testTenants.create(), InvalidOptionsError)
    await shard.close()
  })

  test('the template is created and seeded once, however many tests ask for a tenant at once', async () => {
    const { shard, calls } = recordedShard()
    let seeds = 0
    const testTenants = createTestTenants(shard, {
      seed: async (t) => {
        seeds += 1
        await t.db.insertInto('items').values({ label: 'seed', n: 0 }).execute()
      },
    })
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        testTenants.run(async (t) => {
          await new Promise((resolve) => setTimeout(resolve, i % 4))
          await t.db.insertInto('items').values({ label: t.id, n: i }).execute()
          const rows = await t.db.selectFrom('items').select('label').orderBy('id').execute()
          assert.deepEqual(rows, [{ label: 'seed' }, { label: t.id }], 'a test sees the seed and its own row only')
          return t.id
        }),
      ),
    )
    assert.equal(new Set(ids).size, 20)
    assert.equal(seeds, 1)
    assert.deepEqual(calls.byMethod.get('create'), [testTenants.templateId], 'one create: the template')
    assert.equal(calls.byMethod.get('fork')?.length, 40, '20 forks (source and target recorded)')
    assert.deepEqual(await tenantsOf(shard), [testTenants.templateId])
    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), [])
    await shard.close()
  })

  test('a failing test leaves no tenant behind and rejects with its own error', async () => {
    const { shard } = recordedShard()
    const testTenants = createTestTenants(shard)
    const failure = new Error('the test failed')
    let id = ''
    await assert.rejects(
      testTenants.run(async (t) => {
        id = t.id
        await t.db.insertInto('items').values({ label: 'x', n: 1 }).execute()
        throw failure
      }),
      (error) => error === failure,
    )
    assert.equal(await shard.tenants.exists(id), false)
    // A synchronous throw, and an assertion failure, the same.
    await assert.rejects(
      testTenants.run(() => {
        throw new TypeError('sync')
      }),
      TypeError,
    )
    await assert.rejects(
      testTenants.run(() => assert.equal(1, 2)),
      assert.AssertionError,
    )
    assert.deepEqual(testTenants.live, [])
    assert.deepEqual(await tenantsOf(shard), [testTenants.templateId])
    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), [])
    await shard.close()
  })

  test('cleanup() (for afterEach) destroys the tenants create() made, not a running run()’s; dispose() also the template', async () => {
    const { shard } = recordedShard()
    const testTenants = createTestTenants(shard, { prefix: 'hooks' })
    const a = await testTenants.create()
    const b = await testTenants.create()
    const c = await testTenants.create()
    assert.deepEqual(testTenants.live, [a, b, c])
    assert.equal(await testTenants.destroy(b), true)
    await assert.rejects(testTenants.destroy(b), InvalidOptionsError, 'only its own live tenants')
    await assert.rejects(testTenants.destroy('someone-else'), InvalidOptionsError)
    assert.deepEqual(await tenantsOf(shard), [a, c, testTenants.templateId].sort())
    await testTenants.cleanup()
    assert.deepEqual(testTenants.live, [])
    assert.deepEqual(await tenantsOf(shard), [testTenants.templateId])
    // A concurrent test's run() keeps its tenant through another test's cleanup().
    let release = () => {}
    const running = testTenants.run(async (t) => {
      await new Promise<void>((resolve) => {
        release = resolve
      })
      return t.db.selectFrom('items').selectAll().execute()
    })
    while (testTenants.live.length === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    await testTenants.cleanup()
    assert.equal(testTenants.live.length, 1)
    release()
    assert.deepEqual(await running, [])
    const d = await testTenants.create()
    await testTenants.dispose()
    assert.equal(await shard.tenants.exists(d), false)
    assert.deepEqual(await tenantsOf(shard), [])
    await testTenants.dispose() // again: nothing to do
    await shard.close()
  })

  test('ids are valid, unique across helpers with one prefix, and fit 64 characters with the longest prefix', async () => {
    const { shard } = recordedShard()
    const longest = 'p'.repeat(MAX_TEST_PREFIX_LENGTH)
    const helpers = [createTestTenants(shard), createTestTenants(shard), createTestTenants(shard, { prefix: longest })]
    assert.equal(helpers[0]!.prefix, DEFAULT_TEST_PREFIX)
    assert.notEqual(helpers[0]!.templateId, helpers[1]!.templateId)
    const ids = await Promise.all(helpers.flatMap((h) => [h.create(), h.create()]))
    assert.equal(new Set(ids).size, ids.length)
    for (const id of [...ids, ...helpers.map((h) => h.templateId)]) {
      assert.ok(isValidTenantId(id), id)
      assert.ok(id.length <= MAX_TENANT_ID_LENGTH, id)
    }
    assert.ok(ids[4]!.startsWith(`${longest}-`))
    for (const h of helpers) await h.dispose()
    assert.deepEqual(await tenantsOf(shard), [])
    await shard.close()
  })

  test('hostile and invalid prefixes, templates and options are refused before anything is written', async () => {
    const { shard, dir } = recordedShard()
    await shard.tenants.create('golden')
    const before = snapshotTree(dir)
    let refused = 0
    for (const { label, id } of hostileTenantIds(dir)) {
      if (id === undefined) continue // the option not given
      // Reserved ids ('apex', 'main', 'temp') only begin a test id ('apex-…'), which is valid.
      if (typeof id === 'string' && /^[a-z0-9][a-z0-9_-]{0,31}$/.test(id)) {
        assert.ok(['apex', 'main', 'temp'].includes(id), `${label}: ${showId(id)} accepted`)
        continue
      }
      assert.throws(
        () => createTestTenants(shard, { prefix: id as string }),
        (error: unknown) => error instanceof InvalidOptionsError && !/[\0\n\r\u202e]/.test(error.message),
        `${label}: ${showId(id)}`,
      )
      assert.throws(() => createTestTenants(shard, { template: id as string }), InvalidTenantIdError, showId(id))
      refused++
    }
    assert.ok(refused > 130, `${refused} hostile prefixes refused`)
    for (const prefix of ['', 'Test', '-x', 'x y', 'x/y', '../x', 'p'.repeat(MAX_TEST_PREFIX_LENGTH + 1)]) {
      assert.throws(() => createTestTenants(shard, { prefix }), InvalidOptionsError, prefix)
      assert.throws(() => sharedTestTenants(shard, { prefix }), InvalidOptionsError, prefix)
      await assert.rejects(
        withTestTenant(shard, () => assert.fail('never runs'), { prefix }),
        InvalidOptionsError,
      )
    }
    assert.throws(() => createTestTenants(shard, { strategy: 'copy' as 'fork' }), /must be 'fork' or 'create'/)
    assert.throws(() => createTestTenants(shard, { prefx: 'x' } as object), /Unknown test tenants option "prefx"/)
    assert.throws(() => createTestTenants(shard, { seed: 'x' as never }), InvalidOptionsError)
    assert.throws(() => createTestTenants(shard, { template: 'golden', seed: () => {} }), /both template and seed/)
    assert.deepEqual(snapshotTree(dir), before, 'nothing was written')
    await shard.close()
  })

  test('a given template is copied for each test and never destroyed', async () => {
    const { shard } = recordedShard()
    await shard.tenants.create('golden')
    await shard.withTenant('golden', (t) => t.db.insertInto('items').values({ label: 'golden', n: 7 }).execute())
    const testTenants = createTestTenants(shard, { template: 'golden', prefix: 'g' })
    assert.equal(testTenants.templateId, 'golden')
    const rows = await testTenants.run(async (t) => {
      await t.db.deleteFrom('items').execute()
      return t.db.selectFrom('items').selectAll().execute()
    })
    assert.deepEqual(rows, [])
    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), ['golden'])
    const kept = await shard.withTenant('golden', (t) => t.db.selectFrom('items').select('label').execute())
    assert.deepEqual(kept, [{ label: 'golden' }], 'the tests wrote to their copies only')
    await shard.close()
  })

  test("strategy 'create' migrates each tenant (and seeds it); a storage that refuses fork falls back to it", async () => {
    const refusingFork = (storage: StorageAdapter): StorageAdapter =>
      new Proxy(storage, {
        get(target, key) {
          if (key === 'fork') {
            return async () => {
              throw new InvalidOptionsError('tenants.fork() is not supported by this storage.')
            }
          }
          const value = Reflect.get(target, key)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    const { shard, calls } = recordedShard(refusingFork)
    let seeds = 0
    const testTenants = createTestTenants(shard, {
      seed: async (t) => {
        seeds++
        await t.db.insertInto('items').values({ label: 'seed', n: 0 }).execute()
      },
    })
    const first = await testTenants.run((t) => t.db.selectFrom('items').select('label').execute())
    assert.deepEqual(first, [{ label: 'seed' }])
    assert.equal(testTenants.strategy, 'create', 'fell back after the refusal')
    await testTenants.run(async () => {})
    assert.equal(seeds, 3, 'the template once, then each created tenant')
    assert.equal(calls.byMethod.get('create')?.length, 3)
    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), [])

    // Chosen up front: no template at all.
    const creating = createTestTenants(shard, { strategy: 'create' })
    await creating.run(async (t) =>
      assert.equal(
        await t.db
          .selectFrom('t10')
          .selectAll()
          .execute()
          .then((r) => r.length),
        0,
      ),
    )
    assert.deepEqual(await tenantsOf(shard), [])
    await creating.dispose()
    await shard.close()
  })

  test('other fork errors are not taken for a missing capability', async () => {
    const { shard } = await makeShard()
    const testTenants = createTestTenants(shard, { template: 'missing' })
    await assert.rejects(testTenants.create(), { name: 'TenantNotFoundError' })
    assert.equal(testTenants.strategy, 'fork')
    assert.deepEqual(testTenants.live, [])
    await shard.close()
  })

  test('a seed that fails leaves no template, and the next test tries again', async () => {
    const { shard } = recordedShard()
    let attempts = 0
    const testTenants = createTestTenants(shard, {
      seed: async (t) => {
        attempts++
        await t.db.insertInto('items').values({ label: 'seed', n: 0 }).execute()
        if (attempts === 1) throw new Error('seed failed')
      },
    })
    await assert.rejects(
      testTenants.run(() => assert.fail('never runs')),
      /seed failed/,
    )
    assert.deepEqual(await tenantsOf(shard), [])
    const rows = await testTenants.run((t) => t.db.selectFrom('items').select('label').execute())
    assert.deepEqual(rows, [{ label: 'seed' }], 'one seed row: the failed attempt left nothing')
    await testTenants.dispose()
    assert.deepEqual(await tenantsOf(shard), [])
    await shard.close()
  })
})

describe('withTestTenant', () => {
  test('runs fn in a fresh tenant, shares one template per shard and options, and disposeTestTenants removes it', async () => {
    const { shard } = await makeShard()
    const a = await withTestTenant(shard, async (t) => {
      await t.db.insertInto('documents').values({ title: 'mine' }).execute()
      return { id: t.id, count: (await t.db.selectFrom('documents').selectAll().execute()).length }
    })
    const b = await withTestTenant(shard, (t) => t.id)
    assert.equal(a.count, 1)
    assert.notEqual(a.id, b)
    assert.equal(sharedTestTenants(shard), sharedTestTenants(shard, {}))
    assert.notEqual(sharedTestTenants(shard), sharedTestTenants(shard, { prefix: 'other' }))
    const seed = () => {}
    assert.equal(sharedTestTenants(shard, { seed }), sharedTestTenants(shard, { seed }))
    assert.notEqual(sharedTestTenants(shard, { seed }), sharedTestTenants(shard, { seed: () => {} }))
    assert.deepEqual(await tenantsOf(shard), [sharedTestTenants(shard).templateId])
    await assert.rejects(
      withTestTenant(shard, () => {
        throw new Error('boom')
      }),
      /boom/,
    )
    assert.deepEqual(await tenantsOf(shard), [sharedTestTenants(shard).templateId])
    await disposeTestTenants(shard)
    assert.deepEqual(await tenantsOf(shard), [])
    await disposeTestTenants(shard) // nothing left to do
    await shard.close()
  })
})
