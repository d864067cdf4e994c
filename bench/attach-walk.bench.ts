/**
 * The ATTACH compiler's schema walk (issue 3): tenant point select with the
 * walk vs without it. Bar: with the walk ≤ 1.05× the time.
 *
 * The walk happens inside `AttachQueryCompiler` (a `SqliteQueryCompiler`
 * subclass that records schemas, refuses writes to attached databases and
 * qualifies tables with `main` while it compiles). So the comparison swaps
 * only the compiler and keeps everything else equal:
 *
 * 1. compile only: `SqliteQueryCompiler` vs `AttachQueryCompiler` on the same
 *    operation-node tree (a point select, and a join with apex);
 * 2. compile + execute through the same stack `t.db` uses (scoped connection,
 *    the handle's statement cache) on the tenant's handle, with either compiler;
 * 3. for context, `t.db` inside a scope against bare Kysely (SqliteDialect).
 */
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect, SqliteQueryCompiler } from 'kysely'
import { AttachQueryCompiler } from '../packages/core/dist/attach/attach-query-compiler.js'
import { bindHandle } from '../packages/core/dist/connection/handle-binding.js'
import { createBoundKysely, plainCompiler } from '../packages/core/dist/connection/kysely-factory.js'
import { type ApexDB, apexMigrations, type TenantDB, tempDir, tenantFile, tenantMigrations } from './lib/fixture.js'
import { asyncCase, compare, type Measurement, syncCase } from './lib/measure.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'

const ROWS = 1000
const TENANT = 'hot'
type ScopeDB = TenantDB & { 'apex.accounts': ApexDB['accounts'] }

printHeader('ATTACH compiler: schema walk vs plain SQLite compiler')
const dir = tempDir('walk')
const storage = sqliteStorage({ dir })
const shard = createShardines<ApexDB, TenantDB>({
  storage,
  migrations: { apex: apexMigrations, tenant: tenantMigrations },
})
await shard.migrate.apex()
await shard.tenants.create(TENANT)
await shard.withTenant(TENANT, async (t) => {
  for (let i = 1; i <= ROWS; i++) {
    await t.db
      .insertInto('documents')
      .values({ id: i, title: `document ${i}`, owner_id: i % 50 })
      .execute()
  }
})

// The tenant's own handle, pinned for the whole run (the one `t.db` uses).
const lease = await storage.acquire(TENANT)
const binding = bindHandle(lease.handle, {
  label: TENANT,
  owner: {},
  isClosed: null,
  locate: (schema: string) => storage.locate(schema),
  maxAttached: storage.maxAttached,
  log: null,
})
const policy = { label: TENANT, readable: new Set(['apex']) }
const withWalk = createBoundKysely<ScopeDB>(binding, new AttachQueryCompiler(policy), [])
const withoutWalk = createBoundKysely<ScopeDB>(binding, plainCompiler(), [])
const bare = new Kysely<TenantDB>({ dialect: new SqliteDialect({ database: new Database(tenantFile(dir, TENANT)) }) })

const id = (i: number) => (i % ROWS) + 1
const pointNode = withWalk.selectFrom('documents').selectAll().where('id', '=', 1).toOperationNode()
const joinNode = withWalk
  .selectFrom('documents as d')
  .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
  .select(['d.id', 'd.title', 'a.email'])
  .where('d.status', '=', 'open')
  .orderBy('d.id')
  .limit(10)
  .toOperationNode()
const plain = new SqliteQueryCompiler()
const walking = new AttachQueryCompiler(policy)
const queryId = { queryId: 'bench' }

const compileOnly = await compare([
  syncCase('point select: SqliteQueryCompiler', () => plain.compileQuery(pointNode, queryId)),
  syncCase('point select: AttachQueryCompiler', () => walking.compileQuery(pointNode, queryId)),
  syncCase('join with apex: SqliteQueryCompiler', () => plain.compileQuery(joinNode, queryId)),
  syncCase('join with apex: AttachQueryCompiler', () => walking.compileQuery(joinNode, queryId)),
])

const select = (db: Kysely<ScopeDB> | Kysely<TenantDB>, i: number) =>
  (db as Kysely<TenantDB>).selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst()
const executed = await compare(
  [
    asyncCase('without walk: plain compiler, t.db stack', (i) => select(withoutWalk, i)),
    asyncCase('with walk: AttachQueryCompiler, t.db stack', (i) => select(withWalk, i)),
    {
      name: 't.db inside one long scope',
      run: (n) =>
        shard.withTenant(TENANT, async (t) => {
          for (let i = 0; i < n; i++) await select(t.db as unknown as Kysely<TenantDB>, i)
        }),
    },
    asyncCase('bare Kysely (SqliteDialect)', (i) => select(bare, i)),
  ],
  { rounds: Number(process.env.BENCH_ROUNDS ?? 21) },
)

const pairs = (ms: Measurement[]) => ms.map((m, i) => [m, ms[i - (i % 2)] as Measurement] as const)
printTable(
  'compile only (median per compile; ratio against the plain compiler on the same tree)',
  ['case', 'median', 'vs plain', 'round range'],
  pairs(compileOnly).map(([m, base]) => [
    m.name,
    us(m.median),
    ratio(m.median, base.median),
    `${us(m.min)}–${us(m.max)}`,
  ]),
)
const [without, withIt, scoped, bareM] = executed as [Measurement, Measurement, Measurement, Measurement]
printTable(
  'compile + execute, point select by primary key (ratio against the plain compiler)',
  ['case', 'median', 'vs without walk', 'vs bare Kysely', 'round range'],
  executed.map((m) => [
    m.name,
    us(m.median),
    ratio(m.median, without.median),
    ratio(m.median, bareM.median),
    `${us(m.min)}–${us(m.max)}`,
  ]),
)
console.log(`\n  ${bar(withIt.median / without.median, 1.05, `with the walk ${ratio(withIt.median, without.median)}`)}`)
console.log(`  t.db in a scope: ${ratio(scoped.median, bareM.median)} bare Kysely`)

lease.release()
await bare.destroy()
await shard.close()
