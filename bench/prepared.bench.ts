/**
 * Prepared queries (issue 8): point select by primary key.
 *
 * 1. One hot tenant. Baseline: a raw better-sqlite3 prepared statement (1.0×).
 *    Compared: Drizzle's prepared query on the same file (the path a
 *    performance-minded user would pick instead of us), our `shard.prepare` in
 *    the hot tenant's scope (awaited, and the synchronous read), `Model.find`,
 *    bare Kysely (SqliteDialect), and the async floor (raw's statement behind
 *    one awaited promise). Bars: ours ≤ 1.1× raw, and ≤ Drizzle's.
 * 2. A Zipf(1.1) mix over many tenants: each request enters `withTenant` for
 *    the drawn tenant and runs the prepared query. With `maxOpen` above the
 *    tenant count the statement caches stay warm per handle; with a small
 *    `maxOpen` a miss reopens the file and prepares the statement cold. The
 *    baseline is raw better-sqlite3 with one prepared statement per tenant
 *    held open (what Drizzle users would do: prepare per tenant).
 *
 * Env: BENCH_TENANTS (default 1000) for part 2.
 */
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, type Params } from '@shardines/core'
import Database from 'better-sqlite3'
import { eq, sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core'
import { Kysely, SqliteDialect } from 'kysely'
import {
  type ApexDB,
  apexMigrations,
  openShard,
  type TenantDB,
  tempDir,
  tenantFile,
  tenantMigrations,
} from './lib/fixture.js'
import { asyncCase, compare, syncCase } from './lib/measure.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom, shuffled, zipfSampler } from './lib/zipf.js'

const ROWS = 1000
const id = (i: number) => (i % ROWS) + 1

printHeader('prepared queries: point select by primary key')

// ---- 1. one hot tenant -------------------------------------------------------
const dir = tempDir('prepared')
const shard = await openShard(dir)
await shard.tenants.create('hot')
const file = tenantFile(dir, 'hot')
const seed = new Database(file)
seed.transaction(() => {
  const insert = seed.prepare('insert into documents (id, title, owner_id) values (?, ?, ?)')
  for (let i = 1; i <= ROWS; i++) insert.run(i, `document ${i}`, i % 50)
})()
seed.close()

const raw = new Database(file)
const rawSelect = raw.prepare('select * from "documents" where "id" = ?')

const documents = sqliteTable('documents', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
  owner_id: integer('owner_id'),
  status: text('status').notNull(),
})
const drizzleDb = drizzle(new Database(file))
const drizzlePrepared = drizzleDb
  .select()
  .from(documents)
  .where(eq(documents.id, sql.placeholder('id')))
  .prepare()

const kysely = new Kysely<TenantDB>({ dialect: new SqliteDialect({ database: new Database(file) }) })

const byId = shard.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('documents').selectAll().where('id', '=', p('id')),
)

// Model.find, if the model registry exists in this build.
const core = (await import('@shardines/core')) as Record<string, unknown>
const tenanted = core.tenanted as ((table: string) => unknown) | undefined
const modelShard = tenanted
  ? createShardines<ApexDB, TenantDB, any>({
      storage: sqliteStorage({ dir }),
      migrations: { apex: apexMigrations, tenant: tenantMigrations },
      models: { Document: tenanted('documents') },
    } as never)
  : undefined

