// Processes killed with SIGKILL in the middle of rename, archive, restore and a
// layout migration: after `doctor({ fix: true })` (or the next lifecycle
// operation on the tenant) every tenant is live or archived exactly once, opens
// with its rows intact, and no lock or temporary file is left.
//
// A child (children/lifecycle-kill-child.ts) repeats the operation; the test
// waits for a random one of its first "begin <op>" lines, waits a random part of
// that operation's typical duration, and kills it. Each kill uses a fresh child,
// spawned (and warmed up) while the previous kill is being repaired and checked.
// About one kill in four is not repaired by the test: the next child's own
// operation must complete or undo it when it takes the tenant's lock.
// SHARDINES_SEED=n replays one plan of delays.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { type TestContext, test } from 'node:test'
import { type ArchivedTenant, createShardines, type DoctorReport } from '@shardines/core'
import { sql } from 'kysely'
import { seededRandom, sleep } from '../helpers/async-helpers.js'
import { spawnTsChild, type TsChild } from '../helpers/child-process.js'
import { type ApexDB, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { hashedFolder } from '../helpers/hashed-layout.js'
import { tempDir } from '../helpers/temp-dir.js'

const CHILD = new URL('./children/lifecycle-kill-child.ts', import.meta.url)
const SEED = Number(process.env.SHARDINES_SEED ?? Math.floor(Math.random() * 2 ** 31))
/** The last tenant migration: what an archive records as the tenant's version. */
const LATEST = Object.keys(tenantMigrations).sort().at(-1)
/** Kills per operation, at least; and how many must land inside the targeted operation and leave its lock behind. */
const MIN_KILLS = 20
const MIN_MID_OP = 15
const MIN_STALE_LOCKS = 8
/** Kills per operation at most: the adaptive loop gives up (and the test fails) after this. */
const MAX_KILLS = 45
const VALID_ID = /^[a-z0-9][a-z0-9_-]*$/

type Layout = 'flat' | 'hashed'
type Shard = ReturnType<typeof open>

function open(dir: string, layout: Layout = 'flat') {
  return createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { layout }),
    migrations: { tenant: tenantMigrations },
  })
}

/** One logical tenant: the ids it may carry (two for the renamed one) and its content's fingerprint. */
interface Group {
  readonly names: readonly string[]
  fingerprint: string
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}

/** Creates tenant `id` holding `rows` documents of ~120 bytes (hard to compress) and a few comments. */
async function seedTenant(shard: Shard, id: string, rows: number, random: () => number): Promise<void> {
  await shard.tenants.create(id)
  const text = () => Array.from({ length: 12 }, () => Math.floor(random() * 2 ** 32).toString(36)).join(' ')
  await shard.withTenant(id, (t) =>
    t.transaction(async (trx) => {
      for (let i = 0; i < rows; i += 400) {
        const batch = Array.from({ length: Math.min(400, rows - i) }, (_, j) => ({
          title: `${id} ${i + j} ${text()}`,
          owner_id: i + j,
          status: random() < 0.5 ? 'open' : 'closed',
        }))
        await trx.db.insertInto('documents').values(batch).execute()
      }
      for (let d = 1; d <= Math.min(rows, 20); d++) {
        await trx.db
          .insertInto('comments')
          .values({ document_id: d, body: `${id} comment ${d}` })
          .execute()
      }
    }),
  )
}

/** `integrity_check` (asserted ok), and a fingerprint of every row. */
async function fingerprint(shard: Shard, id: string): Promise<string> {
  return shard.withTenant(id, async (t) => {
    const check = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(t.db)
    assert.deepEqual(check.rows, [{ integrity_check: 'ok' }], `tenant ${id}: integrity_check`)
    const documents = await t.db.selectFrom('documents').selectAll().orderBy('id').execute()
    const comments = await t.db.selectFrom('comments').selectAll().orderBy('id').execute()
    const hash = createHash('sha256').update(JSON.stringify(documents)).update(JSON.stringify(comments))
    return `${documents.length} documents, ${comments.length} comments, sha256 ${hash.digest('hex').slice(0, 16)}`
  })
}

