// The app's own tests, written the way an app on Shardines tests itself with
// @shardines/core/testing: every test gets a fresh tenant (a copy of a template
// migrated once per test process), and the tenant-access recorder proves that a
// code path touched only the tenant it was given.
//
//   pnpm --filter @shardines/example-notes-saas test
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, afterEach, before, describe, test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { createTestTenants, expectOnlyTenant, recordTenantAccess } from '@shardines/core/testing'
import { createApp } from '../src/app.js'
import { commentsOf, listNotes } from '../src/notes-queries.js'
import { MIGRATIONS, models, type NotesShard } from '../src/shard.js'

// A data folder for this test file. On a tmpfs when there is one: forking the template is then a plain copy.
const tmp = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
const dir = fs.mkdtempSync(path.join(tmp, 'notes-saas-test-'))

// The recorder's log goes to createShardines; the instance is the app's (same models and migrations).
const access = recordTenantAccess()
const shard: NotesShard = createShardines({
  models,
  migrations: MIGRATIONS,
  // Tests need no durability: skip the fsyncs.
  storage: sqliteStorage({ dir, synchronous: 'off' }),
  log: access.log,
})

// Every test tenant starts as a copy of this template: migrated once, with a welcome note by Ada.
const testTenants = createTestTenants(shard, {
  prefix: 'notes',
  seed: (t) => t.models.Note.create({ title: 'Welcome', body: 'Start here.', author_id: ada }),
})
let ada = 0
let app: ReturnType<typeof createApp>

before(async () => {
  await shard.migrate.apex()
  ada = (await shard.models.Account.create({ email: 'ada@notes.test', name: 'Ada' })).id
  app = createApp(shard, { onUnexpectedError: (error) => assert.fail(error as Error) })
  await testTenants.ready() // the template now, so the first test is not slower than the rest
})
afterEach(() => testTenants.cleanup()) // tenants made with create() and not destroyed yet
after(async () => {
  await testTenants.dispose() // and the template
  await shard.close()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('notes', () => {
  test('listNotes: newest first, each with its author from apex, and nothing from other tenants', () =>
    testTenants.run(async (t) => {
      await t.models.Note.create({ title: 'Second', author_id: ada })
      // Only this tenant, plus apex for the authors (one query, apex attached read-only).
      const notes = await access.expectOnlyTenant(t.id, () => listNotes(shard, { limit: 10 }), { allow: ['apex'] })
      assert.deepEqual(
        notes.map((n) => [n.title, n.author?.name]),
        [
          ['Second', 'Ada'],
          ['Welcome', 'Ada'],
        ],
      )
    }))

  test('comments are listed per note, with their authors', () =>
    testTenants.run(async (t) => {
      const note = await t.models.Note.create({ title: 'Discuss', author_id: ada })
      await t.models.Comment.createMany([
        { note_id: note.id, author_id: ada, body: 'first' },
        { note_id: note.id, author_id: ada, body: 'second' },
      ])
      const comments = await commentsOf(shard, note.id)
      assert.deepEqual(
        comments.map((c) => c.body),
        ['first', 'second'],
      )
      const [listed] = await listNotes(shard, { limit: 1 })
      assert.equal(listed?.comments, 2)
    }))

  // Tests in parallel, each in its own tenant: none sees another's notes.
  describe('in parallel', { concurrency: 6 }, () => {
    for (let i = 1; i <= 6; i++) {
      test(`test ${i} sees the template's note and its own`, () =>
        testTenants.run(async (t) => {
          await t.models.Note.create({ title: `note of test ${i}`, author_id: ada })
          await new Promise((resolve) => setTimeout(resolve, 7 - i))
          const titles = (await t.models.Note.orderBy('id').all()).map((n) => n.title)
          assert.deepEqual(titles, ['Welcome', `note of test ${i}`])
        }))
    }
  })
})

describe('the HTTP API', () => {
  /** Adds a test tenant to the apex directory (plan, owner, membership), as signup would. */
  async function register(id: string) {
    await shard.apex.insertInto('tenants').values({ id, name: id, plan_id: 'free', owner_id: ada }).execute()
    await shard.apex.insertInto('memberships').values({ tenant_id: id, account_id: ada, role: 'owner' }).execute()
  }

  test('POST and GET /t/<tenant>/notes touch only that tenant (and the apex directory)', async () => {
    const id = await testTenants.create() // destroyed by afterEach's cleanup()
    await register(id)
    const created = await access.capture(() =>
      app.request(`/t/${id}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'From HTTP' }),
      }),
    )
    assert.equal(created.result.status, 201)
    expectOnlyTenant(created, id, { allow: ['apex'] })

    const listed = await access.capture(() => app.request('/notes', { headers: { 'x-tenant': id } }))
    const body = (await listed.result.json()) as { notes: { title: string }[] }
    assert.deepEqual(
      body.notes.map((n) => n.title),
      ['From HTTP', 'Welcome'],
    )
    expectOnlyTenant(listed, id, { allow: ['apex'] })
  })

  test('the recorder catches a handler that reads another tenant', async () => {
    const [mine, theirs] = [await testTenants.create(), await testTenants.create()]
    // A deliberately wrong handler: it lists the notes of a fixed tenant instead of the request's.
    const buggy = () => shard.withTenant(mine, () => shard.withTenant(theirs, () => listNotes(shard, { limit: 5 })))
    await assert.rejects(access.expectOnlyTenant(mine, buggy, { allow: ['apex'] }), (error: Error) => {
      assert.ok(error instanceof assert.AssertionError)
      assert.match(error.message, new RegExp(`also touched "${theirs}"`))
      return true
    })
  })
})
