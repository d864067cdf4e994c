import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import { adapterIndex, cliIndex, coreIndex, shardines } from '../helpers/cli-runner.js'
import { tempDir } from '../helpers/temp-dir.js'
import { MIGRATION_FILES } from '../migrations/migration-fixtures.js'

const APEX_MIGRATION = `export async function up(db) {
  await db.schema.createTable('accounts').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('email', 'text').execute()
}`

/** A temp project: migrations folders and a shardines.config.mjs importing the workspace's built packages. */
function makeProject(tenantMigrations: number): string {
  const dir = tempDir('shardines-cli-')
  fs.mkdirSync(path.join(dir, 'migrations', 'apex'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'migrations', 'tenant'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'migrations', 'apex', '001_accounts.mjs'), APEX_MIGRATION)
  addTenantMigrations(dir, tenantMigrations)
  fs.writeFileSync(
    path.join(dir, 'shardines.config.mjs'),
    `import { createShardines } from ${JSON.stringify(coreIndex)}
import { sqliteStorage } from ${JSON.stringify(adapterIndex)}
export default createShardines({
  storage: sqliteStorage({ dir: './data', synchronous: 'off' }),
  migrations: { apex: './migrations/apex', tenant: './migrations/tenant' },
})
`,
  )
  return dir
}

function addTenantMigrations(dir: string, count: number): void {
  for (const [name, text] of Object.entries(MIGRATION_FILES).slice(0, count)) {
    fs.writeFileSync(path.join(dir, 'migrations', 'tenant', `${name}.mjs`), text)
  }
}

