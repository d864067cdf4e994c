/**
 * Per-tenant encryption at rest (issue 17, part 5): libSQL local mode with a key
 * resolver against the same storage unencrypted, in one run.
 *
 * - point select in one long scope (`t.db`, statement cache warm);
 * - `withTenant` per call (a new scope per point select, the handle pooled);
 * - a pool miss: a cyclic scan over more tenants than `maxOpen`, so every
 *   scope opens a file (with its key) and closes the least recently used one.
 *
 * Printed as encrypted / plain ratios (the machine's absolute times vary; the
 * ratios are what to compare). Env: BENCH_TENANTS (default 200), BENCH_ROUNDS.
 */
import { libsqlStorage } from '@shardines/adapter-libsql'
import { createShardines, type Migration } from '@shardines/core'
import { type Generated, sql } from 'kysely'
import { tempDir } from '../test/helpers/temp-dir.js'
import { asyncCase, compare } from './lib/measure.js'
import { printHeader, printTable, ratio, us } from './lib/table.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 200)
const MAX_OPEN = 32
const ROWS = 100

interface ItemsDB {
  items: { id: Generated<number>; name: string; price: number }
}

const tenant: Record<string, Migration> = {
  '001_items': {
    async up(db) {
      await db.schema
        .createTable('items')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('price', 'integer', (c) => c.notNull())
        .execute()
    },
  },
}

async function build(encrypted: boolean) {
  const dir = tempDir('shardines-bench-enc-')
  const shard = createShardines<Record<string, never>, ItemsDB>({
    storage: libsqlStorage({
      mode: 'local',
      dir,
      maxOpen: MAX_OPEN,
      synchronous: 'off',
      ...(encrypted ? { encryptionKey: (name: string) => `bench-key-${name}` } : {}),
    }),
    migrations: { tenant },
  })
  const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(4, '0')}`)
  for (const id of ids) {
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('items')
        .values(Array.from({ length: ROWS }, (_, k) => ({ name: `item ${k}`, price: k })))
        .execute(),
    )
  }
  return { shard, ids }
}

printHeader('encryption: libSQL local, a key per tenant vs unencrypted')
const plain = await build(false)
const encrypted = await build(true)

// Point select in one long scope: each case holds its scope open across the rounds.
const inScope = async (which: typeof plain) => {
  let release!: () => void
  let db!: Parameters<Parameters<typeof which.shard.withTenant>[1]>[0]['db']
  const ready = new Promise<void>((resolve) => {
    void which.shard.withTenant(which.ids[0] as string, (t) => {
      db = t.db
      resolve()
      return new Promise<void>((r) => {
        release = r
      })
    })
  })
  await ready
  return { db, release }
}
const plainScope = await inScope(plain)
const encScope = await inScope(encrypted)

const pointCases = [
  asyncCase('plain: point select in a scope', (i) =>
    plainScope.db
      .selectFrom('items')
      .selectAll()
      .where('id', '=', (i % ROWS) + 1)
      .executeTakeFirst(),
  ),
  asyncCase('encrypted: point select in a scope', (i) =>
    encScope.db
      .selectFrom('items')
      .selectAll()
      .where('id', '=', (i % ROWS) + 1)
      .executeTakeFirst(),
  ),
  asyncCase('plain: withTenant per call', (i) =>
    plain.shard.withTenant(plain.ids[1] as string, (t) =>
      t.db
        .selectFrom('items')
        .selectAll()
        .where('id', '=', (i % ROWS) + 1)
        .executeTakeFirst(),
    ),
  ),
  asyncCase('encrypted: withTenant per call', (i) =>
    encrypted.shard.withTenant(encrypted.ids[1] as string, (t) =>
      t.db
        .selectFrom('items')
        .selectAll()
        .where('id', '=', (i % ROWS) + 1)
        .executeTakeFirst(),
    ),
  ),
]
const points = await compare(pointCases)
plainScope.release()
encScope.release()

// Every scope a miss: cycling over TENANTS > MAX_OPEN tenants.
const cursors = [0, 0]
const missCases = [
  asyncCase('plain: pool miss (open, version check, select, evict)', () =>
    plain.shard.withTenant(plain.ids[cursors[0]++ % TENANTS] as string, (t) =>
      sql`select count(*) as n from items`.execute(t.db),
    ),
  ),
  asyncCase('encrypted: pool miss (open with its key, version check, select, evict)', () =>
    encrypted.shard.withTenant(encrypted.ids[cursors[1]++ % TENANTS] as string, (t) =>
      sql`select count(*) as n from items`.execute(t.db),
    ),
  ),
]
const misses = await compare(missCases, { batchMs: 60 })

const rows = [
  ['point select in a scope', points[0], points[1]],
  ['withTenant per call', points[2], points[3]],
  ['pool miss', misses[0], misses[1]],
] as const
printTable(
  'encrypted vs plain (libSQL local mode, same run)',
  ['operation', 'plain', 'encrypted', 'encrypted / plain'],
  rows.map(([name, p, e]) => [name, us(p?.median ?? 0), us(e?.median ?? 0), ratio(e?.median ?? 0, p?.median ?? 1)]),
)
console.log(
  `hits/misses: plain ${JSON.stringify(plain.shard.stats())}, encrypted ${JSON.stringify(encrypted.shard.stats())}`,
)
await plain.shard.close()
await encrypted.shard.close()
