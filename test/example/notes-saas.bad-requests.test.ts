import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { request } from '../http/http-client.js'
import { startNotesSaas, writtenState } from './notes-saas-harness.js'

// Requests the app must refuse, and proof that none of them wrote anything: the data folder (files and sizes),
// apex's rows and every tenant's rows are the same before and after, and refused ids never reached the storage.
const app = await startNotesSaas({
  maxBodyBytes: 8 * 1024,
  extendTenantRoutes: (router, scoped) => {
    router.post('/boom', scoped, async () => {
      throw new Error('a bug in a handler')
    })
    router.post('/boom-in-transaction', scoped, async () => {
      const { shard } = app
      await shard
        .db()
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('notes').values({ title: 'half-written', author_id: 1 }).execute()
          throw new Error('a bug halfway through a transaction')
        })
    })
  },
})
const { base, shard, dir, calls } = app

const INVALID_IDS = [
  '../apex',
  'apex',
  'main',
  'ACME',
  '-acme',
  'a'.repeat(65),
  'acme/../globex',
  'acme%00',
  'ac me',
  'acme.globex',
]
const routes = [
  ['GET', '/notes', undefined],
  ['POST', '/notes', { title: 'should not be written' }],
  ['GET', '/', undefined],
  ['GET', '/export', undefined],
  ['POST', '/fork', undefined],
] as const