test('shardines end to end: create, migrate, status --json, destroy, backup; exit codes', async () => {
  const dir = makeProject(1)

  const none = await shardines(path.dirname(dir), 'status')
  assert.equal(none.code, 2, 'no config in the working directory')
  assert.match(
    none.stderr,
    /No shardines\.config\.ts, shardines\.config\.mts, shardines\.config\.js, shardines\.config\.mjs/,
  )

  const usage = await shardines(dir, 'migrate', '--apex', '--tenant', 'x')
  assert.equal(usage.code, 2)
  assert.match(usage.stderr, /one of --apex, --tenant ID, --all/)
  assert.equal((await shardines(dir, 'frobnicate')).code, 2)

  const apex = await shardines(dir, 'migrate', '--apex')
  assert.equal(apex.code, 0, apex.stderr)
  assert.match(apex.stdout, /apex: migrated \(empty\) → 001_accounts/)

  for (const id of ['acme', 'beta']) {
    const created = await shardines(dir, 'tenants', 'create', id)
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, new RegExp(`created tenant ${id}`))
  }
  const again = await shardines(dir, 'tenants', 'create', 'acme')
  assert.equal(again.code, 1)
  assert.match(again.stderr, /Tenant "acme" already exists/)
  const bad = await shardines(dir, 'tenants', 'create', 'Bad!')
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /Invalid tenant id "Bad!"/)

  // A release adds 002; beta's data makes it fail.
  const beta = new Database(path.join(dir, 'data', 'tenants', 'beta.sqlite3'))
  beta.exec("insert into documents (title) values ('same'), ('same')")
  beta.close()
  addTenantMigrations(dir, 2)

  const json = await shardines(dir, 'migrate', '--all', '--json')
  assert.equal(json.code, 1, 'a failed tenant makes the exit code non-zero')
  const report = JSON.parse(json.stdout)
  assert.equal(report.tenants.migrated, 1)
  assert.equal(report.tenants.failed, 1)
  assert.deepEqual(report.tenants.runner, { kind: 'workers', workers: 2 })
  const failed = report.tenants.tenants.find((t: { id: string }) => t.id === 'beta')
  assert.equal(failed.status, 'failed')
  assert.equal(failed.from, '001_documents')
  assert.equal(failed.to, '001_documents')
  assert.equal(failed.error.code, 'MIGRATION_FAILED')
  assert.equal(failed.error.migration, '002_unique_titles')
  assert.match(failed.error.cause, /UNIQUE constraint failed/)
  assert.match(json.stderr, /1 tenant failed: beta/)
  assert.doesNotMatch(json.stderr, /migrating/, 'no progress output with --json')

  const human = await shardines(dir, 'migrate')
  assert.equal(human.code, 1)
  assert.match(human.stdout, /apex: up to date at 001_accounts/)
  assert.match(human.stdout, /tenants: 0 migrated, 1 up to date, 1 failed/)
  assert.match(
    human.stdout,
    /failed tenants \(each left at its previous version\):\n {2}beta {2}at 001_documents {2}002_unique_titles/,
  )
  assert.match(
    human.stderr,
    /^migrating 2\/2 \(\d+\/s, failed 1\)$/m,
    'plain progress lines when stderr is not a terminal',
  )

  const status = await shardines(dir, 'status', '--json')
  assert.equal(status.code, 0, status.stderr)
  const statusReport = JSON.parse(status.stdout)
  assert.equal(statusReport.latest, '002_unique_titles')
  assert.deepEqual(statusReport.rollout, [
    { version: '001_documents', tenants: 1 },
    { version: '002_unique_titles', tenants: 1 },
  ])
  assert.deepEqual(statusReport.tenants, [
    { id: 'acme', version: '002_unique_titles', pending: [], drift: false },
    { id: 'beta', version: '001_documents', pending: ['002_unique_titles'], drift: false },
  ])
  const statusText = await shardines(dir, 'status')
  assert.match(statusText.stdout, /001_documents\s+1 {2}behind\n {2}002_unique_titles\s+1 {2}latest/)
  assert.match(statusText.stdout, /drift: none/)

  const refused = await shardines(dir, 'tenants', 'destroy', 'beta')
  assert.equal(refused.code, 2)
  assert.match(refused.stderr, /pass --yes/)
  assert.ok(fs.existsSync(path.join(dir, 'data', 'tenants', 'beta.sqlite3')))
  const destroyed = await shardines(dir, 'tenants', 'destroy', 'beta', '--yes')
  assert.equal(destroyed.code, 0, destroyed.stderr)
  assert.ok(!fs.existsSync(path.join(dir, 'data', 'tenants', 'beta.sqlite3')))

  const done = await shardines(dir, 'migrate', '--all')
  assert.equal(done.code, 0)
  const list = await shardines(dir, 'tenants', 'list', '--json')
  assert.deepEqual(JSON.parse(list.stdout), ['acme'])

  const backup = await shardines(dir, 'backup', 'acme', 'backups/acme.sqlite3')
  assert.equal(backup.code, 0, backup.stderr)
  const copy = new Database(path.join(dir, 'backups', 'acme.sqlite3'), { readonly: true })
  assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok')
  assert.equal(copy.prepare('select count(*) from kysely_migration').pluck().get(), 2)
  copy.close()

  // Drift makes status exit 1 (CI can gate on it).
  const acme = new Database(path.join(dir, 'data', 'tenants', 'acme.sqlite3'))
  acme.exec('alter table documents add column hotfix text')
  acme.close()
  const drift = await shardines(dir, 'status')
  assert.equal(drift.code, 1)
  assert.match(drift.stdout, /drift: 1 tenant differ from the template at their version: acme/)
})

test('shardines codegen runs @shardines/codegen, a dependency of the CLI: the project installs nothing else', async () => {
  const dir = makeProject(2)
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules')))
  const stale = await shardines(dir, 'codegen', '--verify')
  assert.equal(stale.code, 1, stale.stdout + stale.stderr)
  const run = await shardines(dir, 'codegen', '--out', 'db')
  assert.equal(run.code, 0, run.stdout + run.stderr)
  assert.match(fs.readFileSync(path.join(dir, 'db', 'tenant.ts'), 'utf8'), /documents/)
  const verify = await shardines(dir, 'codegen', '--out', 'db', '--verify')
  assert.equal(verify.code, 0, verify.stdout + verify.stderr)
})

