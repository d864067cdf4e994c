import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as path from 'node:path'
import { after, describe, test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, firstOf, fromHeader, fromPathPrefix, fromSubdomain } from '@shardines/core'
import express from 'express'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { recordingStorage, request } from './http-client.js'

// shard.middleware(resolve) under Express 5 and under a bare node:http server, over real HTTP on 127.0.0.1.

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function makeRecordedShard() {
  const dir = tempDir()
  const { storage, calls } = recordingStorage(sqliteStorage({ dir }))
  const shard = createShardines<ApexDB, TenantDB>({
    storage,
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  after(() => shard.close())
  for (const id of ['acme', 'globex']) {
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values({ title: `${id} doc` })
        .execute(),
    )
  }
  calls.ids.length = 0
  calls.byMethod.clear()
  return { shard, dir, calls }
}

// Set up at the top level: `after` hooks registered here (temp folder, server, shard) run when the file ends.
const ctx = await makeRecordedShard()
const errors: unknown[] = []
const base = await listen(http.createServer(expressApp()))

function expressApp() {
  const { shard } = ctx
  const app = express()
  app.use(shard.middleware(firstOf(fromPathPrefix('/t'), fromHeader('x-tenant'), fromSubdomain('localhost'))))
  const docs = async (_req: express.Request, res: express.Response) => {
    // A later tick: the scope must outlive the middleware's next() call.
    await new Promise((resolve) => setTimeout(resolve, 5))
    const rows = await shard.db().selectFrom('documents').select('title').execute()
    res.json({ tenant: shard.currentTenant(), titles: rows.map((r) => r.title) })
  }
  app.get('/docs', docs)
  app.get('/t/:tenant/docs', docs)
  app.post('/docs/fail', async () => {
    await shard.db().insertInto('documents').values({ title: 'never' }).execute()
    throw new Error('boom in handler')
  })
  app.post('/docs/fail-in-transaction', async () => {
    await shard
      .db()
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('documents').values({ title: 'rolled back' }).execute()
        throw new Error('boom in transaction')
      })
  })
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    errors.push(error)
    res.status(500).json({ handledBy: 'express', message: error.message })
  })
  return app
}

describe('shard.middleware under Express 5', () => {
  test('header, subdomain and path prefix each reach their own tenant, after an await', async () => {
    const byHeader = await request(base, 'GET', '/docs', { headers: { 'x-tenant': 'acme' } })
    assert.equal(byHeader.status, 200)
    assert.deepEqual(byHeader.json, { tenant: 'acme', titles: ['acme doc'] })
    const bySubdomain = await request(base, 'GET', '/docs', { headers: { host: 'globex.localhost:3000' } })
    assert.deepEqual(bySubdomain.json, { tenant: 'globex', titles: ['globex doc'] })
    const byUpperHost = await request(base, 'GET', '/docs', { headers: { host: 'GLOBEX.LOCALHOST' } })
    assert.deepEqual(byUpperHost.json, { tenant: 'globex', titles: ['globex doc'] })
    const byPath = await request(base, 'GET', '/t/acme/docs', { headers: { 'x-tenant': 'globex' } })
    assert.deepEqual(byPath.json, { tenant: 'acme', titles: ['acme doc'] }, 'the path wins over the header')
    assert.equal(ctx.shard.stats().pinned, 0, 'every scope ended with its response')
  })

  test('invalid ids answer 400 as JSON and never reach the storage', async () => {
    const before = snapshotTree(ctx.dir, { sizes: true })
    ctx.calls.ids.length = 0
    const cases: [string, Record<string, string>][] = [
      ['/docs', { 'x-tenant': '../apex' }],
      ['/docs', { 'x-tenant': 'apex' }],
      ['/docs', { 'x-tenant': 'ACME' }],
      ['/docs', { 'x-tenant': 'a'.repeat(65) }],
      ['/docs', { 'x-tenant': 'acme;drop' }],
      ['/docs', { host: '-bad.localhost' }],
      ['/docs', { host: 'a.b.localhost:3000' }],
      ['/t/..%2F..%2Fapex/docs', {}],
      ['/t/%2e%2e/docs', {}],
      ['/t/Acme/docs', {}],
      ['/t/%zz/docs', {}],
      ['/t/main/docs', {}],
    ]
    for (const [url, headers] of cases) {
      const res = await request(base, 'GET', url, { headers })
      assert.equal(res.status, 400, `${url} ${JSON.stringify(headers)}`)
      assert.match(res.headers['content-type'] ?? '', /application\/json/)
      assert.equal(res.json.error.code, 'INVALID_TENANT_ID')
    }
    assert.deepEqual(ctx.calls.ids, [], 'no storage call named any of the refused ids')
    assert.deepEqual(snapshotTree(ctx.dir, { sizes: true }), before)
  })

  test('an unknown tenant answers 404 as JSON and creates no file', async () => {
    const before = snapshotTree(ctx.dir, { sizes: true })
    for (const [url, headers] of [
      ['/docs', { 'x-tenant': 'nosuch' }],
      ['/docs', { host: 'nosuch.localhost' }],
      ['/t/nosuch/docs', {}],
    ] as const) {
      const res = await request(base, 'GET', url, { headers })
      assert.equal(res.status, 404)
      assert.deepEqual(res.json.error.code, 'TENANT_NOT_FOUND')
      assert.equal(res.json.error.tenantId, 'nosuch')
    }
    assert.deepEqual(snapshotTree(ctx.dir, { sizes: true }), before)
    assert.equal(fs.existsSync(path.join(ctx.dir, 'tenants', 'nosuch.sqlite3')), false)
  })

  test('a request naming no tenant answers 400 TENANT_REQUIRED', async () => {
    const res = await request(base, 'GET', '/docs', { headers: { host: 'localhost' } })
    assert.equal(res.status, 400)
    assert.equal(res.json.error.code, 'TENANT_REQUIRED')
  })

  test("a handler's throw reaches Express's error handler; its transaction rolled back", async () => {
    const res = await request(base, 'POST', '/docs/fail-in-transaction', { headers: { 'x-tenant': 'acme' } })
    assert.equal(res.status, 500)
    assert.deepEqual(res.json, { handledBy: 'express', message: 'boom in transaction' })
    const thrown = await request(base, 'POST', '/docs/fail', { headers: { 'x-tenant': 'globex' } })
    assert.deepEqual(thrown.json, { handledBy: 'express', message: 'boom in handler' })
    assert.equal(errors.length, 2)
    const titles = await ctx.shard.withTenant('acme', (t) => t.db.selectFrom('documents').select('title').execute())
    assert.deepEqual(
      titles.map((r) => r.title),
      ['acme doc'],
      'nothing from the failed transaction was written',
    )
    assert.equal(ctx.shard.stats().pinned, 0)
  })
})