describe('notes-saas refuses bad requests and writes nothing', () => {
  test('invalid tenant ids by header, subdomain and path: 400 JSON, storage never asked', async () => {
    const before = await writtenState(dir, shard)
    calls.ids.length = 0
    let checked = 0
    for (const [method, route, body] of routes) {
      for (const id of INVALID_IDS) {
        const byHeader = await request(base, method, route, { headers: { 'x-tenant': id }, body })
        assert.equal(byHeader.status, 400, `${method} ${route} X-Tenant ${id}`)
        assert.equal(byHeader.json.error.code, 'INVALID_TENANT_ID')
        const byPath = await request(base, method, `/t/${encodeURIComponent(id)}${route === '/' ? '/' : route}`, {
          body,
        })
        assert.equal(byPath.status, 400, `${method} /t/${id}${route}`)
        assert.equal(byPath.json.error.code, 'INVALID_TENANT_ID')
        checked += 2
      }
      for (const host of [
        '-acme.localhost',
        'a.b.localhost:3000',
        'acme_.x.localhost',
        `${'a'.repeat(65)}.localhost`,
      ]) {
        const bySubdomain = await request(base, method, route, { headers: { host }, body })
        assert.equal(bySubdomain.status, 400, `${method} ${route} Host ${host}`)
        assert.equal(bySubdomain.json.error.code, 'INVALID_TENANT_ID')
        checked++
      }
    }
    assert.equal(checked, routes.length * (INVALID_IDS.length * 2 + 4))
    assert.deepEqual(calls.ids, [], 'no refused id reached the storage adapter (so no path was ever built from it)')
    assert.deepEqual(await writtenState(dir, shard), before)
  })

  test('unknown tenants by header, subdomain and path: 404 JSON, no file created', async () => {
    const before = await writtenState(dir, shard)
    for (const [method, route, body] of routes) {
      for (const [url, headers] of [
        [route, { 'x-tenant': 'nosuch' }],
        [route, { host: 'nosuch.localhost:3000' }],
        [`/t/nosuch${route}`, {}],
      ] as const) {
        const res = await request(base, method, url, { headers, body })
        assert.equal(res.status, 404, `${method} ${url} ${JSON.stringify(headers)}`)
        assert.equal(res.json.error.code, 'TENANT_NOT_FOUND')
        assert.equal(res.json.error.tenantId, 'nosuch')
      }
    }
    assert.deepEqual(await writtenState(dir, shard), before)
  })

  test('oversized bodies: 413 before any handler runs, with or without content-length', async () => {
    const before = await writtenState(dir, shard)
    const big = { title: 'too big', body: 'x'.repeat(20 * 1024) }
    for (const chunked of [false, true]) {
      for (const [url, headers] of [
        ['/notes', { 'x-tenant': 'acme' }],
        ['/notes', { host: 'acme.localhost' }],
        ['/t/acme/notes', {}],
      ] as const) {
        const res = await request(base, 'POST', url, { headers, body: big, chunked })
        assert.equal(res.status, 413, `${url} chunked=${chunked}`)
        assert.equal(res.json.error.code, 'PAYLOAD_TOO_LARGE')
      }
      const signup = await request(base, 'POST', '/signup', {
        body: { email: 'big@x.test', name: 'x'.repeat(20 * 1024), company: 'Big Co' },
        chunked,
      })
      assert.equal(signup.status, 413)
    }
    assert.deepEqual(await writtenState(dir, shard), before)
  })

  test("a handler that throws reaches the app's error handler (500), its transaction rolls back, its scope ends", async () => {
    const before = await writtenState(dir, shard)
    app.unexpected.length = 0
    for (const url of ['/t/acme/boom', '/t/acme/boom-in-transaction']) {
      const res = await request(base, 'POST', url)
      assert.equal(res.status, 500)
      assert.deepEqual(res.json, { error: { code: 'INTERNAL', message: 'Something went wrong on our side.' } })
    }
    const byHeader = await request(base, 'POST', '/boom-in-transaction', { headers: { 'x-tenant': 'globex' } })
    assert.equal(byHeader.status, 500)
    assert.deepEqual(
      app.unexpected.map((e) => (e as Error).message),
      ['a bug in a handler', 'a bug halfway through a transaction', 'a bug halfway through a transaction'],
    )
    assert.deepEqual(await writtenState(dir, shard), before)
    assert.equal(shard.stats().pinned, 0)
  })

  test('malformed input: 400 with a reason, nothing written', async () => {
    const before = await writtenState(dir, shard)
    const cases = [
      ['POST', '/t/acme/notes', '{"title":'],
      ['POST', '/t/acme/notes', '[]'],
      ['POST', '/t/acme/notes', { title: '' }],
      ['POST', '/t/acme/notes', { title: 'x', authorId: -1 }],
      ['POST', '/t/acme/notes', { title: 'x'.repeat(201) }],
      ['PATCH', '/t/acme/notes/1', {}],
      ['POST', '/t/acme/notes/1/comments', { body: 42 }],
      ['POST', '/signup', 'not json'],
    ] as const
    for (const [method, url, body] of cases) {
      const res = await request(base, method, url, {
        body,
        headers: typeof body === 'string' ? { 'content-type': 'application/json' } : {},
      })
      assert.equal(res.status, 400, `${method} ${url} ${JSON.stringify(body)}`)
      assert.equal(typeof res.json.error.message, 'string')
    }
    assert.deepEqual(await writtenState(dir, shard), before)
  })

  test("past the plan's note limit: 402, nothing written", async () => {
    // initech is on the free plan (200 notes).
    const owner = await shard.apex
      .selectFrom('tenants')
      .select('owner_id')
      .where('id', '=', 'initech')
      .executeTakeFirstOrThrow()
    await shard.withTenant('initech', async (t) => {
      const have = (await t.db.selectFrom('notes').select('id').execute()).length
      await t.db
        .insertInto('notes')
        .values(Array.from({ length: 200 - have }, (_, i) => ({ title: `filler ${i}`, author_id: owner.owner_id })))
        .execute()
    })
    const before = await writtenState(dir, shard)
    const res = await request(base, 'POST', '/t/initech/notes', { body: { title: 'one too many' } })
    assert.equal(res.status, 402)
    assert.equal(res.json.error.code, 'PLAN_LIMIT')
    assert.deepEqual(await writtenState(dir, shard), before)
  })
})
