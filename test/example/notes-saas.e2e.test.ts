import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { request } from '../http/http-client.js'
import { startNotesSaas } from './notes-saas-harness.js'

// The example app end to end, over real HTTP on 127.0.0.1: every route a user of the demo would touch.
const app = await startNotesSaas({ adminToken: 'e2e-admin' })
const { base, shard, dir } = app
const accountId = async (email: string) =>
  (await shard.apex.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow()).id

describe('notes-saas over HTTP', () => {
  test('signup creates an account, a tenant file and the directory entry; refuses duplicates and bad input', async () => {
    const res = await request(base, 'POST', '/signup', {
      body: { email: 'Jo@Hooli.test', name: 'Jo', company: 'Hooli XYZ', plan: 'team' },
    })
    assert.equal(res.status, 201)
    assert.deepEqual(res.json.tenant, { id: 'hooli-xyz', name: 'Hooli XYZ', plan: 'team' })
    assert.equal(res.json.account.email, 'jo@hooli.test')
    assert.ok(fs.existsSync(path.join(dir, 'tenants', 'hooli-xyz.sqlite3')))
    const entry = await shard.apex.selectFrom('tenants').selectAll().where('id', '=', 'hooli-xyz').executeTakeFirst()
    assert.equal(entry?.owner_id, res.json.account.id)
    const role = await shard.apex
      .selectFrom('memberships')
      .select('role')
      .where('tenant_id', '=', 'hooli-xyz')
      .executeTakeFirst()
    assert.equal(role?.role, 'owner')

    const again = await request(base, 'POST', '/signup', {
      body: { email: 'jo@hooli.test', name: 'Jo', company: 'Other' },
    })
    assert.equal(again.status, 409)
    assert.equal(again.json.error.code, 'EMAIL_TAKEN')
    const taken = await request(base, 'POST', '/signup', {
      body: { email: 'x@y.test', name: 'X', company: 'Acme', tenant: 'acme' },
    })
    assert.equal(taken.status, 409)
    assert.equal(taken.json.error.code, 'TENANT_EXISTS')
    for (const body of [
      { email: 'nope', name: 'X', company: 'C' },
      { email: 'a@b.test', name: '', company: 'C' },
      { email: 'a@b.test', name: 'X', company: 'C', tenant: 'Bad Id' },
      { email: 'a@b.test', name: 'X', company: 'C', plan: 'platinum' },
      [1, 2],
    ]) {
      const bad = await request(base, 'POST', '/signup', { body })
      assert.equal(bad.status, 400, JSON.stringify(body))
    }
    assert.equal(fs.existsSync(path.join(dir, 'tenants', 'bad id.sqlite3')), false)
  })

  test('notes are created and listed per tenant, by header, subdomain and path', async () => {
    await request(base, 'POST', '/signup', { body: { email: 'ann@umbrella.test', name: 'Ann', company: 'Umbrella' } })
    const created = await request(base, 'POST', '/notes', {
      headers: { 'x-tenant': 'umbrella' },
      body: { title: 'Umbrella secret', body: 'T-virus' },
    })
    assert.equal(created.status, 201)
    assert.equal(created.json.tenant, 'umbrella')
    assert.equal(created.json.note.title, 'Umbrella secret')
    for (const [url, headers] of [
      ['/notes', { 'x-tenant': 'umbrella' }],
      ['/notes', { host: 'umbrella.localhost:3000' }],
      ['/t/umbrella/notes', {}],
    ] as const) {
      const list = await request(base, 'GET', url, { headers })
      assert.equal(list.status, 200)
      assert.equal(list.json.tenant, 'umbrella')
      assert.deepEqual(
        list.json.notes.map((n: { title: string }) => n.title),
        ['Umbrella secret'],
      )
    }
    const acme = await request(base, 'GET', '/t/acme/notes')
    assert.deepEqual(
      acme.json.notes.map((n: { title: string }) => n.title),
      ['Hiring plan', 'Q3 roadmap'],
    )
  })

  test('notes include their author from apex (a cross-database join), comments theirs', async () => {
    const ada = await accountId('ada@acme.test')
    const charles = await accountId('charles@acme.test')
    const list = await request(base, 'GET', '/notes', { headers: { 'x-tenant': 'acme' } })
    const roadmap = list.json.notes.find((n: { title: string }) => n.title === 'Q3 roadmap')
    assert.deepEqual(roadmap.author, { id: ada, name: 'Ada Lovelace', email: 'ada@acme.test' })
    assert.equal(roadmap.comments, 2)

    const one = await request(base, 'GET', `/t/acme/notes/${roadmap.id}`)
    assert.equal(one.status, 200)
    assert.deepEqual(
      one.json.comments.map((c: { body: string; author: { name: string } }) => [c.body, c.author.name]),
      [
        ['Needs a budget line.', 'Charles Babbage'],
        ['Agreed.', 'Charles Babbage'],
      ],
    )
    // A member may author; someone from another tenant may not.
    const byMember = await request(base, 'POST', '/t/acme/notes', { body: { title: 'By Charles', authorId: charles } })
    assert.equal(byMember.status, 201)
    assert.equal(byMember.json.note.author.name, 'Charles Babbage')
    const outsider = await request(base, 'POST', '/t/acme/notes', {
      body: { title: 'Intruder', authorId: await accountId('hank@globex.test') },
    })
    assert.equal(outsider.status, 422)
    assert.equal(outsider.json.error.code, 'NOT_A_MEMBER')
  })

  test('update, comment and delete a note', async () => {
    const created = await request(base, 'POST', '/t/globex/notes', { body: { title: 'Draft' } })
    const id = created.json.note.id
    const patched = await request(base, 'PATCH', `/t/globex/notes/${id}`, { body: { title: 'Final', body: 'Done' } })
    assert.equal(patched.status, 200)
    assert.equal(patched.json.note.title, 'Final')
    assert.equal(patched.json.note.body, 'Done')
    const commented = await request(base, 'POST', `/t/globex/notes/${id}/comments`, { body: { body: 'Nice' } })
    assert.equal(commented.status, 201)
    assert.deepEqual(
      commented.json.comments.map((c: { body: string; author: { email: string } }) => [c.body, c.author.email]),
      [['Nice', 'hank@globex.test']],
    )
    const comments = await request(base, 'GET', `/t/globex/notes/${id}/comments`)
    assert.equal(comments.json.comments.length, 1)
    assert.equal((await request(base, 'DELETE', `/t/globex/notes/${id}`)).status, 204)
    assert.equal((await request(base, 'GET', `/t/globex/notes/${id}`)).status, 404)
    // The note's comments went with it (ON DELETE CASCADE inside the tenant's file).
    const left = await shard.withTenant('globex', (t) =>
      t.db.selectFrom('comments').selectAll().where('note_id', '=', id).execute(),
    )
    assert.deepEqual(left, [])
    assert.equal((await request(base, 'GET', '/t/globex/notes/abc')).status, 404)
    // A note id from another tenant is simply not there.
    const acmeIds = await shard.withTenant('acme', (t) => t.db.selectFrom('notes').select('id').execute())
    const maxGlobex = await shard.withTenant('globex', (t) =>
      t.db
        .selectFrom('notes')
        .select((eb) => eb.fn.max('id').as('m'))
        .executeTakeFirstOrThrow(),
    )
    const foreign = acmeIds.map((r) => r.id).find((n) => n > Number(maxGlobex.m ?? 0))
    if (foreign !== undefined) assert.equal((await request(base, 'GET', `/t/globex/notes/${foreign}`)).status, 404)
  })

  test('export downloads a consistent SQLite copy of the tenant', async () => {
    const res = await request(base, 'GET', '/export', { headers: { 'x-tenant': 'initech' } })
    assert.equal(res.status, 200)
    assert.equal(res.headers['content-type'], 'application/vnd.sqlite3')
    assert.match(res.headers['content-disposition'] ?? '', /^attachment; filename="initech-\d{4}-\d\d-\d\d\.sqlite3"$/)
    assert.equal(res.body.subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'notes-export-test-')), 'initech.sqlite3')
    fs.writeFileSync(file, res.body)
    const db = new Database(file, { readonly: true })
    try {
      const titles = db.prepare('select title from notes order by id').pluck().all()
      assert.deepEqual(titles, ['TPS reports', 'Red stapler'])
    } finally {
      db.close()
      fs.rmSync(path.dirname(file), { recursive: true, force: true })
    }
  })

  test('fork makes a staging tenant with the same notes and members; the two then diverge', async () => {
    const res = await request(base, 'POST', '/t/initech/fork')
    assert.equal(res.status, 201)
    assert.deepEqual(res.json, { tenant: 'initech-staging', stagingOf: 'initech', notes: 2 })
    const entry = await shard.apex
      .selectFrom('tenants')
      .selectAll()
      .where('id', '=', 'initech-staging')
      .executeTakeFirst()
    assert.equal(entry?.staging_of, 'initech')
    const members = await shard.apex
      .selectFrom('memberships')
      .select('account_id')
      .where('tenant_id', '=', 'initech-staging')
      .execute()
    assert.equal(members.length, 2)
    const staged = await request(base, 'GET', '/notes', { headers: { 'x-tenant': 'initech-staging' } })
    assert.deepEqual(
      staged.json.notes.map((n: { title: string; author: { name: string } }) => [n.title, n.author.name]),
      [
        ['Red stapler', 'Bill Lumbergh'],
        ['TPS reports', 'Bill Lumbergh'],
      ],
    )
    await request(base, 'POST', '/t/initech-staging/notes', { body: { title: 'Only in staging' } })
    const original = await request(base, 'GET', '/t/initech/notes')
    assert.equal(original.json.notes.length, 2)
    const twice = await request(base, 'POST', '/t/initech/fork')
    assert.equal(twice.status, 409)
    const named = await request(base, 'POST', '/t/initech/fork', { body: { to: 'initech-qa' } })
    assert.equal(named.json.tenant, 'initech-qa')
    const badName = await request(base, 'POST', '/t/initech/fork', { body: { to: '../x' } })
    assert.equal(badName.status, 400)
  })

  test('the admin report visits every tenant through mapTenants and matches the data', async () => {
    const res = await request(base, 'GET', '/admin/report?concurrency=3', {
      headers: { authorization: 'Bearer e2e-admin' },
    })
    assert.equal(res.status, 200)
    const ids: string[] = []
    for await (const id of shard.tenants.list()) ids.push(id)
    assert.deepEqual(
      res.json.tenants.map((t: { id: string }) => t.id),
      ids,
    )
    assert.deepEqual(res.json.failed, [])
    let notes = 0
    for (const row of res.json.tenants) {
      const actual = await shard.withTenant(row.id, async (t) => ({
        notes: (await t.db.selectFrom('notes').select('id').execute()).length,
        comments: (await t.db.selectFrom('comments').select('id').execute()).length,
      }))
      assert.equal(row.notes, actual.notes, row.id)
      assert.equal(row.comments, actual.comments, row.id)
      notes += actual.notes
    }
    assert.equal(res.json.totals.notes, notes)
    const acme = res.json.tenants.find((t: { id: string }) => t.id === 'acme')
    assert.deepEqual([acme.name, acme.plan, acme.owner], ['Acme Corp', 'team', 'ada@acme.test'])
  })

  test("the HTML page lists the tenant's notes (escaped) and its form adds one", async () => {
    await request(base, 'POST', '/t/acme/notes', { body: { title: '<script>alert(1)</script>', body: 'a & b' } })
    const page = await request(base, 'GET', '/t/acme/')
    assert.equal(page.status, 200)
    assert.match(page.headers['content-type'] ?? '', /text\/html/)
    assert.match(page.text, /<h1>Acme Corp<\/h1>/)
    assert.match(page.text, /<strong>Q3 roadmap<\/strong> <span class="muted">by Ada Lovelace · 2 comments/)
    assert.match(page.text, /<form method="post" action="\/t\/acme\/notes">/)
    assert.ok(page.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'))
    assert.ok(!page.text.includes('<script>'))
    assert.ok(!page.text.includes('Launch checklist'), "no other tenant's note")
    const bySubdomain = await request(base, 'GET', '/', { headers: { host: 'acme.localhost:3000' } })
    assert.match(bySubdomain.text, /<form method="post" action="\/notes">/)

    const posted = await request(base, 'POST', '/t/acme/notes', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'title=From+the+form&body=Hello%21',
    })
    assert.equal(posted.status, 303)
    assert.equal(posted.headers.location, '/t/acme/')
    assert.match((await request(base, 'GET', '/t/acme')).text, /<strong>From the form<\/strong>.*<br>Hello!/)

    const landing = await request(base, 'GET', '/')
    assert.match(landing.text, /<a href="\/t\/acme\/">Acme Corp<\/a>/)
  })
})

