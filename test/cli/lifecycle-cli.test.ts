// The lifecycle commands of the `shardines` executable, run as a user would
// (built CLI, a project folder with a config module, stdin not a terminal):
// tenants rename / archive / restore / archived, doctor (exit codes, --fix,
// --json), and layout migrate under a config whose storage is hashed.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { adapterIndex, coreIndex, type Run, shardines } from '../helpers/cli-runner.js'
import { flatRelativePath, hashedRelativePath } from '../helpers/hashed-layout.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { MIGRATION_FILES } from '../migrations/migration-fixtures.js'

/** Runs a command and asserts its exit code (showing its output when it differs). */
async function expectExit(cwd: string, code: number, ...args: string[]): Promise<Run> {
  const run = await shardines(cwd, ...args)
  assert.equal(run.code, code, `shardines ${args.join(' ')} exited ${run.code}:\n${run.stdout}\n${run.stderr}`)
  return run
}

/** The config module of a project whose data is in `./data`, with the storage options given. */
function configText(storage: string): string {
  return `import { createShardines } from ${JSON.stringify(coreIndex)}
import { sqliteStorage } from ${JSON.stringify(adapterIndex)}
export default createShardines({
  storage: sqliteStorage({ dir: './data', synchronous: 'off'${storage} }),
  migrations: { tenant: './migrations/tenant' },
})
`
}

/**
 * A temp project: the first `migrations` tenant migrations as files,
 * `shardines.config.mjs` (flat layout) and `hashed.config.mjs` (the same data
 * folder, hashed layout).
 */
function makeProject(migrations = 1): string {
  const dir = tempDir('shardines-cli-')
  fs.mkdirSync(path.join(dir, 'migrations', 'tenant'), { recursive: true })
  addTenantMigrations(dir, migrations)
  fs.writeFileSync(path.join(dir, 'shardines.config.mjs'), configText(''))
  fs.writeFileSync(path.join(dir, 'hashed.config.mjs'), configText(`, layout: 'hashed'`))
  return dir
}

function addTenantMigrations(dir: string, count: number): void {
  for (const [name, text] of Object.entries(MIGRATION_FILES).slice(0, count)) {
    fs.writeFileSync(path.join(dir, 'migrations', 'tenant', `${name}.mjs`), text)
  }
}

/** Writes `titles` into a tenant's file directly, the way another program would. */
function addDocuments(file: string, titles: readonly string[]): void {
  const db = new Database(file, { fileMustExist: true })
  const insert = db.prepare('insert into documents (title) values (?)')
  for (const title of titles) insert.run(title)
  db.close()
}

/** The documents' titles in a tenant file, read directly; also asserts the file passes integrity_check. */
function titlesIn(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
    return db.prepare('select title from documents order by id').pluck().all() as string[]
  } finally {
    db.close()
  }
}