describe('shard.middleware on a bare node:http server', () => {
  test('the scope lasts until the response closes; onMissing "skip" runs without a scope', async () => {
    const { shard } = await makeRecordedShard()
    const strict = shard.middleware(fromHeader())
    const lenient = shard.middleware(fromHeader(), { onMissing: 'skip' })
    const seen: (string | undefined)[] = []
    const server = http.createServer((req, res) => {
      const mw = req.url === '/lenient' ? lenient : strict
      mw(req, res, (error?: unknown) => {
        if (error) {
          res.statusCode = 500
          res.end(String(error))
          return
        }
        // Answer on a later timer: the handle stays pinned (and the tenant bound) until then.
        setTimeout(async () => {
          seen.push(shard.currentTenant())
          const pinned = shard.stats().pinned
          const count = shard.currentTenant()
            ? (await shard.db().selectFrom('documents').selectAll().execute()).length
            : -1
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ tenant: shard.currentTenant() ?? null, pinned, count }))
        }, 10)
      })
    })
    const base = await listen(server)
    const scoped = await request(base, 'GET', '/x', { headers: { 'x-tenant': 'acme' } })
    assert.deepEqual(scoped.json, { tenant: 'acme', pinned: 1, count: 1 })
    const skipped = await request(base, 'GET', '/lenient')
    assert.deepEqual(skipped.json, { tenant: null, pinned: 0, count: -1 })
    const refused = await request(base, 'GET', '/x')
    assert.equal(refused.status, 400)
    assert.deepEqual(seen, ['acme', undefined])
    // 'close' fires just after the client has the response; give it a tick.
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(shard.stats().pinned, 0)
  })

  test("a resolver's own error goes to next(err); a client that disconnects releases the scope", async () => {
    const { shard } = await makeRecordedShard()
    const mw = shard.middleware(() => {
      throw new Error('resolver broke')
    })
    const hang = shard.middleware(fromHeader())
    const server = http.createServer((req, res) => {
      ;(req.url === '/hang' ? hang : mw)(req, res, (error?: unknown) => {
        if (error) {
          res.statusCode = 502
          res.end((error as Error).message)
        }
        // '/hang' never answers: only the client's disconnect ends the scope.
      })
    })
    const base = await listen(server)
    const res = await request(base, 'GET', '/x')
    assert.equal(res.status, 502)
    assert.equal(res.text, 'resolver broke')

    const url = new URL(base)
    const req = http.request({ host: url.hostname, port: url.port, path: '/hang', headers: { 'x-tenant': 'acme' } })
    req.on('error', () => {})
    req.end()
    for (let i = 0; i < 100 && shard.stats().pinned === 0; i++) await new Promise((r) => setTimeout(r, 5))
    assert.equal(shard.stats().pinned, 1)
    req.destroy()
    for (let i = 0; i < 100 && shard.stats().pinned !== 0; i++) await new Promise((r) => setTimeout(r, 5))
    assert.equal(shard.stats().pinned, 0)
  })

  test('a next() that throws synchronously gets its own error as next(err); the scope still ends', async () => {
    const { shard } = await makeRecordedShard()
    const mw = shard.middleware(fromHeader(), { onMissing: 'skip' })
    const server = http.createServer((req, res) =>
      mw(req, res, (error?: unknown) => {
        if (error === undefined) throw new Error(`sync throw in ${shard.currentTenant() ?? 'no tenant'}`)
        res.statusCode = 500
        res.end((error as Error).message)
      }),
    )
    const base = await listen(server)
    const scoped = await request(base, 'GET', '/x', { headers: { 'x-tenant': 'acme' } })
    assert.deepEqual([scoped.status, scoped.text], [500, 'sync throw in acme'])
    const skipped = await request(base, 'GET', '/x')
    assert.deepEqual([skipped.status, skipped.text], [500, 'sync throw in no tenant'])
    for (let i = 0; i < 100 && shard.stats().pinned !== 0; i++) await new Promise((r) => setTimeout(r, 5))
    assert.equal(shard.stats().pinned, 0)
  })
})
