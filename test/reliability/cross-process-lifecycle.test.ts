// Two processes on one data folder. Process 1 (this one) has tenant "acme"'s handle
// open and idle in its pool; process 2 (a child) destroys and re-creates it, renames
// it, archives it or restores it. Process 1's next scope must see what the path
// holds now (or the typed error for nothing there), never the old file's rows, and
// its writes must land in the live file. A handle held by a running scope finishes
// on its own file; the next scope gets the new one, and no descriptor leaks.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import type { SqliteStorageOptions } from '@shardines/adapter-sqlite'
import { createShardines, type Shardines, TenantArchivedError, TenantNotFoundError } from '@shardines/core'
import { latch } from '../helpers/async-helpers.js'
import { spawnTsChild } from '../helpers/child-process.js'
import { type ApexDB, makeShard, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { HAS_PROC_FD, mainFileOf, openPathsUnder } from '../helpers/open-files.js'

type JournalMode = NonNullable<SqliteStorageOptions['journalMode']>
type Shard = Shardines<ApexDB, TenantDB>

interface ChildError {
  name: string
  code?: string
  message: string
}

/** Process 2: a child with its own shard on `dir`, running one lifecycle command at a time. */
async function processTwo(dir: string, journalMode: JournalMode) {
  const child = spawnTsChild(new URL('./children/lifecycle-child.ts', import.meta.url), [dir, journalMode])
  await child.waitForLine((line) => line === 'ready')
  let seq = 0
  async function call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = ++seq
    child.send(JSON.stringify({ seq: id, op, args }))
    const line = await child.waitForLine((l) => l.startsWith(`{"seq":${id},`))
    const reply = JSON.parse(line) as { ok: boolean; result?: T; error?: ChildError }
    if (!reply.ok) throw Object.assign(new Error(`process 2 ${op}: ${reply.error!.message}`), reply.error)
    return reply.result as T
  }
  return {
    call,
    titles: (id: string) => call<string[]>('titles', id),
    async exit() {
      child.send(JSON.stringify({ seq: ++seq, op: 'exit', args: [] }))
      const { code } = await child.exited
      assert.equal(code, 0, `process 2 failed:\n${child.stderr()}`)
    },
  }
}

function titles(shard: Shard, id: string): Promise<string[]> {
  return shard.withTenant(id, async (t) =>
    (await t.db.selectFrom('documents').select('title').orderBy('id').execute()).map((r) => r.title),
  )
}

function insert(shard: Shard, id: string, title: string): Promise<unknown> {
  return shard.withTenant(id, (t) => t.db.insertInto('documents').values({ title }).execute())
}

/**
 * Process 1 with "acme" (rows a1, a2) created and read: its handle is in the pool, idle.
 * Process 2 is started on the same folder.
 */
async function setup(journalMode: JournalMode = 'delete') {
  const { shard, dir } = await makeShard({ storageOptions: { journalMode } })
  await shard.tenants.create('acme')
  await insert(shard, 'acme', 'a1')
  await insert(shard, 'acme', 'a2')
  assert.deepEqual(await titles(shard, 'acme'), ['a1', 'a2'])
  const stats = shard.stats()
  assert.equal(stats.open, 1, 'acme is open in process 1')
  assert.equal(stats.pinned, 0, 'and idle')
  const other = await processTwo(dir, journalMode)
  return { shard, dir, other }
}

/**
 * Process 1's descriptors under the data folder: none may be on a removed file (an old
 * handle left open), and it holds each tenant file of `expected` once (one handle each;
 * a WAL handle's -wal and -shm only beside its own database).
 */
function assertDescriptors(dir: string, expected: string[]): void {
  const open = openPathsUnder(dir)
  if (open === undefined) return
  const root = fs.realpathSync(dir)
  const relative = open.map((p) => path.relative(root, p))
  assert.deepEqual(
    relative.filter((p) => p.endsWith(' (deleted)')),
    [],
    `process 1 still holds a removed file open: ${relative.join(', ')}`,
  )
  const tenantFiles = relative.filter((p) => p.startsWith(`tenants${path.sep}`))
  const wanted = expected.map((id) => path.join('tenants', `${id}.sqlite3`)).sort()
  assert.deepEqual(tenantFiles.filter((p) => mainFileOf(p) === p).sort(), wanted, tenantFiles.join(', '))
  for (const file of tenantFiles) assert.ok(wanted.includes(mainFileOf(file)), tenantFiles.join(', '))
}