/** A pid no process has now: one of a child that has exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '0'])
  assert.ok(pid !== undefined && pid > 0)
  return pid
}

test('tenants rename, archive, archived, restore: text and --json output, the files moved, exit 1 with a reason', async () => {
  const dir = makeProject()
  const data = path.join(dir, 'data')
  for (const id of ['acme', 'beta']) await expectExit(dir, 0, 'tenants', 'create', id)
  addDocuments(path.join(data, flatRelativePath('acme')), ['one', 'two', 'three'])

  const renamed = await expectExit(dir, 0, 'tenants', 'rename', 'acme', 'acme2')
  assert.match(renamed.stdout, /^renamed tenant acme to acme2$/m)
  assert.ok(!fs.existsSync(path.join(data, flatRelativePath('acme'))))
  assert.deepEqual(titlesIn(path.join(data, flatRelativePath('acme2'))), ['one', 'two', 'three'])
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'list', '--json')).stdout), ['acme2', 'beta'])
  const renamedJson = await expectExit(dir, 0, 'tenants', 'rename', 'acme2', 'acme', '--json')
  assert.deepEqual(JSON.parse(renamedJson.stdout), { renamed: 'acme2', to: 'acme' })
  await expectExit(dir, 0, 'tenants', 'rename', 'acme', 'acme2')

  const taken = await expectExit(dir, 1, 'tenants', 'rename', 'beta', 'acme2')
  assert.match(taken.stderr, /Tenant "acme2" already exists/)
  const missing = await expectExit(dir, 1, 'tenants', 'rename', 'ghost', 'spirit')
  assert.match(missing.stderr, /Tenant "ghost" does not exist/)
  const invalid = await expectExit(dir, 1, 'tenants', 'rename', 'beta', 'Bad!')
  assert.match(invalid.stderr, /Invalid tenant id "Bad!"/)
  const usage = await expectExit(dir, 2, 'tenants', 'rename', 'beta')
  assert.match(usage.stderr, /rename FROM TO/)
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'list', '--json')).stdout), ['acme2', 'beta'])

  const archived = await expectExit(dir, 0, 'tenants', 'archive', 'acme2')
  assert.match(archived.stdout, /^archived tenant acme2 at version 001_documents \(\d+ bytes, \d+ compressed\)$/m)
  assert.deepEqual(
    snapshotTree(data).filter((p) => p.startsWith('archive/') || p.startsWith('tenants/')),
    ['archive/', 'archive/acme2.json', 'archive/acme2.sqlite3.gz', 'tenants/', 'tenants/beta.sqlite3'],
  )
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'list', '--json')).stdout), ['beta'])
  const listed = await expectExit(dir, 0, 'tenants', 'archived')
  assert.match(listed.stdout, /^acme2\t001_documents\t\d{4}-\d\d-\d\dT[\d:.]+Z$/m)
  const listedJson = JSON.parse((await expectExit(dir, 0, 'tenants', 'archived', '--json')).stdout)
  assert.equal(listedJson.length, 1)
  assert.equal(listedJson[0].id, 'acme2')
  assert.equal(listedJson[0].version, '001_documents')
  assert.ok(listedJson[0].bytes > 0 && listedJson[0].compressedBytes > 0, JSON.stringify(listedJson))

  const twice = await expectExit(dir, 1, 'tenants', 'archive', 'acme2')
  assert.match(twice.stderr, /archived/i)
  const recreate = await expectExit(dir, 1, 'tenants', 'create', 'acme2')
  assert.match(recreate.stderr, /archived/i)
  const renameArchived = await expectExit(dir, 1, 'tenants', 'rename', 'beta', 'acme2')
  assert.match(renameArchived.stderr, /Tenant "acme2" already exists/)

  const restored = await expectExit(dir, 0, 'tenants', 'restore', 'acme2')
  assert.match(restored.stdout, /^restored tenant acme2$/m)
  assert.deepEqual(titlesIn(path.join(data, flatRelativePath('acme2'))), ['one', 'two', 'three'])
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'archived', '--json')).stdout), [])
  assert.deepEqual(
    snapshotTree(data).filter((p) => p.startsWith('archive/') || p.startsWith('tenants/')),
    ['archive/', 'tenants/', 'tenants/acme2.sqlite3', 'tenants/beta.sqlite3'],
  )
  const restoreLive = await expectExit(dir, 1, 'tenants', 'restore', 'beta')
  assert.match(restoreLive.stderr, /Tenant "beta" already exists/)
  const restoreMissing = await expectExit(dir, 1, 'tenants', 'restore', 'ghost', '--json')
  assert.equal(JSON.parse(restoreMissing.stdout).error.code, 'TENANT_NOT_FOUND')

  // Archive and restore as JSON: the record, then the live tenant again.
  const archivedJson = JSON.parse((await expectExit(dir, 0, 'tenants', 'archive', 'beta', '--json')).stdout)
  assert.equal(archivedJson.archived.id, 'beta')
  assert.equal(archivedJson.archived.version, '001_documents')
  assert.ok(!Number.isNaN(Date.parse(archivedJson.archived.archivedAt)))
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'restore', 'beta', '--json')).stdout), {
    restored: 'beta',
  })
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'list', '--json')).stdout), ['acme2', 'beta'])
})

test('doctor: exit 0 when clean; 1 for a stray file; --fix removes a dead process leftover and stale lock; --json parses', async () => {
  const dir = makeProject()
  const data = path.join(dir, 'data')
  for (const id of ['acme', 'beta']) await expectExit(dir, 0, 'tenants', 'create', id)

  const clean = await expectExit(dir, 0, 'doctor')
  assert.match(clean.stdout, /^2 tenants checked; 0 findings, 0 needing a person$/m)
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'doctor', '--json')).stdout), {
    tenants: 2,
    findings: [],
    needsPerson: 0,
  })
  await expectExit(dir, 0, 'doctor', '--full')

  // A stray file needs a person: exit 1, with or without --fix, and it is left alone.
  const stray = path.join(data, 'tenants', 'notes.txt')
  fs.writeFileSync(stray, 'somebody put this here')
  const strayRun = await expectExit(dir, 1, 'doctor')
  assert.match(strayRun.stdout, /NEEDS A PERSON\s+stray-file\s+\S*notes\.txt: /)
  assert.match(strayRun.stdout, /1 finding, 1 needing a person/)
  const strayJson = JSON.parse((await expectExit(dir, 1, 'doctor', '--json')).stdout)
  assert.equal(strayJson.needsPerson, 1)
  assert.deepEqual(
    strayJson.findings.map((f: { kind: string; path: string; needsPerson: boolean; fixed: boolean }) => [
      f.kind,
      path.basename(f.path),
      f.needsPerson,
      f.fixed,
    ]),
    [['stray-file', 'notes.txt', true, false]],
  )
  await expectExit(dir, 1, 'doctor', '--fix')
  assert.ok(fs.existsSync(stray), 'doctor --fix does not remove what it cannot account for')
  fs.unlinkSync(stray)

  // A killed create's temporary file and a killed rename's lock: notes without --fix (exit 0), fixed with it.
  const pid = deadPid()
  const leftover = path.join(data, 'tenants', `.creating-gamma-${pid}-x-y.sqlite3`)
  fs.copyFileSync(path.join(data, flatRelativePath('beta')), leftover)
  // One of a live process (this one) is work in progress: never touched.
  const inProgress = path.join(data, 'tenants', `.creating-delta-${process.pid}-x-y.sqlite3`)
  fs.writeFileSync(inProgress, '')
  const lock = path.join(data, '.shardines', 'locks', 'acme.lock')
  fs.mkdirSync(path.dirname(lock), { recursive: true })
  fs.writeFileSync(lock, JSON.stringify({ op: 'rename', id: 'acme', to: 'acme-new', pid, started: Date.now() }))

  const noted = await expectExit(dir, 0, 'doctor')
  assert.match(noted.stdout, /note\s+stale-lock\s+\S*acme\.lock: rename to "acme-new" by process \d+, which is gone/)
  assert.match(noted.stdout, new RegExp(`note\\s+leftover\\s+\\S*\\.creating-gamma-${pid}-x-y\\.sqlite3: `))
  assert.match(noted.stdout, /0 needing a person \(run with --fix to repair the rest\)/)
  assert.doesNotMatch(noted.stdout, /delta/)
  assert.ok(fs.existsSync(leftover) && fs.existsSync(lock), 'without --fix nothing is removed')

  const fixed = JSON.parse((await expectExit(dir, 0, 'doctor', '--fix', '--json')).stdout)
  assert.equal(fixed.needsPerson, 0)
  assert.deepEqual(
    fixed.findings
      .map((f: { kind: string; path: string; fixed: boolean }) => [f.kind, path.basename(f.path), f.fixed])
      .sort(),
    [
      ['leftover', `.creating-gamma-${pid}-x-y.sqlite3`, true],
      ['stale-lock', 'acme.lock', true],
    ],
  )
  assert.ok(!fs.existsSync(leftover), 'the leftover is removed')
  assert.ok(!fs.existsSync(lock), 'the stale lock is removed')
  assert.ok(fs.existsSync(inProgress), 'a live process’s temporary file is left alone')
  fs.unlinkSync(inProgress)

  const after = await expectExit(dir, 0, 'doctor')
  assert.match(after.stdout, /^2 tenants checked; 0 findings, 0 needing a person$/m)
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, 'tenants', 'list', '--json')).stdout), ['acme', 'beta'])
  assert.deepEqual(
    snapshotTree(data).filter((p) => !p.endsWith('/') && !p.startsWith('apex.')),
    ['tenants/acme.sqlite3', 'tenants/beta.sqlite3'],
    'nothing but the tenants is left',
  )
})

test('layout migrate under a hashed config moves every flat file into the hashed layout; the tenants open from there', async () => {
  const dir = makeProject()
  const data = path.join(dir, 'data')
  const ids = ['acme', 'beta', 'gamma', 'delta', 't-0042']
  for (const id of ids) await expectExit(dir, 0, 'tenants', 'create', id)
  for (const id of ids) addDocuments(path.join(data, flatRelativePath(id)), [`${id} a`, `${id} b`])

  // Before the move, the hashed config finds the flat files too.
  const hashed = ['--config', 'hashed.config.mjs']
  assert.deepEqual(
    JSON.parse((await expectExit(dir, 0, ...hashed, 'tenants', 'list', '--json')).stdout),
    [...ids].sort(),
  )

  const moved = await expectExit(dir, 0, ...hashed, 'layout', 'migrate')
  assert.match(moved.stdout, /^moved 5 tenant files; 0 already in place; 0 failed$/m)
  assert.deepEqual(
    snapshotTree(data).filter((p) => p.startsWith('tenants/') && !p.endsWith('/')),
    ids.map(hashedRelativePath).sort(),
  )
  for (const id of ids) assert.deepEqual(titlesIn(path.join(data, hashedRelativePath(id))), [`${id} a`, `${id} b`])

  // Resumable and idempotent: a second run has nothing to move.
  assert.deepEqual(JSON.parse((await expectExit(dir, 0, ...hashed, 'layout', 'migrate', '--json')).stdout), {
    moved: 0,
    inPlace: 5,
    failed: [],
  })
  // The tenants open from their new place, under either config; doctor is clean.
  for (const config of [hashed, []]) {
    assert.deepEqual(
      JSON.parse((await expectExit(dir, 0, ...config, 'tenants', 'list', '--json')).stdout),
      [...ids].sort(),
    )
    const status = JSON.parse((await expectExit(dir, 0, ...config, 'status', '--json')).stdout)
    assert.deepEqual(
      status.tenants.map((t: { id: string; version: string }) => [t.id, t.version]),
      [...ids].sort().map((id) => [id, '001_documents']),
    )
  }
  const doctor = await expectExit(dir, 0, ...hashed, 'doctor')
  assert.match(doctor.stdout, /^5 tenants checked; 0 findings, 0 needing a person$/m)
  // Lifecycle commands work on moved tenants; a new one is created hashed.
  await expectExit(dir, 0, ...hashed, 'tenants', 'rename', 'acme', 'acme2')
  assert.deepEqual(titlesIn(path.join(data, hashedRelativePath('acme2'))), ['acme a', 'acme b'])
  await expectExit(dir, 0, ...hashed, 'tenants', 'create', 'fresh')
  assert.ok(fs.existsSync(path.join(data, hashedRelativePath('fresh'))))
  await expectExit(dir, 0, ...hashed, 'tenants', 'archive', 'beta')
  await expectExit(dir, 0, ...hashed, 'tenants', 'restore', 'beta')
  assert.deepEqual(titlesIn(path.join(data, hashedRelativePath('beta'))), ['beta a', 'beta b'])

  // And back: the flat config's layout migrate moves them all to the top folder again.
  const back = JSON.parse((await expectExit(dir, 0, 'layout', 'migrate', '--json')).stdout)
  assert.deepEqual(back, { moved: 6, inPlace: 0, failed: [] })
  assert.deepEqual(
    snapshotTree(data).filter((p) => p.startsWith('tenants/') && !p.endsWith('/')),
    ['acme2', 'beta', 'delta', 'fresh', 'gamma', 't-0042'].map(flatRelativePath),
  )
})

test('backup under a hashed config finds a tenant still in the flat layout (the configured layout is not the only one looked at)', async () => {
  const dir = makeProject(1)
  await expectExit(dir, 0, 'tenants', 'create', 'acme')
  addDocuments(path.join(dir, 'data', flatRelativePath('acme')), ['kept'])
  const backup = await shardines(dir, '--config', 'hashed.config.mjs', 'backup', 'acme', 'backups/acme.sqlite3')
  assert.equal(backup.code, 0, `backup of a tenant still in the flat layout: ${backup.stderr}`)
  assert.deepEqual(titlesIn(path.join(dir, 'backups', 'acme.sqlite3')), ['kept'])
})

test('migrate --all under a hashed config migrates tenants still in the flat layout (worker migrations open the file where it is)', async () => {
  const dir = makeProject(1)
  const data = path.join(dir, 'data')
  for (const id of ['acme', 'beta']) await expectExit(dir, 0, 'tenants', 'create', id)
  addDocuments(path.join(data, flatRelativePath('acme')), ['kept'])
  // A release adds a migration; the fleet is migrated before (or while) the files are moved.
  addTenantMigrations(dir, 2)
  const migrated = await shardines(dir, '--config', 'hashed.config.mjs', 'migrate', '--all', '--json')
  assert.equal(migrated.code, 0, `migrate --all under the hashed config:\n${migrated.stdout}\n${migrated.stderr}`)
  const report = JSON.parse(migrated.stdout)
  assert.equal(report.tenants.migrated, 2)
  assert.equal(report.tenants.failed, 0)
  // Nothing was created at the hashed paths behind the flat files' backs, and the data is there.
  assert.deepEqual(
    snapshotTree(data).filter((p) => p.startsWith('tenants/') && !p.endsWith('/')),
    ['acme', 'beta'].map(flatRelativePath),
  )
  assert.deepEqual(titlesIn(path.join(data, flatRelativePath('acme'))), ['kept'])
})
