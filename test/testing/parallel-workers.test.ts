import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { createTestTenants } from '@shardines/core/testing'
import { wrapChild } from '../helpers/child-process.js'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from './ten-table-schema.js'

// 200 tests, each in its own tenant, in 4 worker processes sharing one data folder: first with
// tenants forked from a template migrated once per worker, then with every tenant created and
// migrated (10 migrations) per test. Each worker is a node:test suite running 8 tests at a time.
//
// The data folder is on /dev/shm when it is a tmpfs (SHARDINES_TEST_TENANTS_TMP picks another),
// as a test suite's should be: a fork copies the template through SQLite's backup API, whose
// destination commits with an fsync, so on a disk a fork costs about one fsync (10–30 ms here)
// and the advantage over migrating shrinks to the migrations' own cost. The second test measures
// that one tenant at a time on both folders, asserting only on the fast one.
const WORKERS = 4
const TESTS_PER_WORKER = 50
const CONCURRENCY = 8
const ID = /^par-[a-z0-9]+-[a-z0-9]{5}-\d+$/

interface WorkerResult {
  pid: number
  strategy: string
  wallMs: number
  timings: { id: string; ms: number }[]
}

/** SHARDINES_TEST_TENANTS_TMP if set; else /dev/shm when it is a writable tmpfs; else the system temp folder. */
function fastTempRoot(): string {
  if (process.env.SHARDINES_TEST_TENANTS_TMP) return process.env.SHARDINES_TEST_TENANTS_TMP
  try {
    const TMPFS_MAGIC = 0x01021994
    fs.accessSync('/dev/shm', fs.constants.W_OK)
    if (fs.statfsSync('/dev/shm').type === TMPFS_MAGIC) return '/dev/shm'
  } catch {
    // No /dev/shm (not Linux), or not usable.
  }
  return os.tmpdir()
}