for (const journalMode of ['delete', 'wal'] as const) {
  test(`process 2 destroys and re-creates the tenant (${journalMode} journal): process 1 sees exactly the new rows and writes to the live file`, {
    timeout: 30_000,
  }, async () => {
    const { shard, dir, other } = await setup(journalMode)
    assert.equal(await other.call('destroy', 'acme'), true)
    await other.call('create', 'acme')
    await other.call('insert', 'acme', ['n1', 'n2', 'n3'])
    // Process 2 keeps its handle open: under WAL its log holds rows process 1 must read through it.
    assert.deepEqual(await other.titles('acme'), ['n1', 'n2', 'n3'])

    assert.deepEqual(await titles(shard, 'acme'), ['n1', 'n2', 'n3'])
    await insert(shard, 'acme', 'from-p1')
    assert.deepEqual(await titles(shard, 'acme'), ['n1', 'n2', 'n3', 'from-p1'])
    // Process 2 reads process 1's write: it went into the live file, not the removed one.
    assert.deepEqual(await other.titles('acme'), ['n1', 'n2', 'n3', 'from-p1'])
    await insert(shard, 'acme', 'again-p1')
    assert.deepEqual(await other.titles('acme'), ['n1', 'n2', 'n3', 'from-p1', 'again-p1'])

    assert.equal(shard.stats().open, 1, 'one handle for acme: the old one was dropped, not kept beside the new one')
    assertDescriptors(dir, ['acme'])
    await other.exit()
    await shard.close()
    // Both processes closed (process 1 last): the file on disk has every row.
    const reopened = createShardines<ApexDB, TenantDB>({
      storage: sqliteFactory(dir, { journalMode }),
      migrations: { tenant: tenantMigrations },
    })
    assert.deepEqual(await titles(reopened, 'acme'), ['n1', 'n2', 'n3', 'from-p1', 'again-p1'])
    await reopened.close()
  })
}

test('process 2 renames the tenant: process 1 gets TenantNotFoundError for the old id and the same rows under the new one', {
  timeout: 30_000,
}, async () => {
  const { shard, dir, other } = await setup()
  await other.call('rename', 'acme', 'acme2')

  await assert.rejects(titles(shard, 'acme'), (error: unknown) => {
    assert.ok(error instanceof TenantNotFoundError, String(error))
    assert.equal(error.code, 'TENANT_NOT_FOUND')
    assert.equal(error.tenantId, 'acme')
    return true
  })
  assert.equal(await shard.tenants.exists('acme'), false)
  assert.deepEqual(await titles(shard, 'acme2'), ['a1', 'a2'])
  await insert(shard, 'acme2', 'from-p1')
  assert.deepEqual(await other.titles('acme2'), ['a1', 'a2', 'from-p1'])
  // A second look at the old id: still gone (no stale handle came back).
  await assert.rejects(titles(shard, 'acme'), { code: 'TENANT_NOT_FOUND' })

  assert.equal(shard.stats().open, 1, 'only acme2 is open')
  assertDescriptors(dir, ['acme2'])
  await other.exit()
  await shard.close()
})

test('process 2 archives the tenant: process 1 gets TenantArchivedError; after process 2 restores it, process 1 reads and writes the restored file', {
  timeout: 30_000,
}, async () => {
  const { shard, dir, other } = await setup()
  const record = await other.call<{
    id: string
    version: string | null
    bytes: number
    compressedBytes: number
    archivedAt: string
  }>('archive', 'acme')
  assert.equal(record.id, 'acme')
  assert.equal(record.version, '002_comments')
  assert.ok(record.bytes > 0 && record.compressedBytes > 0, JSON.stringify(record))
  assert.ok(!Number.isNaN(Date.parse(record.archivedAt)), record.archivedAt)
  assert.ok(fs.existsSync(path.join(dir, 'archive', 'acme.sqlite3.gz')))
  assert.ok(fs.existsSync(path.join(dir, 'archive', 'acme.json')))
  assert.ok(!fs.existsSync(path.join(dir, 'tenants', 'acme.sqlite3')))

  for (let i = 0; i < 2; i++) {
    await assert.rejects(titles(shard, 'acme'), (error: unknown) => {
      assert.ok(error instanceof TenantArchivedError, String(error))
      assert.equal(error.code, 'TENANT_ARCHIVED')
      assert.equal(error.tenantId, 'acme')
      return true
    })
  }
  const archived = []
  for await (const entry of shard.tenants.archived()) archived.push(entry)
  assert.deepEqual(archived, [record])
  assert.equal(shard.stats().open, 0, 'the handle on the archived file was dropped')
  assertDescriptors(dir, [])

  await other.call('restore', 'acme')
  assert.deepEqual(await titles(shard, 'acme'), ['a1', 'a2'])
  await insert(shard, 'acme', 'after-restore')
  assert.deepEqual(await other.titles('acme'), ['a1', 'a2', 'after-restore'])
  assert.equal(fs.existsSync(path.join(dir, 'archive', 'acme.sqlite3.gz')), false)
  assertDescriptors(dir, ['acme'])
  await other.exit()
  await shard.close()
})

