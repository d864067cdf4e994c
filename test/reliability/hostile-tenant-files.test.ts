// What a hostile or damaged data folder can put at a tenant's path: a symbolic link (to a
// database outside the folder, or to another tenant's file), an empty file, a cut-short
// file, a folder, a file the process may not read. Each is that tenant's typed
// StorageError with a precise reason: no row of the file behind a link is ever returned,
// nothing is written into the file, and the pool is untouched (no handle opened, counted
// or evicted, maxOpen not lowered: no warning), so the other tenants stay open (hits).
// See broken-tenant-files.test.ts for a folder in place of the file and an overwritten header.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { StorageError, type StorageFailure } from '@shardines/core'
import Database from 'better-sqlite3'
import { makeShard } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

const SECRET = 'TOP SECRET: not a tenant row'
const GOOD = ['a', 'b', 'c']

/** A valid database outside the data folder, shaped like a tenant, holding a secret row. */
function outsideDatabase(): string {
  const file = path.join(tempDir('shardines-outside-'), 'secret.sqlite3')
  const db = new Database(file)
  db.exec(`create table documents (id integer primary key, title text not null, owner_id integer, status text not null default 'open');
    create table comments (id integer primary key, document_id integer not null, body text not null);`)
  db.prepare('insert into documents (title) values (?)').run(SECRET)
  db.close()
  return file
}

/**
 * Tenants a, b, c open and idle in a pool of exactly three (so a fourth handle would
 * evict one), and tenant `victim` created but never opened. Returns its file's path.
 */
async function setup(victim: string) {
  const warnings: string[] = []
  const { shard, dir } = await makeShard({ storageOptions: { maxOpen: 3, onWarning: (m) => warnings.push(m) } })
  for (const id of [...GOOD, victim]) await shard.tenants.create(id)
  for (const id of GOOD) {
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values({ title: `${id} doc` })
        .execute(),
    )
  }
  const file = path.join(dir, 'tenants', `${victim}.sqlite3`)
  return { shard, dir, file, warnings }
}

type Shard = Awaited<ReturnType<typeof setup>>['shard']

/** Three tries of `victim`: each its StorageError with `reasons`; the pool exactly as before; the others all hits. */
async function assertRefused(
  shard: Shard,
  warnings: string[],
  victim: string,
  reasons: readonly StorageFailure[],
): Promise<void> {
  const before = shard.stats()
  assert.equal(before.open, GOOD.length)
  for (let i = 0; i < 3; i++) {
    let returned: unknown
    await assert.rejects(
      shard.withTenant(victim, async (t) => {
        returned = await t.db.selectFrom('documents').select('title').execute()
        return returned
      }),
      (error: unknown) => {
        assert.ok(error instanceof StorageError, `not a StorageError: ${(error as Error)?.stack ?? String(error)}`)
        assert.equal(error.code, 'STORAGE_FAILED')
        assert.equal(error.tenantId, victim)
        assert.ok(reasons.includes(error.reason), `reason ${error.reason}, expected one of ${reasons.join(', ')}`)
        assert.match(error.message, new RegExp(victim))
        assert.doesNotMatch(error.message, /TOP SECRET/)
        return true
      },
    )
    assert.equal(returned, undefined, `the scope ran and read ${JSON.stringify(returned)}`)
  }
  const after = shard.stats()
  assert.equal(after.open, before.open, 'no handle was opened or closed')
  assert.equal(after.misses, before.misses, 'no open was counted')
  assert.equal(after.evictions, before.evictions, 'nothing was evicted')
  assert.equal(after.pinned, 0)
  assert.deepEqual(warnings, [], 'maxOpen was not lowered')
  for (const id of GOOD) {
    assert.deepEqual(await shard.withTenant(id, (t) => t.db.selectFrom('documents').select('title').execute()), [
      { title: `${id} doc` },
    ])
  }
  const end = shard.stats()
  assert.equal(end.misses, before.misses, 'the other tenants were still open: all hits')
  assert.equal(end.hits, before.hits + GOOD.length)
}

test('a symbolic link to a valid database outside the data folder: reason symlink, its rows never read', async () => {
  const { shard, file, warnings } = await setup('evil')
  fs.rmSync(file)
  const outside = outsideDatabase()
  fs.symlinkSync(outside, file)
  await assertRefused(shard, warnings, 'evil', ['symlink'])
  // The link and its target are as they were.
  assert.equal(fs.readlinkSync(file), outside)
  const db = new Database(outside, { readonly: true })
  assert.deepEqual(db.prepare('select title from documents').all(), [{ title: SECRET }])
  db.close()
  await shard.close()
})

test("a symbolic link to another tenant's file: reason symlink, that tenant's rows never read", async () => {
  const { shard, dir, file, warnings } = await setup('evil')
  fs.rmSync(file)
  fs.symlinkSync(path.join(dir, 'tenants', 'a.sqlite3'), file)
  await assertRefused(shard, warnings, 'evil', ['symlink'])
  await shard.close()
})

