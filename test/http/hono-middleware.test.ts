import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fromHeader } from '@shardines/core'
import { type Context, Hono } from 'hono'
import { makeShard } from '../helpers/fixtures.js'

// shard.honoMiddleware is typed structurally (core does not depend on Hono); here it runs inside a real Hono app.
test('honoMiddleware: scoped handlers, JSON refusals, and handler errors reach app.onError', async (t) => {
  const { shard } = await makeShard()
  t.after(() => shard.close())
  await shard.tenants.create('acme')
  await shard.tenants.create('globex')
  await shard.withTenant('acme', (s) => s.db.insertInto('documents').values({ title: 'acme doc' }).execute())

  const app = new Hono()
  const onError: Error[] = []
  app.onError((error, c) => {
    onError.push(error)
    return c.json({ handledBy: 'hono', message: error.message }, 500)
  })
  app.use('/docs/*', shard.honoMiddleware(fromHeader()))
  app.use(
    '/p/:tenant/*',
    shard.honoMiddleware((_req, c: Context) => c.req.param('tenant')),
  )
  app.get('/docs/list', async (c) => {
    const rows = await shard.db().selectFrom('documents').select('title').execute()
    return c.json({ tenant: shard.currentTenant(), titles: rows.map((r) => r.title) })
  })
  app.get('/p/:tenant/list', async (c) => c.json({ tenant: shard.currentTenant() }))
  app.post('/docs/fail', async () => {
    await shard
      .db()
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('documents').values({ title: 'rolled back' }).execute()
        throw new Error('boom')
      })
  })

  const ok = await app.request('/docs/list', { headers: { 'x-tenant': 'acme' } })
  assert.deepEqual(await ok.json(), { tenant: 'acme', titles: ['acme doc'] })
  const byParam = await app.request('/p/globex/list')
  assert.deepEqual(await byParam.json(), { tenant: 'globex' })

  const invalid = await app.request('/docs/list', { headers: { 'x-tenant': 'apex' } })
  assert.equal(invalid.status, 400)
  assert.equal(invalid.headers.get('content-type'), 'application/json; charset=utf-8')
  assert.equal(((await invalid.json()) as any).error.code, 'INVALID_TENANT_ID')
  const unknown = await app.request('/p/nosuch/list')
  assert.equal(unknown.status, 404)
  assert.deepEqual(((await unknown.json()) as any).error.tenantId, 'nosuch')
  const missing = await app.request('/docs/list')
  assert.equal(missing.status, 400)
  assert.equal(((await missing.json()) as any).error.code, 'TENANT_REQUIRED')

  const failed = await app.request('/docs/fail', { method: 'POST', headers: { 'x-tenant': 'acme' } })
  assert.equal(failed.status, 500)
  assert.deepEqual(await failed.json(), { handledBy: 'hono', message: 'boom' })
  assert.deepEqual(
    onError.map((e) => e.message),
    ['boom'],
  )
  const titles = await shard.withTenant('acme', (s) => s.db.selectFrom('documents').select('title').execute())
  assert.deepEqual(
    titles.map((r) => r.title),
    ['acme doc'],
  )
  assert.equal(shard.stats().pinned, 0)
})