test('process 2 archives and restores while process 1 does not look: process 1 then writes to the restored file', {
  timeout: 30_000,
}, async () => {
  // The restored file holds the same rows as the old one: only a write tells which file process 1 uses.
  const { shard, dir, other } = await setup()
  await other.call('archive', 'acme')
  await other.call('restore', 'acme')
  assert.deepEqual(await titles(shard, 'acme'), ['a1', 'a2'])
  await insert(shard, 'acme', 'from-p1')
  assert.deepEqual(await other.titles('acme'), ['a1', 'a2', 'from-p1'])
  assertDescriptors(dir, ['acme'])
  await other.exit()
  await shard.close()
})

test('process 2 destroys the tenant: process 1 gets TenantNotFoundError and closes its handle', {
  timeout: 30_000,
}, async () => {
  const { shard, dir, other } = await setup()
  assert.equal(await other.call('destroy', 'acme'), true)
  for (let i = 0; i < 2; i++) {
    await assert.rejects(insert(shard, 'acme', 'lost'), (error: unknown) => {
      assert.ok(error instanceof TenantNotFoundError, String(error))
      assert.equal(error.tenantId, 'acme')
      return true
    })
  }
  assert.equal(await shard.tenants.exists('acme'), false)
  assert.equal(shard.stats().open, 0)
  assertDescriptors(dir, [])
  assert.equal(await other.call('exists', 'acme'), false)
  await other.exit()
  await shard.close()
})

test('a scope running when process 2 re-creates the tenant finishes on its file; the next scope gets the new one; no handle leaks', {
  timeout: 30_000,
}, async () => {
  const { shard, dir, other } = await setup()
  const { promise: gate, resolve: release } = latch()
  const { promise: running, resolve: started } = latch()
  const seen: string[][] = []
  const first = shard.withTenant('acme', async (t) => {
    const read = async () =>
      (await t.db.selectFrom('documents').select('title').orderBy('id').execute()).map((r) => r.title)
    seen.push(await read())
    started()
    await gate
    seen.push(await read())
    return 'first done'
  })
  await running
  assert.equal(shard.stats().pinned, 1)

  assert.equal(await other.call('destroy', 'acme'), true)
  await other.call('create', 'acme')
  await other.call('insert', 'acme', ['n1'])

  // A second scope while the first still holds the old handle: it gets the new file.
  assert.deepEqual(await titles(shard, 'acme'), ['n1'])
  await insert(shard, 'acme', 'from-p1')
  assert.deepEqual(await other.titles('acme'), ['n1', 'from-p1'])
  if (HAS_PROC_FD) {
    const held = openPathsUnder(dir)!.filter((p) => p.endsWith(' (deleted)'))
    assert.equal(held.length, 1, `the running scope still has the removed file open: ${held.join(', ')}`)
  }
  assert.equal(shard.stats().pinned, 1, 'only the first scope holds a handle')

  release()
  assert.equal(await first, 'first done')
  assert.deepEqual(seen, [
    ['a1', 'a2'],
    ['a1', 'a2'],
  ])
  const stats = shard.stats()
  assert.equal(stats.pinned, 0)
  assert.equal(stats.open, 1, 'one handle: the new file')
  // The old handle was closed when its scope ended.
  assertDescriptors(dir, ['acme'])
  assert.deepEqual(await titles(shard, 'acme'), ['n1', 'from-p1'])
  assert.equal(shard.stats().misses, stats.misses, 'the new handle stayed in the pool: a hit')
  await other.exit()
  await shard.close()
})