function scratchDir(root: string): string {
  const dir = fs.mkdtempSync(path.join(root, 'shardines-test-tenants-'))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const CHILD = fileURLToPath(new URL('./children/tenant-tests-child.ts', import.meta.url))

/**
 * A worker: the child suite run as its own node:test process with the TAP reporter. Without
 * NODE_TEST_CONTEXT, which this file's runner sets: with it the child would report to a parent
 * runner in its binary protocol instead of printing its results.
 */
function spawnWorker(dir: string, strategy: 'fork' | 'create') {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env
  const args = [
    '--import',
    'tsx',
    '--test-reporter=tap',
    CHILD,
    dir,
    strategy,
    String(TESTS_PER_WORKER),
    String(CONCURRENCY),
  ]
  const child = wrapChild(spawn(process.execPath, args, { env, stdio: 'pipe' }), CHILD)
  // Four busy workers would starve the test files running beside this one (the runner runs two at a
  // time), some of which time their requests: the workers yield to them. Both strategies alike.
  if (child.process.pid !== undefined) os.setPriority(child.process.pid, 10)
  return child
}

async function runWorkers(dir: string, strategy: 'fork' | 'create') {
  const children = Array.from({ length: WORKERS }, () => spawnWorker(dir, strategy))
  const results: WorkerResult[] = []
  for (const child of children) {
    const { code } = await child.exited
    const output = child.lines.join('\n')
    assert.equal(code, 0, `a ${strategy} worker failed:\n${output}\n${child.stderr()}`)
    assert.match(output, new RegExp(`# pass ${TESTS_PER_WORKER}\\b`), output)
    assert.match(output, /# fail 0\b/, output)
    const line = child.lines.find((l) => l.startsWith('RESULT '))
    assert.ok(line, `no RESULT line:\n${output}`)
    results.push(JSON.parse(line.slice('RESULT '.length)) as WorkerResult)
  }
  const timings = results.flatMap((r) => r.timings)
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  return {
    results,
    ids: timings.map((t) => t.id),
    /** A worker's suite time (first test start to last test end) over its tests: what each test costs the suite. */
    suitePerTestMs: mean(results.map((r) => r.wallMs)) / TESTS_PER_WORKER,
  }
}

/** Tenants in the data folder, and any file in its tenants folder that is not a lock or a tenant. */
async function leftovers(dir: string) {
  const shard = createShardines<ApexDB, TenantDB>({ storage: sqliteStorage({ dir }) })
  const ids: string[] = []
  for await (const id of shard.tenants.list()) ids.push(id)
  await shard.close()
  const tenantsDir = path.join(dir, 'tenants')
  const files = fs.existsSync(tenantsDir) ? fs.readdirSync(tenantsDir, { recursive: true }).map(String) : []
  return { ids, files: files.filter((f) => f.endsWith('.sqlite3') || f.includes('partial') || f.includes('forking')) }
}

test('200 tests in 4 parallel workers on one data folder, each in its own tenant: template + fork vs migrate per test', {
  timeout: 300_000,
}, async () => {
  const root = fastTempRoot()
  const dir = scratchDir(root)
  const setup = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await setup.migrate.apex()
  await setup.close()

  const fork = await runWorkers(dir, 'fork')
  assert.equal(fork.ids.length, WORKERS * TESTS_PER_WORKER)
  assert.equal(new Set(fork.ids).size, fork.ids.length, 'every test had its own tenant')
  for (const id of fork.ids) assert.match(id, ID)
  assert.deepEqual(await leftovers(dir), { ids: [], files: [] }, 'no tenant or template is left behind')

  const create = await runWorkers(dir, 'create')
  assert.equal(new Set(create.ids).size, WORKERS * TESTS_PER_WORKER)
  assert.equal(
    new Set([...fork.ids, ...create.ids]).size,
    2 * WORKERS * TESTS_PER_WORKER,
    'ids never repeat across runs',
  )
  assert.deepEqual(await leftovers(dir), { ids: [], files: [] })

  const f = (ms: number) => ms.toFixed(2)
  console.log(`# data folder under ${root}; ${WORKERS} workers × ${TESTS_PER_WORKER} tests, ${CONCURRENCY} at a time`)
  for (const [name, run] of [
    ['template+fork', fork],
    ['create+migrate (10 migrations)', create],
  ] as const) {
    console.log(`# ${name}: ${f(run.suitePerTestMs)} ms per test (a worker's suite time / its tests)`)
  }
  console.log(`# template+fork is ${(create.suitePerTestMs / fork.suitePerTestMs).toFixed(1)}× faster per test`)
  assert.ok(
    fork.suitePerTestMs < create.suitePerTestMs,
    `a test costs less with a forked tenant (${f(fork.suitePerTestMs)} ms) than with a migrated one (${f(create.suitePerTestMs)} ms)`,
  )
})

test('one tenant at a time, on the fast folder (asserted) and on the system temp folder (printed): template + fork vs migrate', {
  timeout: 120_000,
}, async () => {
  for (const root of [...new Set([fastTempRoot(), os.tmpdir()])]) {
    const dir = scratchDir(root)
    const shard = createShardines<ApexDB, TenantDB>({
      storage: sqliteStorage({ dir }),
      migrations: { tenant: tenantMigrations },
    })
    const N = 30
    const perTenant = { fork: 0, create: 0 }
    for (const strategy of ['fork', 'create'] as const) {
      const testTenants = createTestTenants(shard, { prefix: 'seq', strategy })
      await testTenants.ready()
      const started = performance.now()
      for (let i = 0; i < N; i++) await testTenants.create()
      perTenant[strategy] = (performance.now() - started) / N
      await testTenants.dispose()
    }
    await shard.close()
    console.log(
      `# on ${root}, one at a time: a tenant by template+fork in ${perTenant.fork.toFixed(2)} ms, ` +
        `by create+migrate in ${perTenant.create.toFixed(2)} ms (${(perTenant.create / perTenant.fork).toFixed(1)}×)`,
    )
    // On a disk, both pay fsyncs that dwarf the copy and the migrations: printed, not asserted.
    if (root === fastTempRoot()) assert.ok(perTenant.fork < perTenant.create, JSON.stringify(perTenant))
  }
})
