// A query joining apex makes Shardines ATTACH the apex file to the tenant's connection,
// which opens two more descriptors (apex.sqlite3 and its -wal: apex is in WAL mode) on
// top of the tenant file's one. With fewer descriptors than the pool needs for that,
// every join must still succeed: an ATTACH that runs out closes idle handles, lowers
// maxOpen (one warning) and retries, as an open does.
//
// The numbers (see children/attach-fd-child.ts): a tsx child holds ~30 descriptors of
// its own. Under `ulimit -n 128`, with maxOpen 80:
// - without joins, 80 handles take ~30 + 80 = 110 < 128 descriptors: the pool never
//   runs out (the "plain" run checks that: no warning);
// - with joins, 80 handles would take ~30 + 3 × 80 = 270: the pool can hold ~32. Phase B
//   joins on the 80 tenants phase A left open (pool hits: nothing is opened but the
//   ATTACH), so the descriptors run out inside an ATTACH, about the tenth one;
// - with every handle pinned (nothing can be closed), that ATTACH fails: the "pinned"
//   run shows the failure mode is real.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { test } from 'node:test'
import { createShardines } from '@shardines/core'
import { runInLanes } from '../helpers/async-helpers.js'
import { spawnTsChild } from '../helpers/child-process.js'
import { type ApexDB, apexMigrations, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

const TENANTS = 150
const FILE_LIMIT = 128
const MAX_OPEN = 80
const skip = fs.existsSync('/proc/self/limits') ? false : 'needs Linux /proc'

interface ChildResult {
  limit: number
  baseDescriptors: number
  served: number
  failures: string[]
  failureCount: number
  warnings: string[]
  warnedAt?: { phase: string; index: number; hit: boolean }
  stats: { open: number; pinned: number; hits: number; misses: number; evictions: number }
  maxOpenSeen: number
  pinned?: { joined: number; failure?: { name: string; code?: string; message: string } }
}

/** 150 tenants; tenant i has a document owned by apex account i and one owned by nobody. */
async function seededFolder(dir: string): Promise<string> {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { synchronous: 'off' }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(4, '0')}`)
  await shard.apex
    .insertInto('accounts')
    .values(ids.map((_, i) => ({ id: i + 1000, email: `owner-${i}@x.test` })))
    .execute()
  await runInLanes(ids.length, 4, async (i) => {
    const id = ids[i]!
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values([
          { title: `${id} doc`, owner_id: i + 1000 },
          { title: `${id} unowned`, owner_id: 1 },
        ])
        .execute(),
    )
  })
  await shard.close()
  return dir
}

// Made here, not inside a test: a temp folder made in a test is removed when that test ends.
const DIR = tempDir()
let folder: Promise<string> | undefined
/** One seeded folder for every test of this file (the children only read it). */
function sharedFolder(): Promise<string> {
  folder ??= seededFolder(DIR)
  return folder
}

async function runChild(mode: 'join' | 'plain' | 'pinned'): Promise<ChildResult> {
  const dir = await sharedFolder()
  const child = spawnTsChild(
    new URL('./children/attach-fd-child.ts', import.meta.url),
    [dir, String(TENANTS), String(MAX_OPEN), mode],
    { fileLimit: FILE_LIMIT },
  )
  const { code } = await child.exited
  assert.equal(code, 0, `child failed:\n${child.stderr()}`)
  const result = JSON.parse(child.lines.at(-1)!) as ChildResult
  assert.equal(result.limit, FILE_LIMIT, 'the child did not run under the descriptor limit')
  // The reasoning above needs the child's own descriptors to leave room for MAX_OPEN plain handles.
  assert.ok(
    result.baseDescriptors + MAX_OPEN + 8 < FILE_LIMIT,
    `the child starts with ${result.baseDescriptors} descriptors: no room for ${MAX_OPEN} handles under ${FILE_LIMIT}`,
  )
  assert.ok(result.baseDescriptors + 3 * MAX_OPEN > FILE_LIMIT)
  return result
}

test(`ulimit -n ${FILE_LIMIT}, maxOpen ${MAX_OPEN}, ${TENANTS} tenants, no join: the pool never runs out of descriptors`, {
  timeout: 60_000,
  skip,
}, async () => {
  const result = await runChild('plain')
  assert.deepEqual(result.failures, [], `${result.failureCount} requests failed`)
  assert.equal(result.served, MAX_OPEN * 2 + TENANTS * 2)
  assert.deepEqual(result.warnings, [], 'plain handles alone fit under the limit: maxOpen must not be lowered')
  assert.equal(result.maxOpenSeen, MAX_OPEN)
})

test(`ulimit -n ${FILE_LIMIT}, maxOpen ${MAX_OPEN}, ${TENANTS} tenants, every query joins apex: each succeeds with its row; an ATTACH out of descriptors evicts and retries`, {
  timeout: 60_000,
  skip,
}, async () => {
  const result = await runChild('join')
  assert.deepEqual(result.failures, [], `${result.failureCount} requests failed`)
  assert.equal(result.served, MAX_OPEN * 2 + TENANTS * 2)
  assert.equal(result.warnings.length, 1, `expected exactly one warning, got ${JSON.stringify(result.warnings)}`)
  assert.match(result.warnings[0]!, /maxOpen/)
  // The descriptors ran out during a join on a tenant already open (a pool hit): inside its ATTACH.
  assert.equal(result.warnedAt?.phase, 'B', JSON.stringify(result.warnedAt))
  assert.equal(result.warnedAt?.hit, true, JSON.stringify(result.warnedAt))
  assert.ok(result.stats.evictions > 0)
  assert.ok(result.stats.open < MAX_OPEN, `maxOpen was not lowered: ${result.stats.open} handles open`)
})

test(`ulimit -n ${FILE_LIMIT}: with every handle pinned, an ATTACH out of descriptors fails (the failure the eviction prevents); unpinned, all joins succeed`, {
  timeout: 60_000,
  skip,
}, async () => {
  const result = await runChild('pinned')
  assert.ok(result.pinned, 'the child did not run the pinned phase')
  assert.ok(
    result.pinned.failure !== undefined,
    `all ${result.pinned.joined} pinned joins succeeded: the limit is too high to show anything`,
  )
  assert.ok(result.pinned.joined > 0 && result.pinned.joined < MAX_OPEN, JSON.stringify(result.pinned))
  assert.match(`${result.pinned.failure.code} ${result.pinned.failure.message}`, /CANTOPEN|unable to open|descriptor/i)
  // After the pinned scopes ended, the pool could make room again.
  assert.deepEqual(result.failures, [], `${result.failureCount} requests failed`)
  assert.equal(result.served, TENANTS)
})
