/**
 * Tenant lifecycle at fleet scale (issue 15).
 *
 * 1. Misses and hits. A cyclic scan over more tenants than `maxOpen` makes
 *    every request a pool miss; the same scan with every handle open makes
 *    every request a hit. (The bar on a miss's open path against raw
 *    better-sqlite3 is measured by bench/miss-cost.bench.ts, with the cases
 *    paired round by round.)
 * 2. The identity check on a pool hit (one `lstat` of the tenant's path), as a
 *    fraction of `withTenant` + a point select on a hit.
 * 3. Zipf(1.1) requests over BENCH_TENANTS tenants (default 10,000) at
 *    `maxOpen` 256 against every handle open, in the flat and the hashed layout.
 * 4. Lifecycle operations in a folder of BENCH_TENANTS tenants, flat vs hashed:
 *    create, rename, archive + restore, destroy (ms per operation).
 *
 * Env: BENCH_TENANTS (default 10000), BENCH_ROUNDS (default 5), BENCH_REQUESTS (Zipf requests per round, default 20000).
 */
import * as fs from 'node:fs'
import type { TenantLayout } from '@shardines/adapter-sqlite'
import { type BenchShard, copiedTenantSet, openShard, tenantFile } from './lib/fixture.js'
import { collectGarbage, median } from './lib/measure.js'
import { printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled, zipfSampler } from './lib/zipf.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000)
const SMALL_POOL = 256
const SCAN = 2_000
const ROWS = 20
const idOf = (i: number) => `t${String(i).padStart(5, '0')}`

printHeader(`tenant lifecycle: ${TENANTS} tenants, maxOpen ${SMALL_POOL}, flat vs hashed`)

function request(shard: BenchShard, id: string, row: number): Promise<unknown> {
  return shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', row).executeTakeFirst())
}

/** ns per request over `ids` (one warm-up pass, then the median of ROUNDS passes). */
async function perRequest(shard: BenchShard, ids: readonly string[]): Promise<number> {
  const pass = async () => {
    const start = performance.now()
    for (let i = 0; i < ids.length; i++) await request(shard, ids[i] as string, (i % ROWS) + 1)
    return ((performance.now() - start) * 1e6) / ids.length
  }
  await pass()
  const samples: number[] = []
  for (let r = 0; r < ROUNDS; r++) samples.push(await pass())
  return median(samples)
}

/** ns per `lstat` of a tenant's path plus the identity comparison (the check on every pool hit). */
function identityCheck(file: string): number {
  const reference = fs.lstatSync(file)
  const n = 50_000
  const samples: number[] = []
  for (let r = 0; r < ROUNDS + 1; r++) {
    const start = performance.now()
    let same = 0
    for (let i = 0; i < n; i++) {
      const stat = fs.lstatSync(file, { throwIfNoEntry: false })
      if (stat !== undefined && stat.ino === reference.ino && stat.dev === reference.dev && stat.isFile()) same++
    }
    if (same !== n) throw new Error('identity changed')
    samples.push(((performance.now() - start) * 1e6) / n)
  }
  return median(samples.slice(1))
}

/** ms per lifecycle operation on a few tenants in a folder of TENANTS. */
async function lifecycleOps(dir: string, layout: TenantLayout) {
  const shard = await openShard(dir, { layout })
  const times = {
    create: [] as number[],
    rename: [] as number[],
    archiveRestore: [] as number[],
    destroy: [] as number[],
  }
  for (let i = 0; i < 5; i++) {
    const id = `op${i}`
    let t0 = performance.now()
    await shard.tenants.create(id)
    times.create.push(performance.now() - t0)
    t0 = performance.now()
    await shard.tenants.rename(id, `${id}r`)
    times.rename.push(performance.now() - t0)
    t0 = performance.now()
    await shard.tenants.archive(`${id}r`)
    await shard.tenants.restore(`${id}r`)
    times.archiveRestore.push(performance.now() - t0)
    t0 = performance.now()
    await shard.tenants.destroy(`${id}r`)
    times.destroy.push(performance.now() - t0)
  }
  await shard.close()
  return {
    create: median(times.create),
    rename: median(times.rename),
    archiveRestore: median(times.archiveRestore),
    destroy: median(times.destroy),
  }
}