/** Every file under `root` (relative paths; folders end in `/`). */
function walk(root: string, rel = ''): string[] {
  let entries: fs.Dirent[]
  try {
    entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const out: string[] = []
  for (const entry of entries) {
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`
    if (entry.isDirectory()) out.push(`${child}/`, ...walk(root, child))
    else out.push(child)
  }
  return out.sort()
}

/**
 * What is wrong with the data folder for a settled state: anything under
 * `tenants/` but tenant files where one of the layouts puts them (one place per
 * id), anything in `archive/` but `<id>.sqlite3.gz` with its `<id>.json`, any
 * lock or lock leftover, any temporary, partial, aside or side file.
 */
function strayFiles(dir: string): string[] {
  const problems: string[] = []
  const places = new Map<string, string[]>()
  for (const rel of walk(dir)) {
    const name = path.basename(rel)
    if (rel.endsWith('/')) {
      const parts = rel.slice(0, -1).split('/')
      if (parts[0] === 'tenants' && parts.length > 1 && (parts.length > 3 || !/^[0-9a-f]{2}$/.test(name)))
        problems.push(`${rel}: not a layout folder`)
      continue
    }
    if (name.includes('.partial-')) problems.push(`${rel}: a partial file`)
    if (rel.startsWith('.shardines/')) {
      problems.push(`${rel}: a lock, breaker or record left behind`)
      continue
    }
    if (rel.startsWith('tenants/')) {
      const parts = rel.split('/')
      const id = name.endsWith('.sqlite3') ? name.slice(0, -'.sqlite3'.length) : ''
      if (name.startsWith('.') || !VALID_ID.test(id)) {
        problems.push(`${rel}: not a tenant file (a temporary or side file?)`)
        continue
      }
      if (parts.length === 4 && `${parts[1]}/${parts[2]}` !== hashedFolder(id))
        problems.push(`${rel}: in the wrong hashed folder (expected ${hashedFolder(id)})`)
      else if (parts.length !== 2 && parts.length !== 4) problems.push(`${rel}: at a depth no layout uses`)
      places.set(id, [...(places.get(id) ?? []), rel])
      continue
    }
    if (rel.startsWith('archive/')) {
      const gz = /^([a-z0-9][a-z0-9_-]*)\.sqlite3\.gz$/.exec(name)
      const json = /^([a-z0-9][a-z0-9_-]*)\.json$/.exec(name)
      if (rel.split('/').length !== 2 || (gz === null && json === null)) problems.push(`${rel}: not an archive file`)
      else if (gz !== null && !fs.existsSync(path.join(dir, 'archive', `${gz[1]}.json`)))
        problems.push(`${rel}: an archive without its record`)
      else if (json !== null && !fs.existsSync(path.join(dir, 'archive', `${json[1]}.sqlite3.gz`)))
        problems.push(`${rel}: a record without its archive`)
      continue
    }
    if (!/^apex\.sqlite3(-wal|-shm)?$/.test(rel)) problems.push(`${rel}: unexpected`)
  }
  for (const [id, files] of places) if (files.length > 1) problems.push(`tenant ${id} has ${files.join(' and ')}`)
  return problems
}

/** What a kill left, looked at before anything repairs it. */
interface LeftBehind {
  /** Ops recorded by lock files (`<id>.lock`). */
  readonly locks: string[]
  readonly breakers: number
  readonly staged: number
  /** Dot files, asides (`.tmp`) and side files in tenants/ and archive/. */
  readonly temporaries: number
  /** A tenant file reachable under two names (rename or layout move between link and unlink). */
  readonly twoNames: number
  /** A tenant both live and in the archive (restore between link and removing the archive). */
  readonly liveAndArchived: number
}

function inspect(dir: string): LeftBehind {
  const locksDir = path.join(dir, '.shardines', 'locks')
  const lockNames = fs.existsSync(locksDir) ? fs.readdirSync(locksDir) : []
  const locks = lockNames
    .filter((name) => name.endsWith('.lock'))
    .map((name) => {
      try {
        return String(JSON.parse(fs.readFileSync(path.join(locksDir, name), 'utf8')).op)
      } catch {
        return 'unreadable'
      }
    })
  const files = walk(dir).filter((rel) => !rel.endsWith('/'))
  const tenantFiles = files.filter(
    (rel) => rel.startsWith('tenants/') && /^[a-z0-9].*\.sqlite3$/.test(path.basename(rel)),
  )
  const inodes = new Map<number, number>()
  for (const rel of tenantFiles) {
    const ino = fs.statSync(path.join(dir, rel), { throwIfNoEntry: false })?.ino
    if (ino !== undefined) inodes.set(ino, (inodes.get(ino) ?? 0) + 1)
  }
  const liveIds = new Set(tenantFiles.map((rel) => path.basename(rel, '.sqlite3')))
  const archivedIds = files
    .filter((rel) => rel.startsWith('archive/') && rel.endsWith('.sqlite3.gz'))
    .map((rel) => path.basename(rel, '.sqlite3.gz'))
  return {
    locks,
    breakers: lockNames.filter((name) => name.endsWith('.break')).length,
    staged: files.filter((rel) => rel.endsWith('.staged.sqlite3')).length,
    temporaries: files.filter(
      (rel) =>
        (rel.startsWith('tenants/') || rel.startsWith('archive/')) &&
        (path.basename(rel).startsWith('.') || rel.endsWith('.tmp') || /-(wal|shm|journal)$/.test(rel)),
    ).length,
    twoNames: [...inodes.values()].filter((n) => n > 1).length,
    liveAndArchived: archivedIds.filter((id) => liveIds.has(id)).length,
  }
}

function describeReport(report: DoctorReport): string {
  return JSON.stringify(report.findings, null, 1)
}

interface Stats {
  kills: number
  /** Kills whose last line was a "begin" of the targeted operation: it was in flight. */
  midOp: number
  /** Kills after which a lock of the killed process was left (the recovery path runs). */
  staleLocks: number
  staged: number
  temporaries: number
  twoNames: number
  liveAndArchived: number
  breakers: number
  /** Kills left for the next child's own operation to repair (no doctor in between). */
  repairedByNextOp: number
  /** Operations a child reported failed (only allowed as the first one after an unrepaired kill). */
  childErrors: string[]
  /** Median duration of the targeted operation in the children, ms. */
  medianOpMs: number
}

interface KillLoop {
  readonly dir: string
  readonly childArgs: readonly string[]
  /** The operation whose "begin" lines the kills are timed from (a prefix: `layout` is both directions). */
  readonly target: string
  /** A first guess at its duration, ms (replaced by what the children report). */
  readonly guessMs: number
  readonly groups: readonly Group[]
  /** Error codes a child may report for its first operation after an unrepaired kill. */
  readonly allowedAfterUnrepaired: readonly string[]
  /** The layout of the instance that repairs and checks (the layout run alternates). */
  readonly checkLayout: (random: () => number) => Layout
  /** After the checks (the tenant restored and verified): e.g. archive it again so the next child starts from there. */
  readonly afterCheck?: (shard: Shard, random: () => number) => Promise<void>
}

/**
 * Repairs with `doctor({ fix: true })`, then checks every invariant: no stray
 * file; each logical tenant live or archived exactly once (no id twice); live
 * ones pass `integrity_check` with their rows intact; archived ones record the
 * latest version and restore intact; a second `doctor()` finds nothing.
 */
async function repairAndCheck(loop: KillLoop, random: () => number, label: string): Promise<void> {
  const shard = open(loop.dir, loop.checkLayout(random))
  try {
    const fixed = await shard.tenants.doctor({ fix: true })
    assert.equal(fixed.needsPerson, 0, `${label}: doctor --fix left something for a person: ${describeReport(fixed)}`)
    assert.deepEqual(strayFiles(loop.dir), [], `${label}: files left after doctor --fix`)

    const live = await collect(shard.tenants.list())
    const archived: ArchivedTenant[] = await collect(shard.tenants.archived())
    const archivedIds = archived.map((a) => a.id)
    assert.deepEqual(live, [...new Set(live)].sort(), `${label}: list() is sorted, without duplicates`)
    assert.deepEqual(archivedIds, [...new Set(archivedIds)].sort(), `${label}: archived() is sorted, no duplicates`)
    const everywhere = [...live, ...archivedIds]
    const known = new Set(loop.groups.flatMap((g) => g.names))
    for (const id of everywhere) assert.ok(known.has(id), `${label}: unexpected tenant ${id}`)
    for (const group of loop.groups) {
      const present = everywhere.filter((id) => group.names.includes(id))
      assert.equal(
        present.length,
        1,
        `${label}: ${group.names.join('/')} must be live xor archived exactly once; live ${JSON.stringify(live)}, archived ${JSON.stringify(archivedIds)}`,
      )
    }
    const groupOf = (id: string) => loop.groups.find((g) => g.names.includes(id)) as Group
    for (const id of live) assert.equal(await fingerprint(shard, id), groupOf(id).fingerprint, `${label}: ${id} rows`)
    for (const record of archived) {
      assert.equal(record.version, LATEST, `${label}: archived ${record.id}'s recorded version`)
      await shard.tenants.restore(record.id)
      assert.equal(
        await fingerprint(shard, record.id),
        groupOf(record.id).fingerprint,
        `${label}: restored ${record.id}`,
      )
    }

    const again = await shard.tenants.doctor()
    assert.equal(again.needsPerson, 0, `${label}: second doctor: ${describeReport(again)}`)
    assert.deepEqual(
      again.findings.filter((f) => f.kind === 'leftover' || f.kind === 'stale-lock'),
      [],
      `${label}: second doctor found leftovers`,
    )
    assert.deepEqual(again.findings, [], `${label}: second doctor`)
    await loop.afterCheck?.(shard, random)
    assert.deepEqual(strayFiles(loop.dir), [], `${label}: files left after the checks`)
  } finally {
    await shard.close()
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/**
 * Kills children at random points of `loop.target` until at least MIN_KILLS
 * kills, MIN_MID_OP of them inside the operation and MIN_STALE_LOCKS that left
 * its lock behind (at most MAX_KILLS), repairing and checking after each.
 */
async function runKillLoop(t: TestContext, loop: KillLoop, seed: number): Promise<Stats> {
  const random = seededRandom(seed)
  const stats: Stats = {
    kills: 0,
    midOp: 0,
    staleLocks: 0,
    staged: 0,
    temporaries: 0,
    twoNames: 0,
    liveAndArchived: 0,
    breakers: 0,
    repairedByNextOp: 0,
    childErrors: [],
    medianOpMs: loop.guessMs,
  }
  const durations: number[] = []
  const spawn = () => spawnTsChild(CHILD, [loop.dir, ...loop.childArgs])
  let next: TsChild = spawn()
  let unrepaired = false
  try {
    while (
      stats.kills < MAX_KILLS &&
      (stats.kills < MIN_KILLS || stats.midOp < MIN_MID_OP || stats.staleLocks < MIN_STALE_LOCKS)
    ) {
      const child = next
      const label = `seed ${seed}, kill ${stats.kills + 1}`
      await child.waitForLine((line) => line === 'ready')
      const startedUnrepaired = unrepaired
      const k = 1 + Math.floor(random() * 3)
      const delay = random() * stats.medianOpMs * 1.2
      child.send('go')
      await child.waitForLine(() => child.lines.filter((l) => l.startsWith(`begin ${loop.target}`)).length >= k, 20_000)
      if (delay >= 1) await sleep(delay)
      else if (random() < 0.5) await new Promise((resolve) => setImmediate(resolve))
      child.process.kill('SIGKILL')
      const { signal } = await child.exited
      assert.equal(signal, 'SIGKILL', `${label}: the child ended on its own:\n${child.stderr()}`)
      // Warm the next child up while this kill is looked at and repaired.
      next = spawn()

      stats.kills++
      const ops = child.lines.filter((l) => l.startsWith('begin ') || l.startsWith('done ') || l.startsWith('error '))
      if (ops.at(-1)?.startsWith(`begin ${loop.target}`)) stats.midOp++
      for (const line of ops) {
        const done = new RegExp(`^done ${loop.target}\\S* ([\\d.]+)$`).exec(line)
        if (done !== null) durations.push(Number(done[1]))
      }
      if (durations.length > 0) stats.medianOpMs = median(durations)
      const errors = ops.filter((l) => l.startsWith('error '))
      stats.childErrors.push(...errors)
      if (startedUnrepaired) {
        // Only its first operation may find the previous kill's work completed under it.
        const firstResult = ops.find((l) => !l.startsWith('begin '))
        for (const error of errors) {
          assert.equal(error, firstResult, `${label}: a later operation failed: ${error}`)
          assert.ok(
            loop.allowedAfterUnrepaired.includes(error.split(' ')[2] as string),
            `${label}: unexpected failure after an unrepaired kill: ${error}`,
          )
        }
      } else {
        assert.deepEqual(errors, [], `${label}: an operation failed in the child`)
      }

      const left = inspect(loop.dir)
      if (left.locks.length > 0) stats.staleLocks++
      if (left.staged > 0) stats.staged++
      if (left.temporaries > 0) stats.temporaries++
      if (left.twoNames > 0) stats.twoNames++
      if (left.liveAndArchived > 0) stats.liveAndArchived++
      if (left.breakers > 0) stats.breakers++

      // About one kill in four is left for the next child's own operation to repair.
      unrepaired = random() < 0.25
      if (unrepaired) {
        stats.repairedByNextOp++
        continue
      }
      await repairAndCheck(loop, random, label)
    }
    if (unrepaired) await repairAndCheck(loop, random, `seed ${seed}, after the last kill`)
  } finally {
    next.process.kill('SIGKILL')
    await next.exited
  }
  t.diagnostic(`${loop.target}: ${JSON.stringify(stats)}`)
  assert.ok(stats.kills >= MIN_KILLS)
  assert.ok(
    stats.midOp >= MIN_MID_OP && stats.staleLocks >= MIN_STALE_LOCKS,
    `after ${stats.kills} kills too few landed inside ${loop.target} (${stats.midOp}) or left its lock (${stats.staleLocks}): the test proves little (seed ${seed})`,
  )
  return stats
}

const flatChecks = () => 'flat' as const

test('rename: SIGKILL at random points, then doctor --fix (or the next rename): one id, rows intact, nothing left', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir()
  const random = seededRandom(SEED)
  const shard = open(dir)
  await seedTenant(shard, 'ra', 3000, random)
  await seedTenant(shard, 'by1', 50, random)
  const groups: Group[] = [
    { names: ['ra', 'rb'], fingerprint: await fingerprint(shard, 'ra') },
    { names: ['by1'], fingerprint: await fingerprint(shard, 'by1') },
  ]
  await shard.close()
  await runKillLoop(
    t,
    {
      dir,
      childArgs: ['rename', 'ra', 'rb'],
      target: 'rename',
      guessMs: 2,
      groups,
      // A rename killed between link and unlink leaves both names; the next rename's lock
      // completes it, and that rename then finds its source gone.
      allowedAfterUnrepaired: ['TENANT_NOT_FOUND'],
      checkLayout: flatChecks,
    },
    SEED + 1,
  )
})

/** Archive and restore alternate in the child; `target` says which one the kills are timed in. */
for (const target of ['archive', 'restore'] as const) {
  test(`${target}: SIGKILL at random points, then doctor --fix (or the next operation): live xor archived, restores intact, nothing left`, {
    timeout: 120_000,
  }, async (t) => {
    const dir = tempDir()
    const random = seededRandom(SEED + 10)
    const shard = open(dir)
    // ~1 MB of hard-to-compress rows: compressing and decompressing take tens of milliseconds.
    await seedTenant(shard, 'arc', 8000, random)
    await seedTenant(shard, 'by1', 50, random)
    const groups: Group[] = [
      { names: ['arc'], fingerprint: await fingerprint(shard, 'arc') },
      { names: ['by1'], fingerprint: await fingerprint(shard, 'by1') },
    ]
    await shard.close()
    await runKillLoop(
      t,
      {
        dir,
        childArgs: ['archive', 'arc'],
        target,
        guessMs: target === 'archive' ? 30 : 15,
        groups,
        allowedAfterUnrepaired: [],
        checkLayout: flatChecks,
        // The checks restored it; half the time the next child starts from an archive.
        afterCheck: async (s, r) => {
          if (r() < 0.5) await s.tenants.archive('arc')
        },
      },
      SEED + (target === 'archive' ? 2 : 3),
    )
  })
}

test('layout migrate: SIGKILL at random points of flat→hashed→flat passes over 30 tenants: every tenant once, intact', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir()
  const random = seededRandom(SEED + 20)
  const shard = open(dir)
  const ids = Array.from({ length: 30 }, (_, i) => `lay-${String(i).padStart(2, '0')}`)
  const groups: Group[] = []
  for (const id of ids) {
    await seedTenant(shard, id, 40, random)
    groups.push({ names: [id], fingerprint: await fingerprint(shard, id) })
  }
  await shard.close()
  await runKillLoop(
    t,
    {
      dir,
      childArgs: ['layout'],
      target: 'layout',
      guessMs: 60,
      groups,
      allowedAfterUnrepaired: [],
      // Either layout's instance repairs: each must settle a half-done move in the other direction.
      checkLayout: (r) => (r() < 0.5 ? 'flat' : 'hashed'),
    },
    SEED + 4,
  )
  // Finally every file can be moved into each layout, and the tenants open from there.
  for (const layout of ['hashed', 'flat'] as const) {
    const s = open(dir, layout)
    const report = await s.tenants.migrateLayout()
    assert.deepEqual(report.failed, [])
    assert.equal(report.moved + report.inPlace, ids.length)
    for (const group of groups) {
      const id = group.names[0] as string
      const rel = layout === 'flat' ? `tenants/${id}.sqlite3` : `tenants/${hashedFolder(id)}/${id}.sqlite3`
      assert.ok(fs.existsSync(path.join(dir, rel)), `${id} is at ${rel}`)
      assert.equal(await fingerprint(s, id), group.fingerprint)
    }
    await s.close()
    assert.deepEqual(strayFiles(dir), [])
  }
})
