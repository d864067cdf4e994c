// Processes killed with SIGKILL in the middle of rename, archive, restore and a
// layout migration: after `doctor({ fix: true })` (or the next lifecycle
// operation on the tenant) every tenant is live or archived exactly once, opens
// with its rows intact, and no lock or temporary file is left.
//
// A child (children/lifecycle-kill-child.ts) repeats one operation: rename
// a→b→a…, archive/restore alternately, or layout migrate of 30 tenants
// flat→hashed→flat… Each kill is timed from a random one of the child's first
// "begin <op>" lines plus a random part of that operation's typical duration.
// Each kill uses a fresh child, compiled once and run by plain node (fast to
// start; see helpers/compiled-child.ts), warmed up while the previous kill is
// repaired and checked. About one kill in four is not repaired by the test:
// the next child's own operation must complete or undo it when it takes the
// tenant's lock. Between repairs the tenants switch between WAL and the
// rollback journal (a moved WAL file has a -wal and -shm beside it). The kills
// go on until at least MIN_MID_OP landed while the operation was in flight and
// MIN_STALE_LOCKS left its lock behind (the recovery path); the counts are
// reported as a diagnostic.
// SHARDINES_SEED=n replays one plan of delays.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { type TestContext, test } from 'node:test'
import { type ArchivedTenant, createShardines, type DoctorReport } from '@shardines/core'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { seededRandom, sleep } from '../helpers/async-helpers.js'
import type { TsChild } from '../helpers/child-process.js'
import { compileChild, spawnCompiledChild } from '../helpers/compiled-child.js'
import { type ApexDB, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { hashedFolder } from '../helpers/hashed-layout.js'
import { tempDir } from '../helpers/temp-dir.js'

const CHILD = new URL('./children/lifecycle-kill-child.ts', import.meta.url)
const SEED = Number(process.env.SHARDINES_SEED ?? Math.floor(Math.random() * 2 ** 31))
/** The last tenant migration: what an archive records as the tenant's version. */
const LATEST = Object.keys(tenantMigrations).sort().at(-1)
/** Kills per operation at least; and how many must land while it is in flight and leave its lock behind. */
const MIN_KILLS = 20
const MIN_MID_OP = 20
const MIN_STALE_LOCKS = 10
/** Kills per operation at most: the adaptive loop gives up (and the test fails) after this many. */
const MAX_KILLS = 45
const VALID_ID = /^[a-z0-9][a-z0-9_-]*$/
/** SHARDINES_JOURNAL_MODE=delete|wal: every kill in that journal mode (by default they alternate). */
const FORCED_JOURNAL = process.env.SHARDINES_JOURNAL_MODE as JournalMode | undefined

type Layout = 'flat' | 'hashed'
type JournalMode = 'delete' | 'wal'
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

/** A WAL tenant's -wal or -shm, which SQLite removes when the last connection closes. */
const WAL_SIDE = /^[a-z0-9][a-z0-9_-]*\.sqlite3-(wal|shm)$/

/**
 * What is wrong with the data folder for a settled state (no process has it
 * open): anything under `tenants/` but tenant files where one of the layouts
 * puts them (one place per id), anything in `archive/` but `<id>.sqlite3.gz`
 * with its `<id>.json`, any lock or lock leftover, any temporary, partial,
 * aside or side file. Except: an empty -wal and a -shm are put in `walSides`
 * when given: a process killed while its private connection on a WAL tenant
 * was open leaves them beside the name it moved the file from, and recovery
 * does not remove them (lifecycle-crash-states.test.ts pins that as a todo).
 * A -wal holding frames is always a problem: it could be replayed into
 * another database later put at that path.
 */
function strayFiles(dir: string, walSides?: string[]): string[] {
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
      if (walSides !== undefined && WAL_SIDE.test(name)) {
        if (name.endsWith('-shm') || fs.statSync(path.join(dir, rel)).size === 0) {
          walSides.push(rel)
          continue
        }
      }
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

/** One operation's kill loop: a data folder, the child's arguments, and what the folder must hold. */
interface KillLoop {
  readonly dir: string
  readonly childArgs: readonly string[]
  /** The operation whose "begin" lines the kills are timed from (a prefix: `layout` is both directions). */
  readonly target: string
  /** A first guess at its duration, ms (replaced by what the children report). */
  readonly guessMs: number
  readonly groups: readonly Group[]
  /** Error codes a child may report for its first operation after a kill the test left unrepaired. */
  readonly allowedAfterUnrepaired: readonly string[]
  /** The layout of the instance that repairs and checks. */
  readonly checkLayout: (random: () => number) => Layout
  /** After the checks (which restore archived tenants): e.g. archive again so the next child starts from there. */
  readonly afterCheck?: (shard: Shard, random: () => number) => Promise<void>
}

/**
 * Repairs with `doctor({ fix: true })`, then checks every invariant: no stray
 * file; each logical tenant live or archived exactly once (no id twice); live
 * ones pass `integrity_check` with their rows intact; archived ones record the
 * latest version and restore intact; a second `doctor()` finds nothing.
 */
async function repairAndCheck(loop: KillLoop, random: () => number, label: string, stats: Stats): Promise<void> {
  const layout = loop.checkLayout(random)
  const repairer = open(loop.dir, layout)
  try {
    const fixed = await repairer.tenants.doctor({ fix: true })
    assert.equal(fixed.needsPerson, 0, `${label}: doctor --fix left something for a person: ${describeReport(fixed)}`)
  } finally {
    // Closed before the folder is looked at: an open WAL tenant has its -wal and -shm.
    await repairer.close()
  }
  const walSides: string[] = []
  assert.deepEqual(strayFiles(loop.dir, walSides), [], `${label}: files left after doctor --fix`)
  // Empty -wal/-shm left under a moved file's old name are leftovers too: doctor --fix removes them.
  assert.deepEqual(walSides, [], `${label}: WAL side files left under an old name after doctor --fix`)
  if (walSides.length > 0) stats.walSidesLeft++
  const shard = open(loop.dir, layout)
  try {
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
        `${label}: ${group.names.join('/')} must be live xor archived, once; live ${JSON.stringify(live)}, archived ${JSON.stringify(archivedIds)}`,
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
  } finally {
    await shard.close()
  }
  assert.deepEqual(strayFiles(loop.dir, []), [], `${label}: files left after the checks`)
}

/** Puts every live tenant of `dir` in `mode` (no process has the folder open). */
function setJournalMode(dir: string, mode: JournalMode): void {
  for (const rel of walk(dir)) {
    if (!rel.startsWith('tenants/') || !/^[a-z0-9][a-z0-9_-]*\.sqlite3$/.test(path.basename(rel))) continue
    const db = new Database(path.join(dir, rel), { fileMustExist: true })
    try {
      assert.equal(db.pragma(`journal_mode = ${mode}`, { simple: true }), mode)
    } finally {
      db.close()
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

interface Stats {
  kills: number
  /** Kills whose last line was a "begin" of the targeted operation: it was in flight. */
  midOp: number
  /** Kills that left a lock of the killed process behind (what the next lock holder recovers). */
  staleLocks: number
  /** Kills that left a staged archive, temporaries, a file under two names, a tenant both live and archived, a lock breaker. */
  staged: number
  temporaries: number
  twoNames: number
  liveAndArchived: number
  breakers: number
  /** Kills left for the next child's own operation to repair (no doctor in between). */
  repairedByNextOp: number
  /** Operations a child reported failed (allowed only as the first one after an unrepaired kill). */
  childErrors: string[]
  /** Median duration of the targeted operation in the children, ms. */
  medianOpMs: number
  /** Kills while the tenants were in WAL mode (the others: rollback journal). */
  walKills: number
  /** Repairs after which an empty -wal or a -shm was left beside a tenant's old name (see strayFiles). */
  walSidesLeft: number
}

/** Compiled at load (its temporary folder lives as long as this file's tests). */
const COMPILED = compileChild(CHILD)
const child = (args: readonly string[]): TsChild => spawnCompiledChild(COMPILED, args)

/**
 * Kills children at random points of `loop.target` until at least MIN_KILLS
 * kills, MIN_MID_OP of them while it was in flight and MIN_STALE_LOCKS that left
 * its lock behind (at most MAX_KILLS), repairing and checking after each.
 */
async function runKillLoop(t: TestContext, loop: KillLoop, seed: number): Promise<void> {
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
    walKills: 0,
    walSidesLeft: 0,
  }
  let journalMode = 'delete' as JournalMode
  // Alternately WAL and rollback journal between repairs (a kill left unrepaired keeps the mode).
  const nextJournalMode = () => {
    journalMode = FORCED_JOURNAL ?? (journalMode === 'wal' ? 'delete' : 'wal')
    setJournalMode(loop.dir, journalMode)
  }
  nextJournalMode()
  const durations: number[] = []
  const spawn = () => child([loop.dir, ...loop.childArgs])
  const begin = `begin ${loop.target}`
  let next = spawn()
  let unrepaired = false
  const started = performance.now()
  try {
    while (
      stats.kills < MAX_KILLS &&
      (stats.kills < MIN_KILLS || stats.midOp < MIN_MID_OP || stats.staleLocks < MIN_STALE_LOCKS)
    ) {
      const current = next
      const label = `seed ${seed}, kill ${stats.kills + 1}`
      await current.waitForLine((line) => line === 'ready')
      const startedUnrepaired = unrepaired
      const k = 1 + Math.floor(random() * 3)
      const delay = random() * stats.medianOpMs * 1.2
      current.send('go')
      await current
        .waitForLine(() => current.lines.filter((l) => l.startsWith(begin)).length >= k, 20_000)
        .catch((error: Error) => {
          throw new Error(
            `${label}: waiting for "${begin}": ${error.message}\nlast lines:\n${current.lines.slice(-10).join('\n')}`,
          )
        })
      if (delay >= 1) await sleep(delay)
      else if (random() < 0.5) await new Promise((resolve) => setImmediate(resolve))
      current.process.kill('SIGKILL')
      const { signal } = await current.exited
      assert.equal(signal, 'SIGKILL', `${label}: the child ended on its own:\n${current.stderr()}`)
      // Warm the next child up while this kill is looked at and repaired.
      next = spawn()

      stats.kills++
      if (journalMode === 'wal') stats.walKills++
      const ops = current.lines.filter((l) => /^(begin|done|error) /.test(l))
      if (ops.at(-1)?.startsWith(begin)) stats.midOp++
      for (const line of ops) {
        const done = new RegExp(`^done ${loop.target}\\S* ([\\d.]+)$`).exec(line)
        if (done !== null) durations.push(Number(done[1]))
      }
      if (durations.length > 0) stats.medianOpMs = median(durations)
      const errors = ops.filter((l) => l.startsWith('error '))
      stats.childErrors.push(...errors)
      if (startedUnrepaired) {
        // Only its first operation may find the previous kill's work completed under it.
        const first = ops.find((l) => !l.startsWith('begin '))
        for (const error of errors) {
          assert.equal(error, first, `${label}: a later operation failed: ${error}`)
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

      // About one kill in four is left for the next child's own operation to complete or undo.
      unrepaired = random() < 0.25
      if (unrepaired) {
        stats.repairedByNextOp++
        continue
      }
      await repairAndCheck(loop, random, label, stats)
      nextJournalMode()
    }
    if (unrepaired) await repairAndCheck(loop, random, `seed ${seed}, after the last kill`, stats)
  } finally {
    next.process.kill('SIGKILL')
    await next.exited
  }
  t.diagnostic(
    `${loop.target}: ${JSON.stringify(stats)} in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed})`,
  )
  assert.ok(
    stats.midOp >= MIN_MID_OP && stats.staleLocks >= MIN_STALE_LOCKS,
    `after ${stats.kills} kills, too few landed inside ${loop.target} (${stats.midOp}) or left its lock (${stats.staleLocks}): the test proves little (seed ${seed})`,
  )
}

const flatChecks = () => 'flat' as const

/** A folder holding `ids` (seeded with `rows(id)` documents each) and each one's fingerprint. */
async function seededFolder(ids: readonly string[], rows: (id: string) => number, random: () => number) {
  const dir = tempDir()
  const shard = open(dir)
  const fingerprints = new Map<string, string>()
  for (const id of ids) {
    await seedTenant(shard, id, rows(id), random)
    fingerprints.set(id, await fingerprint(shard, id))
  }
  await shard.close()
  return { dir, fingerprints }
}

test(`rename: SIGKILL at random points, then doctor --fix (or the next rename): one id, rows intact, nothing left`, {
  timeout: 120_000,
}, async (t) => {
  // A bystander in each folder: recoveries must not touch other tenants.
  const { dir, fingerprints } = await seededFolder(['ra', 'by1'], (id) => (id === 'ra' ? 3000 : 50), seededRandom(SEED))
  await runKillLoop(
    t,
    {
      dir,
      childArgs: ['rename', 'ra', 'rb'],
      target: 'rename',
      guessMs: 2,
      groups: [
        { names: ['ra', 'rb'], fingerprint: fingerprints.get('ra')! },
        { names: ['by1'], fingerprint: fingerprints.get('by1')! },
      ],
      // A rename killed between link and unlink leaves both names: the next rename's lock completes
      // it, and that rename (of the old name, which it saw a moment before) then finds its source gone.
      allowedAfterUnrepaired: ['TENANT_NOT_FOUND'],
      checkLayout: flatChecks,
    },
    SEED + 1,
  )
})

/** Archive and restore alternate in the child; `target` says which one the kills are timed from. */
for (const target of ['archive', 'restore'] as const) {
  test(`${target}: SIGKILL at random points, then doctor --fix (or the next operation): live xor archived, restores intact, nothing left`, {
    timeout: 120_000,
  }, async (t) => {
    // ~1 MB of hard-to-compress rows: compressing and decompressing take tens of milliseconds.
    const { dir, fingerprints } = await seededFolder(
      ['arc', 'by1'],
      (id) => (id === 'arc' ? 8000 : 50),
      seededRandom(SEED + 10),
    )
    await runKillLoop(
      t,
      {
        dir,
        childArgs: ['archive', 'arc'],
        target,
        guessMs: target === 'archive' ? 40 : 20,
        groups: [...fingerprints].map(([id, fingerprint]) => ({ names: [id], fingerprint })),
        allowedAfterUnrepaired: [],
        checkLayout: flatChecks,
        // The checks restored it; half the time the next child starts from an archive.
        afterCheck: async (shard, r) => {
          if (r() < 0.5) await shard.tenants.archive('arc')
        },
      },
      SEED + (target === 'archive' ? 2 : 3),
    )
  })
}

test(`layout migrate: SIGKILL at random points of flat→hashed→flat passes over 30 tenants: every tenant once, intact`, {
  timeout: 120_000,
}, async (t) => {
  const ids = Array.from({ length: 30 }, (_, i) => `lay-${String(i).padStart(2, '0')}`)
  const { dir, fingerprints } = await seededFolder(ids, () => 40, seededRandom(SEED + 20))
  const groups = [...fingerprints].map(([id, fingerprint]) => ({ names: [id], fingerprint }))
  await runKillLoop(
    t,
    {
      dir,
      childArgs: ['layout'],
      target: 'layout',
      guessMs: 60,
      groups,
      allowedAfterUnrepaired: [],
      // Either layout's instance repairs: each must settle a half-done move in either direction.
      checkLayout: (r) => (r() < 0.5 ? 'flat' : 'hashed'),
    },
    SEED + 4,
  )
  // Finally every file moves into each layout, and the tenants open from there.
  for (const layout of ['hashed', 'flat'] as const) {
    const shard = open(dir, layout)
    const report = await shard.tenants.migrateLayout()
    assert.deepEqual(report.failed, [])
    assert.equal(report.moved + report.inPlace, ids.length)
    for (const id of ids) {
      const rel = layout === 'flat' ? `tenants/${id}.sqlite3` : `tenants/${hashedFolder(id)}/${id}.sqlite3`
      assert.ok(fs.existsSync(path.join(dir, rel)), `${id} is at ${rel}`)
      assert.equal(await fingerprint(shard, id), fingerprints.get(id))
    }
    await shard.close()
    assert.deepEqual(strayFiles(dir, []), [])
  }
})