let results: Awaited<ReturnType<typeof compare>> = []
await shard.withTenant('hot', async () => {
  const inScope = async () => {
    const cases = [
      syncCase('raw better-sqlite3 prepared statement', (i) => rawSelect.get(id(i))),
      syncCase("Drizzle's prepared query (.get, synchronous)", (i) => drizzlePrepared.get({ id: id(i) })),
      asyncCase("Drizzle's prepared query, awaited", async (i) => await drizzlePrepared.get({ id: id(i) })),
      asyncCase('shard.prepare(...).executeTakeFirst in a scope', (i) => byId.executeTakeFirst({ id: id(i) })),
      syncCase('shard.prepare(...).executeTakeFirstSync in a scope', (i) => byId.executeTakeFirstSync({ id: id(i) })),
      asyncCase('bare Kysely (SqliteDialect)', (i) =>
        kysely.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst(),
      ),
      // The least any promise-returning API can cost: raw's statement, one
      // promise, one await. Under AsyncLocalStorage (which withTenant needs),
      // Node 20 spends ~60 ns more on every promise than without it.
      asyncCase('async floor: await Promise.resolve(raw statement)', (i) => Promise.resolve(rawSelect.get(id(i)))),
    ]
    return compare(cases)
  }
  results = await inScope()
})
if (modelShard) {
  const model = await modelShard.withTenant('hot', async (t: any) => {
    const [m] = await compare([
      asyncCase('Model.find(id) in a scope', (i) => t.models.Document.find(id(i))),
      syncCase('raw (again, for the model row)', (i) => rawSelect.get(id(i))),
    ])
    return m
  })
  if (model) results.push(model)
  await modelShard.close()
}
const rawNs = results[0]!.median
const drizzleNs = results[1]!.median
printTable(
  'one hot tenant',
  ['case', 'median', 'vs raw', 'vs Drizzle prepared'],
  results.map((m) => [m.name, us(m.median), ratio(m.median, rawNs), ratio(m.median, drizzleNs)]),
)
const ours = results[3]!.median
const oursSync = results[4]!.median
console.log(bar(ours / rawNs, 1.1, 'executeTakeFirst vs raw better-sqlite3'))
console.log(bar(ours / drizzleNs, 1.0, "executeTakeFirst vs Drizzle's prepared (synchronous)"))
console.log(bar(ours / results[2]!.median, 1.0, "executeTakeFirst vs Drizzle's prepared, awaited like ours"))
console.log(bar(oursSync / rawNs, 1.1, 'executeTakeFirstSync vs raw better-sqlite3'))
console.log(bar(oursSync / drizzleNs, 1.0, "executeTakeFirstSync vs Drizzle's prepared (synchronous)"))
const floor = results[6]!.median
console.log(
  `executeTakeFirst: ${us(ours - floor)} above the async floor, which is itself ${ratio(floor, rawNs)} raw's time`,
)
await shard.close()

// ---- 2. a Zipf mix over many tenants ------------------------------------------
const TENANTS = Number(process.env.BENCH_TENANTS ?? 1000)
const zdir = tempDir('prepared-zipf')
const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, '0')}`)
{
  const builder = await openShard(zdir)
  for (const t of ids) await builder.tenants.create(t)
  await builder.close()
  for (const t of ids) {
    const db = new Database(tenantFile(zdir, t))
    db.transaction(() => {
      const insert = db.prepare('insert into documents (id, title) values (?, ?)')
      for (let i = 1; i <= 20; i++) insert.run(i, `${t} ${i}`)
    })()
    db.close()
  }
}
const random = seededRandom(42)
const order = shuffled(ids, random)
const draw = zipfSampler(TENANTS, 1.1, random)
const requests = Array.from({ length: 200_000 }, () => order[draw()] as string)
const pick = (i: number) => requests[i % requests.length] as string

const rawHandles = new Map<string, Database.Statement>()
for (const t of ids)
  rawHandles.set(t, new Database(tenantFile(zdir, t)).prepare('select * from documents where id = ?'))

const warm = await openShard(zdir, { maxOpen: TENANTS + 10 })
const cold = await openShard(zdir, { maxOpen: Math.max(8, Math.floor(TENANTS / 40)) })
const warmQuery = warm.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('documents').selectAll().where('id', '=', p('id')),
)
const coldQuery = cold.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('documents').selectAll().where('id', '=', p('id')),
)
const zipf = await compare(
  [
    syncCase('raw: one open handle + statement per tenant', (i) => rawHandles.get(pick(i))!.get((i % 20) + 1)),
    asyncCase(`withTenant + prepared, maxOpen ${TENANTS + 10} (warm caches)`, (i) =>
      warm.withTenant(pick(i), () => warmQuery.executeTakeFirst({ id: (i % 20) + 1 })),
    ),
    asyncCase(
      `withTenant + prepared, maxOpen ${Math.max(8, Math.floor(TENANTS / 40))} (misses reopen, cold cache)`,
      (i) => cold.withTenant(pick(i), () => coldQuery.executeTakeFirst({ id: (i % 20) + 1 })),
    ),
  ],
  { rounds: Number(process.env.BENCH_ROUNDS ?? 9) },
)
printTable(
  `Zipf(1.1) over ${TENANTS} tenants`,
  ['case', 'median', 'vs raw'],
  zipf.map((m) => [m.name, us(m.median), ratio(m.median, zipf[0]!.median)]),
)
const coldStats = cold.stats()
console.log(
  `small pool: hit rate ${((100 * coldStats.hits) / Math.max(1, coldStats.hits + coldStats.misses)).toFixed(1)}%, ${coldStats.evictions} evictions`,
)
await warm.close()
await cold.close()