test('an open tenant whose file is swapped for a symbolic link: its handle is dropped and the link refused', async () => {
  const { shard, file, warnings } = await setup('evil')
  await shard.withTenant('evil', (t) => t.db.insertInto('documents').values({ title: 'evil doc' }).execute())
  // evil is open now (and a was evicted: the pool holds three).
  const open = shard.stats().open
  const moved = `${file}.moved`
  fs.renameSync(file, moved)
  const outside = outsideDatabase()
  fs.symlinkSync(outside, file)
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      shard.withTenant('evil', (t) => t.db.selectFrom('documents').select('title').execute()),
      (error: unknown) => {
        assert.ok(error instanceof StorageError, String(error))
        assert.equal(error.reason, 'symlink')
        assert.equal(error.tenantId, 'evil')
        return true
      },
    )
  }
  assert.equal(shard.stats().open, open - 1, "evil's handle (on the moved file) was closed")
  // Even a link to the tenant's own file is refused.
  fs.rmSync(file)
  fs.symlinkSync(moved, file)
  await assert.rejects(
    shard.withTenant('evil', () => 1),
    (error: unknown) => error instanceof StorageError && error.reason === 'symlink',
  )
  assert.deepEqual(warnings, [])
  await shard.close()
})

test('an empty (0-byte) file: reason empty-file, and nothing is written into it', async () => {
  const { shard, dir, file, warnings } = await setup('hollow')
  fs.writeFileSync(file, '')
  const listing = fs.readdirSync(path.join(dir, 'tenants')).sort()
  await assertRefused(shard, warnings, 'hollow', ['empty-file'])
  assert.equal(fs.statSync(file).size, 0, 'SQLite made a database inside the empty file')
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tenants')).sort(), listing, 'no journal or side file was made')
  assert.equal(await shard.tenants.exists('hollow'), true)
  await shard.close()
})

// Cut inside the header (the magic string intact), at the header's end, inside the first
// page, after the first page, and after three of the file's pages.
for (const bytes of [50, 100, 600, 4096, 3 * 4096]) {
  test(`a tenant file cut to its first ${bytes} bytes: reason not-a-database or corrupt`, async () => {
    const { shard, file, warnings } = await setup('cut')
    const whole = fs.readFileSync(file)
    assert.ok(whole.length > 4 * 4096, `the tenant file has ${whole.length} bytes: too few pages to cut`)
    assert.equal(whole.subarray(0, 16).toString('latin1'), 'SQLite format 3\u0000')
    fs.writeFileSync(file, whole.subarray(0, bytes))
    await assertRefused(shard, warnings, 'cut', ['not-a-database', 'corrupt'])
    assert.ok(fs.readFileSync(file).equals(whole.subarray(0, bytes)), 'the file was written to')
    await shard.close()
  })
}

test('a folder where the file should be: reason not-a-file', async () => {
  const { shard, file, warnings } = await setup('folder')
  fs.rmSync(file)
  fs.mkdirSync(file)
  await assertRefused(shard, warnings, 'folder', ['not-a-file'])
  assert.ok(fs.statSync(file).isDirectory())
  assert.deepEqual(fs.readdirSync(file), [], 'nothing was made inside the folder')
  await shard.close()
})

// Root reads any file whatever its mode: as root, the case runs in a child switched to `nobody`.
const NOBODY = 65534
const asRoot = process.getuid?.() === 0

test('a file the process may not read: reason permission or cannot-open, in a child process', {
  timeout: 60_000,
  skip: process.getuid === undefined ? 'needs POSIX users and file modes' : false,
}, async () => {
  const { shard, dir } = await makeShard()
  for (const id of ['ok', 'locked']) {
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values({ title: `${id} doc` })
        .execute(),
    )
  }
  await shard.close()
  const locked = path.join(dir, 'tenants', 'locked.sqlite3')
  // Every folder and file is usable by the child's user; only locked's file is not.
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name)
    fs.chmodSync(full, entry.isDirectory() ? 0o777 : 0o666)
  }
  fs.chmodSync(dir, 0o777)
  fs.chmodSync(locked, 0o000)

  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(new URL('./children/unreadable-tenant-child.ts', import.meta.url)),
      dir,
      'ok',
      'locked',
    ],
    {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
    },
  )
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  assert.equal(code, 0, `child failed:\n${stderr}`)
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!)
  if (asRoot) assert.equal(result.uid, NOBODY, 'the child did not run as nobody')
  assert.deepEqual(result.before, ['ok doc'])
  assert.deepEqual(result.after, ['ok doc'])
  assert.equal(result.attempts.length, 2)
  for (const attempt of result.attempts) {
    assert.equal(attempt.outcome, 'error', JSON.stringify(attempt))
    assert.ok(attempt.isStorageError, JSON.stringify(attempt))
    assert.equal(attempt.code, 'STORAGE_FAILED')
    assert.equal(attempt.tenantId, 'locked')
    assert.ok(['permission', 'cannot-open'].includes(attempt.reason), JSON.stringify(attempt))
    assert.match(attempt.message, /locked/)
  }
  // The child's pool holds one handle: had locked's open taken a slot, ok would have been evicted.
  assert.deepEqual(result.statsAfter, result.statsBefore, 'the pool was not touched')
  assert.equal(result.statsEnd.misses, result.statsBefore.misses, 'ok was still open: a hit')
  assert.deepEqual(result.warnings, [], 'maxOpen was not lowered')
  // The file itself is as it was.
  assert.equal(fs.statSync(locked).mode & 0o777, 0)
})
