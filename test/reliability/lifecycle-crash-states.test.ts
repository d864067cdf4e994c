// The states a process killed mid-way through a lifecycle step leaves, built by
// hand (files as each step leaves them, and the lock of a process that is gone),
// so that every window is covered, however narrow: lifecycle-kill.test.ts kills
// real processes at random and rarely lands in some (e.g. a restore between
// linking the file into place and removing the archive). For each state:
// `doctor()` without --fix reports the stale lock and nothing a person must
// look at; `doctor({ fix: true })` (or the next lifecycle call on the tenant)
// completes or undoes the step; afterwards the tenant is live xor archived,
// intact, and no lock or temporary file is left.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { createShardines } from '@shardines/core'
import Database from 'better-sqlite3'
import { type ApexDB, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { flatRelativePath, hashedRelativePath } from '../helpers/hashed-layout.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'

type Layout = 'flat' | 'hashed'
const LATEST = Object.keys(tenantMigrations).sort().at(-1)

function open(dir: string, layout: Layout = 'flat') {
  return createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { layout }),
    migrations: { tenant: tenantMigrations },
  })
}
type Shard = ReturnType<typeof open>

/** A pid no process has now: one of a child that has exited. */
const DEAD = (() => {
  const { pid } = spawnSync(process.execPath, ['-e', '0'])
  assert.ok(pid !== undefined && pid > 0)
  return pid
})()

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

async function titles(shard: Shard, id: string): Promise<string[]> {
  return shard.withTenant(id, async (t) =>
    (await t.db.selectFrom('documents').select('title').orderBy('id').execute()).map((r) => r.title),
  )
}

/** A folder holding tenant `id` (three documents) and a bystander; returns the folder. */
async function folderWith(id: string, layout: Layout = 'flat'): Promise<string> {
  const dir = tempDir()
  const shard = open(dir, layout)
  for (const tenant of [id, 'bystander']) {
    await shard.tenants.create(tenant)
    await shard.withTenant(tenant, (t) =>
      t.db
        .insertInto('documents')
        .values(['a', 'b', 'c'].map((title) => ({ title: `${tenant} ${title}` })))
        .execute(),
    )
  }
  await shard.close()
  return dir
}

/** Writes the lock a killed process leaves: its operation, and a pid that is gone. */
function staleLock(dir: string, id: string, intent: Record<string, unknown>): string {
  const file = path.join(dir, '.shardines', 'locks', `${id}.lock`)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify({ ...intent, pid: DEAD, started: Date.now() - 1000 }))
  return file
}

/** Archives `id` with the library, then returns the archive's files (to put back by hand). */
async function archivedCopy(dir: string, id: string): Promise<{ gz: Buffer; json: Buffer }> {
  const shard = open(dir)
  await shard.tenants.archive(id)
  await shard.close()
  return {
    gz: fs.readFileSync(path.join(dir, 'archive', `${id}.sqlite3.gz`)),
    json: fs.readFileSync(path.join(dir, 'archive', `${id}.json`)),
  }
}

/** Every file but the apex database's: locks, temporaries, side files would show here. */
function files(dir: string): string[] {
  return snapshotTree(dir).filter((p) => !p.endsWith('/') && !p.startsWith('apex.'))
}

/**
 * `doctor()` without --fix: the stale lock is reported, nothing needs a person
 * (a killed step is always something --fix settles). Then the repair (doctor
 * --fix, or the next lifecycle call), then the invariants.
 */
