import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { loadMigrations } from '@shardines/core'
import Database from 'better-sqlite3'
import { SHARDINES_BIN } from '../helpers/cli-runner.js'
import { tempDir } from '../helpers/temp-dir.js'
import { inspect, seedTenants, shardAt, tenantFile, tenantIds, writeMigrations } from './migration-fixtures.js'

const CHILD = fileURLToPath(new URL('./children/migrate-child.ts', import.meta.url))

function child(args: string[]): { proc: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
    cwd: path.dirname(CHILD),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })
  let out = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exit = once(proc, 'exit').then(([code]) => {
    if (code !== 0 && code !== null) throw new Error(`child exited ${code}: ${err}`)
    return code as number | null
  })
  return { proc, output: () => out, exit }
}

/** The built `shardines` executable, run in `cwd`. */
function cli(cwd: string, args: string[]): { proc: ChildProcess; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, [SHARDINES_BIN, ...args], { cwd, stdio: 'ignore' })
  return { proc, exit: once(proc, 'exit').then(([code]) => code as number | null) }
}

const summary = (out: string) =>
  JSON.parse(out.trim().split('\n').at(-1)!) as { migrated: number; upToDate: number; failed: number }

test('two processes migrate the same tenants at once: each migration is applied exactly once', async (t) => {
  const dir = tempDir()
  const ids = tenantIds(300)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const v2 = writeMigrations(dir, 'v2', 2)
  const startAt = String(Date.now() + 1500)
  const a = child(['all', dir, v2, startAt])
  const b = child(['all', dir, v2, startAt])
  await Promise.all([a.exit, b.exit])
  const ra = summary(a.output())
  const rb = summary(b.output())
  t.diagnostic(`process A migrated ${ra.migrated}, process B migrated ${rb.migrated}`)
  assert.equal(ra.failed + rb.failed, 0)
  assert.equal(ra.migrated + rb.migrated, 300, 'every tenant was migrated by exactly one of the two')
  assert.equal(ra.migrated + ra.upToDate, 300)
  assert.equal(rb.migrated + rb.upToDate, 300)
  for (const id of ids) {
    const t = inspect(dir, id)
    assert.deepEqual(t.log, ['001_documents', '002_unique_titles'], id)
    assert.deepEqual(t.applied, ['001_documents', '002_unique_titles'], id)
  }
})

