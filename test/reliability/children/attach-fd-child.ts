// Tenant queries joined with apex (so each tenant connection ATTACHes the apex file:
// two more descriptors, the file and its -wal) over more tenants than the process has
// descriptors for. Run under a low `ulimit -n`; prints one JSON line.
// Usage: attach-fd-child.ts <dir> <tenantCount> <maxOpen> <mode>
//   join:   phase A reads (no join) the first maxOpen tenants: the pool fills with handles
//           that attach nothing; phase B joins on those same tenants, in the same order:
//           pool hits, so the only files opened are the ATTACHes; phase C joins over every
//           tenant, two rounds, four at a time.
//   plain:  the same tenants and rounds without the join (nothing is attached).
//   pinned: maxOpen scopes held open at once (every handle pinned, nothing to evict), each
//           reads, then each joins in turn; after they end, every tenant joins once more.
import * as fs from 'node:fs'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../../helpers/fixtures.js'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, count, maxOpenArg, mode] = process.argv.slice(2) as [string, string, string, 'join' | 'plain' | 'pinned']
const maxOpen = Number(maxOpenArg)
const warnings: string[] = []
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir, maxOpen, onWarning: (message) => warnings.push(message) }),
  migrations: { tenant: tenantMigrations },
})
const limit = Number(/Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1])
const openDescriptors = () => fs.readdirSync('/proc/self/fd').length
const baseDescriptors = openDescriptors()
const ids = Array.from({ length: Number(count) }, (_, i) => `t${String(i).padStart(4, '0')}`)

type Db = Parameters<Parameters<typeof shard.withTenant>[1]>[0]['db']
const joined = (db: Db) =>
  db
    .selectFrom('documents as d')
    .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
    .select(['d.title', 'a.email'])
    .orderBy('d.id')
    .execute()
const plain = (db: Db) => db.selectFrom('documents').select('title').orderBy('id').execute()

/** What tenant i's query must return. */
function expected(i: number, withJoin: boolean): string {
  const id = ids[i]!
  return withJoin
    ? JSON.stringify([{ title: `${id} doc`, email: `owner-${i}@x.test` }])
    : JSON.stringify([{ title: `${id} doc` }, { title: `${id} unowned` }])
}

const failures: string[] = []
let served = 0
let maxOpenSeen = 0
/** Where the (single) warning was given: the phase, and whether that query was a pool hit. */
let warnedAt: { phase: string; index: number; hit: boolean } | undefined

async function serve(phase: string, i: number, withJoin: boolean): Promise<void> {
  const missesBefore = shard.stats().misses
  const warningsBefore = warnings.length
  try {
    const rows = await shard.withTenant(ids[i]!, (t) => (withJoin ? joined(t.db) : plain(t.db)))
    if (JSON.stringify(rows) !== expected(i, withJoin)) throw new Error(`wrong rows ${JSON.stringify(rows)}`)
    served++
  } catch (error) {
    failures.push(`${phase} ${ids[i]}: ${(error as Error).message}`)
  }
  if (warnedAt === undefined && warnings.length > warningsBefore) {
    warnedAt = { phase, index: i, hit: shard.stats().misses === missesBefore }
  }
  maxOpenSeen = Math.max(maxOpenSeen, shard.stats().open)
}

async function lanes(phase: string, withJoin: boolean): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < ids.length) await serve(phase, next++, withJoin)
    }),
  )
}

const first = Math.min(maxOpen, ids.length)
let pinned: { joined: number; failure?: { name: string; code?: string; message: string } } | undefined

if (mode === 'pinned') {
  // Every handle pinned: when the descriptors run out, nothing can be closed to free one.
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const dbs: Db[] = []
  let readAll!: () => void
  const allRead = new Promise<void>((resolve) => {
    readAll = resolve
  })
  const scopes = ids.slice(0, first).map((id) =>
    shard.withTenant(id, async (t) => {
      await plain(t.db)
      dbs.push(t.db)
      if (dbs.length === first) readAll()
      await gate
    }),
  )
  await Promise.race([allRead, Promise.all(scopes)])
  pinned = { joined: 0 }
  for (const db of dbs) {
    try {
      await joined(db)
      pinned.joined++
    } catch (error) {
      const { name, message, code } = error as Error & { code?: string }
      pinned.failure = { name, message, code }
      break
    }
  }
  release()
  await Promise.allSettled(scopes)
  // Unpinned again: now the pool can make room, and every join succeeds.
  for (let i = 0; i < ids.length; i++) await serve('after', i, true)
} else {
  const withJoin = mode === 'join'
  for (let i = 0; i < first; i++) await serve('A', i, false)
  for (let i = 0; i < first; i++) await serve('B', i, withJoin)
  for (let round = 0; round < 2; round++) await lanes(`C${round}`, withJoin)
}

const stats = shard.stats()
await shard.close()
console.log(
  JSON.stringify({
    limit,
    baseDescriptors,
    served,
    failures: failures.slice(0, 20),
    failureCount: failures.length,
    warnings,
    warnedAt,
    stats,
    maxOpenSeen,
    pinned,
  }),
)