async function expectSettled(
  dir: string,
  options: {
    layout?: Layout
    repair?: (shard: Shard) => Promise<unknown>
    live: readonly string[]
    archived: readonly string[]
    files: readonly string[]
    contents: Record<string, readonly string[]>
  },
): Promise<void> {
  const shard = open(dir, options.layout)
  try {
    const report = await shard.tenants.doctor()
    assert.ok(
      report.findings.some((f) => f.kind === 'stale-lock' && !f.needsPerson),
      JSON.stringify(report.findings),
    )
    assert.equal(report.needsPerson, 0, `doctor (no fix) on a killed step: ${JSON.stringify(report.findings, null, 1)}`)

    if (options.repair === undefined) {
      const fixed = await shard.tenants.doctor({ fix: true })
      assert.equal(fixed.needsPerson, 0, JSON.stringify(fixed.findings, null, 1))
    } else {
      await options.repair(shard)
    }
    assert.deepEqual(files(dir), [...options.files].sort())
    assert.deepEqual(await collect(shard.tenants.list()), options.live)
    const archived = await collect(shard.tenants.archived())
    assert.deepEqual(
      archived.map((a) => a.id),
      options.archived,
    )
    for (const record of archived) assert.equal(record.version, LATEST)
    for (const id of options.live) assert.deepEqual(await titles(shard, id), options.contents[id])
    for (const id of options.archived) {
      await shard.tenants.restore(id)
      assert.deepEqual(await titles(shard, id), options.contents[id])
    }
    const again = await shard.tenants.doctor()
    assert.deepEqual(again.findings, [])
  } finally {
    await shard.close()
  }
}

const abc = (id: string) => ['a', 'b', 'c'].map((t) => `${id} ${t}`)

test('rename killed between link and unlink (both names on one file): the old name goes', async () => {
  const dir = await folderWith('ra')
  fs.linkSync(path.join(dir, flatRelativePath('ra')), path.join(dir, flatRelativePath('rb')))
  for (const id of ['ra', 'rb']) staleLock(dir, id, { op: 'rename', id: 'ra', to: 'rb' })
  await expectSettled(dir, {
    live: ['bystander', 'rb'],
    archived: [],
    files: [flatRelativePath('bystander'), flatRelativePath('rb')],
    contents: { rb: abc('ra'), bystander: abc('bystander') },
  })
})

test('rename killed between link and unlink, repaired by the next rename of the tenant', async () => {
  const dir = await folderWith('ra')
  fs.linkSync(path.join(dir, flatRelativePath('ra')), path.join(dir, flatRelativePath('rb')))
  for (const id of ['ra', 'rb']) staleLock(dir, id, { op: 'rename', id: 'ra', to: 'rb' })
  await expectSettled(dir, {
    repair: async (shard) => {
      await shard.tenants.rename('rb', 'rc')
      // The rename took rb's lock and completed the killed rename: the old name is gone.
      assert.deepEqual(
        files(dir).filter((f) => f.startsWith('tenants/')),
        [flatRelativePath('bystander'), flatRelativePath('rc')],
      )
      // ra's lock (the killed rename held both) waits for the next holder of ra, or doctor --fix.
      await shard.tenants.doctor({ fix: true })
    },
    live: ['bystander', 'rc'],
    archived: [],
    files: [flatRelativePath('bystander'), flatRelativePath('rc')],
    contents: { rc: abc('ra'), bystander: abc('bystander') },
  })
})

