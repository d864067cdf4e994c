// The hashed layout at scale: 200,000 tenants (empty files made directly at
// their hashed paths; only the names matter to listing) are listed sorted,
// without duplicates, in bounded memory; create, rename and destroy of real
// tenants among them take about as long as in a folder of 100 (they look up
// one path, never scan the folder). The folder scheme itself is pinned against
// where `tenants.create` really puts files.
//
// 200,000 files need ~62,600 folders. On the 2-core VM's virtual disk (ext4)
// making them took 10–100 s (mkdir alone 22–34 s, then 47–71 s for new empty
// files, 2 s for hard links) and removing them 14–17 s; on tmpfs ~3 s and ~5 s.
// So the folders go to /dev/shm when it is a writable tmpfs with room, else to
// the system temp folder (the diagnostics say which, and how long each phase
// took). Both folders compared are on the same file system, so the O(1) check
// is fair.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, test } from 'node:test'
import { createShardines } from '@shardines/core'
import { type ApexDB, makeShard, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { fnv1a32, hashedFolder, hashedRelativePath } from '../helpers/hashed-layout.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'

const TENANTS = 200_000
const SMALL = 100
/** Each of create, rename and destroy is timed this many times in each folder (alternating), and the medians compared. */
const ROUNDS = 9
const MB = 1024 * 1024

/**
 * SHARDINES_SCALE_TMP if set; else /dev/shm when it is a tmpfs with room for
 * the folders (inodes, a little space); else the system temp folder.
 */
function fastTempRoot(): string {
  if (process.env.SHARDINES_SCALE_TMP) return process.env.SHARDINES_SCALE_TMP
  try {
    const stat = fs.statfsSync('/dev/shm')
    fs.accessSync('/dev/shm', fs.constants.W_OK)
    const TMPFS_MAGIC = 0x01021994
    if (stat.type === TMPFS_MAGIC && stat.ffree > 400_000 && stat.bavail * stat.bsize > 256 * MB) return '/dev/shm'
  } catch {
    // No /dev/shm (not Linux), or not usable.
  }
  return os.tmpdir()
}

/** A fresh folder under `root`, removed when the file's tests end. */
function scratchDir(root: string): string {
  const dir = fs.mkdtempSync(path.join(root, 'shardines-scale-'))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function hashedShard(dir: string) {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { layout: 'hashed' }),
    migrations: { tenant: tenantMigrations },
  })
  return { shard, dir }
}

