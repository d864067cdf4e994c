import assert from 'node:assert/strict'
import * as http from 'node:http'
import { test } from 'node:test'
import { seededRandom } from '../helpers/async-helpers.js'
import { type HttpResponse, request } from '../http/http-client.js'
import { startNotesSaas } from './notes-saas-harness.js'

// 1,000 requests in flight at once across 50 tenants (reads and writes, by header, subdomain and path), with
// fewer open handles (maxOpen 16) than tenants, so handles are evicted and reopened under load. Every
// response must hold its own tenant's data and nobody else's.
const TENANTS = 50
const REQUESTS = 1000

test('1,000 concurrent mixed requests across 50 tenants: each response holds only its own tenant', async (t) => {
  const app = await startNotesSaas({ maxOpen: 16 })
  const { base, shard } = app
  const ids = Array.from({ length: TENANTS }, (_, i) => `c${String(i).padStart(2, '0')}`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: REQUESTS })
  t.after(() => agent.destroy())

  // 50 signups at once, then two notes each.
  const signups = await Promise.all(
    ids.map((id) =>
      request(base, 'POST', '/signup', {
        agent,
        body: { email: `owner@${id}.test`, name: `Owner ${id}`, company: id },
      }),
    ),
  )
  assert.deepEqual(
    signups.map((r) => r.status),
    ids.map(() => 201),
  )
  const seeded = new Map<string, number[]>()
  for (const id of ids) {
    const rows = await shard.withTenant(id, (s) =>
      s.db
        .insertInto('notes')
        .values(
          [1, 2].map((k) => ({ title: `[${id}] seed ${k}`, author_id: signups[ids.indexOf(id)]!.json.account.id })),
        )
        .returning('id')
        .execute(),
    )
    seeded.set(
      id,
      rows.map((r) => r.id),
    )
  }

  const random = seededRandom(7)
  const writes = new Map<string, number>(ids.map((id) => [id, 0]))
  const plan = Array.from({ length: REQUESTS }, (_, i) => {
    const id = ids[Math.floor(random() * TENANTS)]!
    const mode = (['header', 'subdomain', 'path'] as const)[i % 3]!
    const r = random()
    const kind = r < 0.4 ? 'write' : r < 0.8 ? 'list' : r < 0.9 ? 'one' : 'page'
    if (kind === 'write') writes.set(id, writes.get(id)! + 1)
    return { i, id, mode, kind }
  })

  const started = performance.now()
  const responses = await Promise.all(
    plan.map(({ i, id, mode, kind }) => {
      const route =
        kind === 'write' || kind === 'list' ? '/notes' : kind === 'one' ? `/notes/${seeded.get(id)![i % 2]}` : '/'
      const url = mode === 'path' ? `/t/${id}${route}` : route
      const headers: Record<string, string> =
        mode === 'header' ? { 'x-tenant': id } : mode === 'subdomain' ? { host: `${id}.localhost:3000` } : {}
      const body = kind === 'write' ? { title: `[${id}] write ${i}` } : undefined
      return request(base, kind === 'write' ? 'POST' : 'GET', url, { agent, headers, body })
    }),
  )
  const elapsed = performance.now() - started

  const owner = (id: string) => `owner@${id}.test`
  const check = (res: HttpResponse, { i, id, kind }: (typeof plan)[number]) => {
    const where = `request ${i} (${kind} for ${id})`
    if (kind === 'page') {
      assert.equal(res.status, 200, where)
      assert.ok(res.text.includes(`Tenant <code>${id}</code>`), where)
      const titles = [...res.text.matchAll(/<strong>([^<]*)<\/strong>/g)].map((m) => m[1]!)
      assert.ok(titles.length >= 2, where)
      for (const title of titles) assert.ok(title.startsWith(`[${id}] `), `${where}: ${title}`)
      return
    }
    assert.equal(res.json.tenant, id, where)
    const notes = kind === 'write' ? [res.json.note] : kind === 'one' ? [res.json.note] : res.json.notes
    assert.equal(res.status, kind === 'write' ? 201 : 200, where)
    if (kind === 'write') assert.equal(res.json.note.title, `[${id}] write ${i}`, where)
    assert.ok(notes.length >= 1, where)
    for (const note of notes) {
      assert.ok(note.title.startsWith(`[${id}] `), `${where}: got ${note.title}`)
      // The include joined this tenant's notes with apex: the author is this tenant's owner.
      assert.equal(note.author?.email, owner(id), where)
    }
  }
  for (const [k, res] of responses.entries()) check(res, plan[k]!)

  // Every write landed in its own tenant's file, and only there.
  for (const id of ids) {
    const titles = await shard.withTenant(id, (s) => s.db.selectFrom('notes').select('title').execute())
    assert.equal(titles.length, 2 + writes.get(id)!, id)
    assert.ok(
      titles.every((r) => r.title.startsWith(`[${id}] `)),
      id,
    )
  }
  assert.equal(shard.stats().pinned, 0)
  assert.ok(shard.stats().evictions > 0, 'handles were evicted and reopened during the run')
  assert.deepEqual(app.unexpected, [])
  t.diagnostic(`${REQUESTS} requests in ${elapsed.toFixed(0)} ms (${((REQUESTS / elapsed) * 1000).toFixed(0)} req/s)`)
})