test('archive killed after moving the file out of the live set (staged, gzip half-written): the archive is finished', async () => {
  const dir = await folderWith('arc')
  fs.mkdirSync(path.join(dir, 'archive'))
  fs.renameSync(path.join(dir, flatRelativePath('arc')), path.join(dir, 'archive', 'arc.staged.sqlite3'))
  fs.writeFileSync(path.join(dir, 'archive', `.compressing-arc-${DEAD}-x-y`), Buffer.from([0x1f, 0x8b, 8, 0]))
  staleLock(dir, 'arc', { op: 'archive', id: 'arc' })
  await expectSettled(dir, {
    live: ['bystander'],
    archived: ['arc'],
    files: ['archive/arc.json', 'archive/arc.sqlite3.gz', flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

test('archive killed after the gzip was renamed into place, before the staged file went: the staged file goes', async () => {
  const dir = await folderWith('arc')
  const copy = fs.readFileSync(path.join(dir, flatRelativePath('arc')))
  await archivedCopy(dir, 'arc')
  fs.writeFileSync(path.join(dir, 'archive', 'arc.staged.sqlite3'), copy)
  staleLock(dir, 'arc', { op: 'archive', id: 'arc' })
  await expectSettled(dir, {
    live: ['bystander'],
    archived: ['arc'],
    files: ['archive/arc.json', 'archive/arc.sqlite3.gz', flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

test('archive killed after staging, repaired by the next restore: the tenant comes back whole', async () => {
  const dir = await folderWith('arc')
  fs.mkdirSync(path.join(dir, 'archive'))
  fs.renameSync(path.join(dir, flatRelativePath('arc')), path.join(dir, 'archive', 'arc.staged.sqlite3'))
  staleLock(dir, 'arc', { op: 'archive', id: 'arc' })
  await expectSettled(dir, {
    repair: (shard) => shard.tenants.restore('arc'),
    live: ['arc', 'bystander'],
    archived: [],
    files: [flatRelativePath('arc'), flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

test('restore killed after linking the file into place, before removing the archive: the archive goes', {}, async () => {
  const dir = await folderWith('arc')
  const { gz, json } = await archivedCopy(dir, 'arc')
  // The restore had unpacked the archive aside and linked it into place.
  const shard = open(dir)
  await shard.tenants.restore('arc')
  await shard.close()
  const restoring = path.join(dir, 'tenants', `.restoring-arc-${DEAD}-x-y.sqlite3`)
  fs.linkSync(path.join(dir, flatRelativePath('arc')), restoring)
  fs.writeFileSync(path.join(dir, 'archive', 'arc.sqlite3.gz'), gz)
  fs.writeFileSync(path.join(dir, 'archive', 'arc.json'), json)
  staleLock(dir, 'arc', { op: 'restore', id: 'arc' })
  await expectSettled(dir, {
    live: ['arc', 'bystander'],
    archived: [],
    files: [flatRelativePath('arc'), flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

test('restore killed after linking the file into place, repaired by --fix: the archive goes, nothing is left', async () => {
  // The same state as above, checked without the no-fix report.
  const dir = await folderWith('arc')
  const { gz, json } = await archivedCopy(dir, 'arc')
  const shard = open(dir)
  await shard.tenants.restore('arc')
  fs.linkSync(path.join(dir, flatRelativePath('arc')), path.join(dir, 'tenants', `.restoring-arc-${DEAD}-x-y.sqlite3`))
  fs.writeFileSync(path.join(dir, 'archive', 'arc.sqlite3.gz'), gz)
  fs.writeFileSync(path.join(dir, 'archive', 'arc.json'), json)
  staleLock(dir, 'arc', { op: 'restore', id: 'arc' })
  const fixed = await shard.tenants.doctor({ fix: true })
  assert.equal(fixed.needsPerson, 0, JSON.stringify(fixed.findings, null, 1))
  assert.deepEqual(files(dir), [flatRelativePath('arc'), flatRelativePath('bystander')])
  assert.deepEqual(await titles(shard, 'arc'), abc('arc'))
  assert.deepEqual(await collect(shard.tenants.archived()), [])
  assert.deepEqual((await shard.tenants.doctor()).findings, [])
  await shard.close()
})

test('restore killed while unpacking (a partial temporary file): the tenant stays archived and restores whole', async () => {
  const dir = await folderWith('arc')
  await archivedCopy(dir, 'arc')
  fs.writeFileSync(path.join(dir, 'tenants', `.restoring-arc-${DEAD}-x-y.sqlite3`), 'SQLite format 3\u0000 cut short')
  staleLock(dir, 'arc', { op: 'restore', id: 'arc' })
  await expectSettled(dir, {
    live: ['bystander'],
    archived: ['arc'],
    files: ['archive/arc.json', 'archive/arc.sqlite3.gz', flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

test('restore killed after removing the archive, before its record: the record goes', async () => {
  const dir = await folderWith('arc')
  const { json } = await archivedCopy(dir, 'arc')
  const shard = open(dir)
  await shard.tenants.restore('arc')
  await shard.close()
  fs.writeFileSync(path.join(dir, 'archive', 'arc.json'), json)
  staleLock(dir, 'arc', { op: 'restore', id: 'arc' })
  await expectSettled(dir, {
    live: ['arc', 'bystander'],
    archived: [],
    files: [flatRelativePath('arc'), flatRelativePath('bystander')],
    contents: { arc: abc('arc'), bystander: abc('bystander') },
  })
})

for (const layout of ['flat', 'hashed'] as const) {
  test(`layout move to ${layout} killed between link and unlink: the old path goes (repaired by a ${layout} instance and by the other)`, async () => {
    const other: Layout = layout === 'flat' ? 'hashed' : 'flat'
    const rel = (l: Layout, id: string) => (l === 'flat' ? flatRelativePath(id) : hashedRelativePath(id))
    for (const repairer of [layout, other]) {
      const dir = await folderWith('mover', other)
      const source = path.join(dir, rel(other, 'mover'))
      const target = path.join(dir, rel(layout, 'mover'))
      fs.mkdirSync(path.dirname(target), { recursive: true })
      fs.linkSync(source, target)
      staleLock(dir, 'mover', { op: 'layout', id: 'mover', source, target })
      await expectSettled(dir, {
        layout: repairer,
        live: ['bystander', 'mover'],
        archived: [],
        files: [rel(layout, 'mover'), rel(other, 'bystander')],
        contents: { mover: abc('mover'), bystander: abc('bystander') },
      })
    }
  })
}

test('destroy killed between its side files and its database: the destroy is completed', async () => {
  const dir = await folderWith('doomed')
  staleLock(dir, 'doomed', { op: 'destroy', id: 'doomed' })
  await expectSettled(dir, {
    live: ['bystander'],
    archived: [],
    files: [flatRelativePath('bystander')],
    contents: { bystander: abc('bystander') },
  })
})

test('a recovery killed while it held the breaker, and lock files written aside: all removed, the step completed', async () => {
  const dir = await folderWith('ra')
  fs.linkSync(path.join(dir, flatRelativePath('ra')), path.join(dir, flatRelativePath('rb')))
  const lock = staleLock(dir, 'ra', { op: 'rename', id: 'ra', to: 'rb' })
  staleLock(dir, 'rb', { op: 'rename', id: 'ra', to: 'rb' })
  fs.writeFileSync(`${lock}.break`, JSON.stringify({ op: 'repair', id: 'ra', pid: DEAD, started: Date.now() }))
  fs.writeFileSync(`${lock}.${DEAD}-abcdefgh.tmp`, '{"op":"ren')
  await expectSettled(dir, {
    live: ['bystander', 'rb'],
    archived: [],
    files: [flatRelativePath('bystander'), flatRelativePath('rb')],
    contents: { rb: abc('ra'), bystander: abc('bystander') },
  })
})

test('while a tenant is being archived (not killed), it is always in list() or archived()', {}, async () => {
  const dir = tempDir()
  const shard = open(dir)
  await shard.tenants.create('big')
  await shard.withTenant('big', (t) =>
    t.transaction(async (trx) => {
      for (let i = 0; i < 40; i++) {
        await trx.db
          .insertInto('documents')
          .values(
            Array.from({ length: 200 }, (_, j) => ({ title: `${i}-${j} ${Math.random().toString(36).repeat(6)}` })),
          )
          .execute()
      }
    }),
  )
  let done = false
  const archiving = shard.tenants.archive('big').finally(() => {
    done = true
  })
  const missing: number[] = []
  for (let poll = 0; !done; poll++) {
    const live = await collect(shard.tenants.list())
    const archived = (await collect(shard.tenants.archived())).map((a) => a.id)
    if (!live.includes('big') && !archived.includes('big')) missing.push(poll)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await archiving
  assert.deepEqual(missing, [], `the tenant was in neither list() nor archived() at ${missing.length} polls`)
  await shard.close()
})

/**
 * Side files a WAL tenant's private connection leaves when its process is killed
 * while it holds the file quiet: an empty -wal (checkpointed with TRUNCATE
 * before the move) and the -shm, both under the name the file was moved from.
 * Copied from a real connection to another WAL database.
 */
function walSidesOfAnotherDatabase(dir: string): { wal: Buffer; shm: Buffer } {
  const file = path.join(dir, 'other-wal.sqlite3')
  const db = new Database(file)
  try {
    db.pragma('journal_mode = wal')
    db.exec('create table t (x); insert into t values (1), (2), (3)')
    db.pragma('wal_checkpoint(TRUNCATE)')
    return { wal: fs.readFileSync(`${file}-wal`), shm: fs.readFileSync(`${file}-shm`) }
  } finally {
    db.close()
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true })
  }
}

function toWal(dir: string, rel: string): void {
  const db = new Database(path.join(dir, rel), { fileMustExist: true })
  db.pragma('journal_mode = wal')
  db.close()
}

const walKills = [
  {
    op: 'rename',
    /** The file moved to rb (linked, the old name unlinked); ra's side files left. */
    stage: (dir: string) => {
      fs.linkSync(path.join(dir, flatRelativePath('ra')), path.join(dir, flatRelativePath('rb')))
      fs.unlinkSync(path.join(dir, flatRelativePath('ra')))
      for (const id of ['ra', 'rb']) staleLock(dir, id, { op: 'rename', id: 'ra', to: 'rb' })
    },
    left: [flatRelativePath('rb'), flatRelativePath('bystander')],
    live: ['bystander', 'rb'],
  },
  {
    op: 'archive',
    /** The file renamed into archive/ (staged); its side files left in tenants/. */
    stage: (dir: string) => {
      fs.mkdirSync(path.join(dir, 'archive'), { recursive: true })
      fs.renameSync(path.join(dir, flatRelativePath('ra')), path.join(dir, 'archive', 'ra.staged.sqlite3'))
      staleLock(dir, 'ra', { op: 'archive', id: 'ra' })
    },
    left: ['archive/ra.json', 'archive/ra.sqlite3.gz', flatRelativePath('bystander')],
    live: ['bystander'],
  },
  {
    op: 'layout',
    /** The file linked into the hashed layout, the flat name unlinked; the flat side files left. */
    stage: (dir: string) => {
      const source = path.join(dir, flatRelativePath('ra'))
      const target = path.join(dir, hashedRelativePath('ra'))
      fs.mkdirSync(path.dirname(target), { recursive: true })
      fs.linkSync(source, target)
      fs.unlinkSync(source)
      staleLock(dir, 'ra', { op: 'layout', id: 'ra', source, target })
    },
    left: [hashedRelativePath('ra'), flatRelativePath('bystander')],
    live: ['bystander', 'ra'],
  },
] as const

for (const kill of walKills) {
  test(`${kill.op} of a WAL tenant killed after the move, its private connection open: doctor --fix removes the -wal and -shm left under the old name`, {}, async () => {
    const dir = await folderWith('ra')
    toWal(dir, flatRelativePath('ra'))
    const { wal, shm } = walSidesOfAnotherDatabase(dir)
    kill.stage(dir)
    fs.writeFileSync(path.join(dir, `${flatRelativePath('ra')}-wal`), wal)
    fs.writeFileSync(path.join(dir, `${flatRelativePath('ra')}-shm`), shm)
    const shard = open(dir)
    try {
      const fixed = await shard.tenants.doctor({ fix: true })
      assert.equal(fixed.needsPerson, 0, JSON.stringify(fixed.findings, null, 1))
      assert.deepEqual(await collect(shard.tenants.list()), kill.live)
    } finally {
      // Closed first: an open WAL tenant has its own -wal and -shm.
      await shard.close()
    }
    assert.deepEqual(files(dir), [...kill.left].sort())
  })
}

test('an empty -wal and a -shm of another database left at a path: a tenant created there later is whole and keeps its writes', async () => {
  const dir = await folderWith('bystander-2')
  const { wal, shm } = walSidesOfAnotherDatabase(dir)
  assert.equal(wal.length, 0, 'checkpointed with TRUNCATE')
  fs.writeFileSync(path.join(dir, `${flatRelativePath('ra')}-wal`), wal)
  fs.writeFileSync(path.join(dir, `${flatRelativePath('ra')}-shm`), shm)
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { journalMode: 'wal' }),
    migrations: { tenant: tenantMigrations },
  })
  await shard.tenants.create('ra')
  assert.deepEqual(await titles(shard, 'ra'), [])
  await shard.withTenant('ra', (t) => t.db.insertInto('documents').values({ title: 'new' }).execute())
  await shard.close()
  const again = open(dir)
  assert.deepEqual(await titles(again, 'ra'), ['new'])
  const report = await again.tenants.doctor({ check: 'full' })
  assert.deepEqual(
    report.findings.filter((f) => f.kind === 'damaged'),
    [],
  )
  await again.close()
})