/** `count` ids that sort as they are numbered (`t000000`, `t000001`, …). */
const idsOf = (count: number, prefix = 't') =>
  Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`)

/**
 * Empty files at the hashed paths of `ids`, each folder made once. They are
 * hard links to a few empty files in `templates` (ext4 allows 65,000 links per
 * file): a link is a name without a new inode, several times cheaper to make
 * and remove than a new file on a disk, and listing reads only names.
 */
function fillHashed(dir: string, templates: string, ids: readonly string[]): number {
  fs.mkdirSync(templates, { recursive: true })
  const sources = Array.from({ length: Math.ceil(ids.length / 50_000) }, (_, i) => {
    const file = path.join(templates, `empty-${i}`)
    if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'w'))
    return file
  })
  const folders = new Set(ids.map(hashedFolder))
  for (const folder of folders) fs.mkdirSync(path.join(dir, 'tenants', folder), { recursive: true })
  ids.forEach((id, i) => {
    fs.linkSync(sources[Math.floor(i / 50_000)] as string, path.join(dir, hashedRelativePath(id)))
  })
  return folders.size
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await run()
  return performance.now() - started
}

test('the hashed layout files a tenant under two hex bytes of FNV-1a (32 bits) of its id', async () => {
  // The replica in the helper is the standard FNV-1a: published test vectors.
  assert.equal(fnv1a32(''), 0x811c9dc5)
  assert.equal(fnv1a32('a'), 0xe40c292c)
  assert.equal(fnv1a32('foobar'), 0xbf9cf968)
  const { shard, dir } = await makeShard({ storageOptions: { layout: 'hashed' } })
  const ids = ['acme', '0', 'tenant-42', 'a_b-c', 'z'.repeat(64), 't000000', 't199999']
  for (const id of ids) await shard.tenants.create(id)
  const files = snapshotTree(dir).filter((p) => p.startsWith('tenants/') && !p.endsWith('/'))
  assert.deepEqual(files, ids.map(hashedRelativePath).sort())
  // …and a tenant filed there by hand is found, listed and opened.
  const ids2: string[] = []
  for await (const id of shard.tenants.list()) ids2.push(id)
  assert.deepEqual(ids2, [...ids].sort())
  assert.match(hashedFolder('acme'), /^[0-9a-f]{2}\/[0-9a-f]{2}$/)
  await shard.close()
})

test(`${TENANTS.toLocaleString('en')} tenants in the hashed layout: list() sorted and complete in bounded memory; create, rename, destroy as fast as among ${SMALL}`, {
  timeout: 240_000,
}, async (t) => {
  const t0 = performance.now()
  const root = fastTempRoot()
  const scratch = scratchDir(root)
  const big = hashedShard(path.join(scratch, 'big'))
  const small = hashedShard(path.join(scratch, 'small'))
  const ids = idsOf(TENANTS)
  let started = performance.now()
  const folders = fillHashed(big.dir, path.join(scratch, 'templates'), ids)
  fillHashed(small.dir, path.join(scratch, 'templates'), idsOf(SMALL))
  t.diagnostic(
    `made ${TENANTS} empty tenant files in ${folders} folders under ${root} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  )

  // list(): every id once, in order, compared as it streams (this test keeps nothing of its own).
  const base = process.memoryUsage()
  let peakRss = base.rss
  let peakHeap = base.heapUsed
  const sample = () => {
    const now = process.memoryUsage()
    peakRss = Math.max(peakRss, now.rss)
    peakHeap = Math.max(peakHeap, now.heapUsed)
  }
  const sampler = setInterval(sample, 10)
  let count = 0
  let firstAfter = Number.NaN
  started = performance.now()
  try {
    for await (const id of big.shard.tenants.list()) {
      if (count === 0) firstAfter = performance.now() - started
      if (id !== ids[count]) {
        assert.fail(`list() yielded ${JSON.stringify(id)} at position ${count}, expected ${JSON.stringify(ids[count])}`)
      }
      count++
      if (count % 10_000 === 0) sample()
    }
  } finally {
    clearInterval(sampler)
  }
  sample()
  const listMs = performance.now() - started
  assert.equal(count, TENANTS, 'list() yielded every tenant')
  const rssGrowth = (peakRss - base.rss) / MB
  const heapGrowth = (peakHeap - base.heapUsed) / MB
  t.diagnostic(
    `list(): ${count} ids in ${(listMs / 1000).toFixed(1)} s (first after ${(firstAfter / 1000).toFixed(1)} s); peak growth RSS ${rssGrowth.toFixed(1)} MB, heap ${heapGrowth.toFixed(1)} MB`,
  )
  assert.ok(rssGrowth < 150, `RSS grew ${rssGrowth.toFixed(1)} MB while listing`)

  // create, rename, destroy of real tenants: the folder's size must not matter.
  const times = {
    big: { create: [] as number[], rename: [] as number[], destroy: [] as number[] },
    small: { create: [] as number[], rename: [] as number[], destroy: [] as number[] },
  }
  // Round 0 warms both up (migrations compiled, statements prepared) and is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [name, folder] of round % 2 === 0
      ? ([
          ['big', big],
          ['small', small],
        ] as const)
      : ([
          ['small', small],
          ['big', big],
        ] as const)) {
      const shard = folder.shard
      const id = `real-${round}`
      const renamed = `renamed-${round}`
      const create = await timed(() => shard.tenants.create(id))
      const rename = await timed(() => shard.tenants.rename(id, renamed))
      assert.ok(fs.existsSync(path.join(folder.dir, hashedRelativePath(renamed))))
      assert.equal(
        await shard
          .withTenant(renamed, (tx) => tx.db.selectFrom('documents').selectAll().execute())
          .then((r) => r.length),
        0,
      )
      const destroy = await timed(() => shard.tenants.destroy(renamed))
      assert.ok(!fs.existsSync(path.join(folder.dir, hashedRelativePath(renamed))))
      if (round === 0) continue
      times[name].create.push(create)
      times[name].rename.push(rename)
      times[name].destroy.push(destroy)
    }
  }
  const report: string[] = []
  for (const op of ['create', 'rename', 'destroy'] as const) {
    const b = median(times.big[op])
    const s = median(times.small[op])
    report.push(`${op} ${b.toFixed(2)} ms among ${TENANTS} vs ${s.toFixed(2)} ms among ${SMALL}`)
  }
  t.diagnostic(`medians of ${ROUNDS}: ${report.join('; ')}`)
  for (const op of ['create', 'rename', 'destroy'] as const) {
    const b = median(times.big[op])
    const s = median(times.small[op])
    assert.ok(
      b <= 5 * s,
      `${op} takes ${b.toFixed(2)} ms among ${TENANTS} tenants, ${s.toFixed(2)} ms among ${SMALL}: not O(1)`,
    )
  }
  await big.shard.close()
  await small.shard.close()
  t.diagnostic(`total ${((performance.now() - t0) / 1000).toFixed(1)} s, before removing the folders`)
})