test('a `shardines migrate --all` process killed with SIGKILL halfway leaves every tenant whole; a second run finishes', async (t) => {
  const dir = tempDir()
  const ids = tenantIds(300)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  // Tenant 150's data makes 002 announce itself (a marker file) and then hold its
  // transaction open: the kill is sure to land inside that tenant's migration.
  const stuck = ids[150]!
  const raw = new Database(tenantFile(dir, stuck))
  raw.prepare('insert into documents (title) values (?)').run('hold')
  raw.close()
  const marker = path.join(dir, 'inside-transaction')
  const v2 = writeMigrations(dir, 'v2', 2)
  const slow = path.join(v2, '002_unique_titles.mjs')
  fs.writeFileSync(
    slow,
    `import { sql } from ${JSON.stringify(import.meta.resolve('kysely'))}\n${fs.readFileSync(slow, 'utf8')}`.replace(
      '  await db.schema.createIndex',
      `  if ((await db.selectFrom('documents').select('title').execute()).some((r) => r.title === 'hold')) {
    // A tiny page cache and ~1 MB of rows: pages spill into the database file before
    // commit, so the journal is hot and the next open must roll them back.
    await sql.raw('pragma cache_size = 10').execute(db)
    for (let i = 0; i < 4; i++) {
      await db.insertInto('documents').values(Array.from({ length: 500 }, (_, j) => ({ title: 'x'.repeat(500) + (i * 500 + j) }))).execute()
    }
    ;(await import('node:fs')).writeFileSync(${JSON.stringify(marker)}, '')
    for (const end = Date.now() + 60_000; Date.now() < end; );
  }
  await db.schema.createIndex`,
    ),
  )
  // The real command line: `shardines migrate --all`, with a config in the data folder.
  fs.writeFileSync(
    path.join(dir, 'shardines.config.mjs'),
    `import { createShardines } from ${JSON.stringify(import.meta.resolve('@shardines/core'))}
import { sqliteStorage } from ${JSON.stringify(import.meta.resolve('@shardines/adapter-sqlite'))}
export default createShardines({ storage: sqliteStorage({ dir: ${JSON.stringify(dir)} }), migrations: { tenant: ${JSON.stringify(v2)} } })
`,
  )
  const run = cli(dir, ['migrate', '--all'])
  while (!fs.existsSync(marker)) await new Promise((r) => setTimeout(r, 5))
  run.proc.kill('SIGKILL')
  await run.exit
  const hot = fs.readdirSync(path.join(dir, 'tenants')).filter((f) => f.endsWith('-journal'))
  const sizeAtKill = fs.statSync(tenantFile(dir, stuck)).size
  t.diagnostic(`journals left by the kill: ${hot.join(', ')}; ${stuck} is ${sizeAtKill} bytes`)
  assert.ok(hot.includes(`${stuck}.sqlite3-journal`), 'the kill interrupted an open migration transaction')
  assert.ok(sizeAtKill > 500_000, 'uncommitted pages had reached the database file: the journal is hot')
  // The stamps core keeps in user_version after one and after both migrations.
  const up = async () => {}
  const { stamps } = await loadMigrations({ '001_documents': { up }, '002_unique_titles': { up } }, 'tenant')
  const [old, latest] = [stamps[1], stamps[2]]
  let atNew = 0
  for (const id of ids) {
    const tenant = inspect(dir, id)
    assert.equal(tenant.integrity, 'ok', id)
    assert.deepEqual(tenant.documents, id === stuck ? ['alpha', 'beta', 'hold'] : ['alpha', 'beta'], id)
    if (tenant.applied.length === 2) {
      atNew++
      assert.equal(tenant.userVersion, latest, id)
      assert.deepEqual(tenant.log, tenant.applied, id)
      assert.deepEqual(tenant.documentColumns, ['id', 'title', 'slug'], id)
    } else {
      assert.deepEqual(tenant.applied, ['001_documents'], id)
      assert.equal(tenant.userVersion, old, id)
      assert.deepEqual(tenant.log, ['001_documents'], id)
      assert.deepEqual(tenant.documentColumns, ['id', 'title'], id)
      assert.ok(!tenant.tables.includes('tags'), id)
    }
  }
  assert.equal(inspect(dir, stuck).applied.length, 1, 'the interrupted tenant was rolled back to its old version')
  assert.ok(atNew >= 140 && atNew < 300, `killed after ${atNew} of 300`)

  // The second run finishes the job (without the hold, as after a fix).
  fs.writeFileSync(slow, fs.readFileSync(slow, 'utf8').replace('Date.now() + 60_000', 'Date.now()'))
  const shard = shardAt(dir, v2)
  const report = await shard.migrate.all()
  assert.equal(report.failed, 0)
  assert.equal(report.migrated, 300 - atNew)
  assert.equal(report.upToDate, atNew)
  for (const id of ids) assert.deepEqual(inspect(dir, id).log, ['001_documents', '002_unique_titles'])
  await shard.close()
  // A journal the kill left that was not yet "hot" (nothing written to the database file) is
  // ignored by SQLite and replaced at the tenant's next write: the second run's.
  const leftovers = fs.readdirSync(path.join(dir, 'tenants')).filter((f) => f.endsWith('-journal'))
  assert.deepEqual(leftovers, [])
})

test('lazy migration on first open in two processes at once applies each migration once', async () => {
  const dir = tempDir()
  const ids = tenantIds(100)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const v3 = writeMigrations(dir, 'v3', 3)
  const startAt = String(Date.now() + 1500)
  const a = child(['open', dir, v3, startAt])
  const b = child(['open', dir, v3, startAt])
  await Promise.all([a.exit, b.exit])
  assert.match(a.output(), /opened 100/)
  assert.match(b.output(), /opened 100/)
  for (const id of ids) assert.deepEqual(inspect(dir, id).log, ['001_documents', '002_unique_titles', '003_notes'], id)
})