test('shardines reads a TypeScript config through tsx, and workers load TypeScript migrations', async () => {
  const dir = makeProject(0)
  fs.rmSync(path.join(dir, 'shardines.config.mjs'))
  // An ESM project (a .ts file in a package without "type": "module" is CommonJS to tsx; .mts works anywhere).
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  for (const [name, text] of Object.entries(MIGRATION_FILES).slice(0, 2)) {
    fs.writeFileSync(
      path.join(dir, 'migrations', 'tenant', `${name}.ts`),
      text.replace('export async function up(db)', 'export async function up(db: any): Promise<void>'),
    )
  }
  fs.writeFileSync(
    path.join(dir, 'shardines.config.ts'),
    `import { createShardines, type Shardines } from ${JSON.stringify(coreIndex)}
import { sqliteStorage } from ${JSON.stringify(adapterIndex)}
export const shard: Shardines<unknown, unknown> = createShardines({
  storage: sqliteStorage({ dir: './data', synchronous: 'off' }),
  migrations: { tenant: './migrations/tenant' },
})
`,
  )
  const apex = await shardines(dir, 'migrate', '--apex')
  assert.equal(apex.code, 0, apex.stderr)
  for (const id of ['one', 'two', 'three']) assert.equal((await shardines(dir, 'tenants', 'create', id)).code, 0)
  const run = await shardines(dir, 'migrate', '--all', '--json', '--concurrency', '2')
  assert.equal(run.code, 0, run.stderr)
  const { tenants } = JSON.parse(run.stdout)
  assert.deepEqual(tenants.runner, { kind: 'workers', workers: 2 })
  assert.equal(tenants.upToDate, 3)
})

test('the config is found in the nearest folder above the working directory, and defineConfig({ shard: factory }) is accepted', async () => {
  const dir = makeProject(1)
  fs.writeFileSync(
    path.join(dir, 'shardines.config.mjs'),
    `import { createShardines, defineConfig } from ${JSON.stringify(coreIndex)}
import { sqliteStorage } from ${JSON.stringify(adapterIndex)}
import * as path from 'node:path'
export default defineConfig({
  shard: () => createShardines({
    storage: sqliteStorage({ dir: path.join(import.meta.dirname, 'data'), synchronous: 'off' }),
    migrations: { apex: path.join(import.meta.dirname, 'migrations/apex'), tenant: path.join(import.meta.dirname, 'migrations/tenant') },
  }),
})
`,
  )
  const nested = path.join(dir, 'src', 'deep')
  fs.mkdirSync(nested, { recursive: true })
  assert.equal((await shardines(nested, 'migrate', '--apex')).code, 0)
  const created = await shardines(nested, 'tenants', 'create', 'acme')
  assert.equal(created.code, 0, created.stderr)
  // The data folder is the config's, not the working directory's.
  assert.ok(fs.existsSync(path.join(dir, 'data', 'tenants', 'acme.sqlite3')))
  assert.ok(!fs.existsSync(path.join(nested, 'data')))
  const listed = await shardines(nested, 'tenants', 'list', '--json')
  assert.deepEqual(JSON.parse(listed.stdout), ['acme'])
  // A default export that is neither an instance nor a config is refused with what to export.
  fs.writeFileSync(path.join(dir, 'shardines.config.mjs'), 'export default { nope: true }\n')
  const bad = await shardines(nested, 'status')
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /defineConfig\(\{ shard \}\)/)
})

test('defineConfig is also exported by @shardines/cli: the same function as in @shardines/core', async () => {
  const cli = await import('@shardines/cli')
  const core = await import('@shardines/core')
  assert.equal(cli.defineConfig, core.defineConfig)
  const dir = makeProject(1)
  fs.writeFileSync(
    path.join(dir, 'shardines.config.mjs'),
    `import { createShardines } from ${JSON.stringify(coreIndex)}
import { defineConfig } from ${JSON.stringify(cliIndex)}
import { sqliteStorage } from ${JSON.stringify(adapterIndex)}
export default defineConfig({
  shard: createShardines({
    storage: sqliteStorage({ dir: './data', synchronous: 'off' }),
    migrations: { apex: './migrations/apex', tenant: './migrations/tenant' },
  }),
})
`,
  )
  const run = await shardines(dir, 'migrate', '--json')
  assert.equal(run.code, 0, run.stderr)
  assert.equal(JSON.parse(run.stdout).apex.status, 'migrated')
})