const random = seededRandom(7)
const ids = Array.from({ length: TENANTS }, (_, i) => idOf(i))
const order = shuffled(ids, random)
const draw = zipfSampler(TENANTS, 1.1, random)
const zipfIds = Array.from({ length: REQUESTS }, () => order[draw()] as string)
const scanIds = shuffled(ids, random).slice(0, SCAN)

const results: Record<TenantLayout, Record<string, number>> = { flat: {}, hashed: {} }
for (const layout of ['flat', 'hashed'] as const) {
  console.error(`[${layout}] building ${TENANTS} tenants`)
  const { dir } = await copiedTenantSet(`lifecycle-${layout}`, TENANTS, idOf, ROWS, { layout })
  const file = (id: string) => tenantFile(dir, id, layout)
  const r = results[layout]
  collectGarbage()
  console.error(`[${layout}] scans and Zipf`)
  const small = await openShard(dir, { maxOpen: SMALL_POOL, layout })
  r.scanMiss = await perRequest(small, scanIds)
  r.zipfSmall = await perRequest(small, zipfIds)
  const smallStats = small.stats()
  r.hitRate = smallStats.hits / Math.max(1, smallStats.hits + smallStats.misses)
  await small.close()
  const all = await openShard(dir, { maxOpen: TENANTS + 1, layout })
  r.scanHit = await perRequest(all, scanIds)
  r.zipfAll = await perRequest(all, zipfIds)
  await all.close()
  r.identity = identityCheck(file(scanIds[0] as string))
  console.error(`[${layout}] lifecycle operations`)
  const ops = await lifecycleOps(dir, layout)
  r.create = ops.create
  r.rename = ops.rename
  r.archiveRestore = ops.archiveRestore
  r.destroy = ops.destroy
}

for (const layout of ['flat', 'hashed'] as const) {
  const r = results[layout] as Record<string, number>
  const n = (key: string) => r[key] as number
  printTable(
    `[${layout}] per request (scan over ${SCAN} tenants; Zipf over ${TENANTS})`,
    ['case', 'per request', 'vs'],
    [
      ['scan, every request a hit (all open)', us(n('scanHit')), '1.00×'],
      [`scan, every request a miss (maxOpen ${SMALL_POOL})`, us(n('scanMiss')), ratio(n('scanMiss'), n('scanHit'))],
      ['Zipf, all open', us(n('zipfAll')), '1.00×'],
      [
        `Zipf, maxOpen ${SMALL_POOL} (hit rate ${(n('hitRate') * 100).toFixed(1)}%)`,
        us(n('zipfSmall')),
        ratio(n('zipfSmall'), n('zipfAll')),
      ],
    ],
  )
  console.log('  the open path of a miss against raw better-sqlite3: bench/miss-cost.bench.ts')
  console.log(
    `  identity check on a hit: ${us(n('identity'))} = ${((100 * n('identity')) / n('scanHit')).toFixed(1)}% of withTenant + point select on a hit`,
  )
  console.log(
    `  lifecycle in a folder of ${TENANTS}: create ${(n('create')).toFixed(2)} ms, rename ${(n('rename')).toFixed(2)} ms, archive + restore ${(n('archiveRestore')).toFixed(2)} ms, destroy ${(n('destroy')).toFixed(2)} ms`,
  )
}
const flat = results.flat as Record<string, number>
const hashed = results.hashed as Record<string, number>
console.log(
  `\nhashed vs flat: Zipf @${SMALL_POOL} ${ratio(hashed.zipfSmall as number, flat.zipfSmall as number)}, miss ${ratio((hashed.scanMiss as number) - (hashed.scanHit as number), (flat.scanMiss as number) - (flat.scanHit as number))}, create ${ratio(hashed.create as number, flat.create as number)}, rename ${ratio(hashed.rename as number, flat.rename as number)}`,
)