test('secure by default: without ADMIN_TOKEN the admin routes answer 401 to every request', async () => {
  const open = await startNotesSaas()
  const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer ' }, { authorization: 'Bearer undefined' }]
  for (const headers of attempts) {
    const res = await request(open.base, 'GET', '/admin/report', { headers })
    assert.equal(res.status, 401, JSON.stringify(headers))
    assert.equal(res.json.error.code, 'UNAUTHORIZED')
    assert.match(res.json.error.message, /ADMIN_TOKEN/)
  }
})

test('with ADMIN_TOKEN set, the admin report needs the bearer token', async () => {
  const guarded = await startNotesSaas({ adminToken: 's3cret' })
  const refused = await request(guarded.base, 'GET', '/admin/report')
  assert.equal(refused.status, 401)
  assert.equal(refused.json.error.code, 'UNAUTHORIZED')
  const wrong = await request(guarded.base, 'GET', '/admin/report', { headers: { authorization: 'Bearer nope' } })
  assert.equal(wrong.status, 401)
  const allowed = await request(guarded.base, 'GET', '/admin/report', { headers: { authorization: 'Bearer s3cret' } })
  assert.equal(allowed.status, 200)
  assert.deepEqual(
    allowed.json.tenants.map((t: { id: string }) => t.id),
    ['acme', 'globex', 'initech'],
  )
})
