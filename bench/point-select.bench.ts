/**
 * Point select by primary key in one hot tenant (issue 2).
 *
 * Baseline: a raw better-sqlite3 prepared statement on the tenant's file (1.0×).
 * Compared: bare Kysely (SqliteDialect) on the same file, `withTenant` per call,
 * and `shard.db()` / `t.db` inside one long scope (a scope per batch of
 * thousands of queries, so scope entry is amortized away).
 *
 * Bars: `withTenant` per call ≤ 1.0× bare Kysely's time; inside a scope ≤ 0.8×.
 *
 * Node 20 implements AsyncLocalStorage with promise hooks that stay installed
 * once a store has been entered, and they slow every promise in the process.
 * So bare Kysely is measured twice: first before Shardines enters any scope
 * ("ALS off", what an app without Shardines sees), then interleaved with the
 * others ("ALS on"). The bars compare against the "ALS off" figure, the stricter one.
 */
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import { openShard, type TenantDB, tempDir, tenantFile } from './lib/fixture.js'
import { asyncCase, compare, type Measurement, syncCase } from './lib/measure.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'

const ROWS = 1000
const TENANT = 'hot'

printHeader('point select by primary key, one hot tenant')
const dir = tempDir('point')
const shard = await openShard(dir)
await shard.tenants.create(TENANT)
const file = tenantFile(dir, TENANT)

// Rows are written through a raw handle so that no scope (and no ALS hook) exists yet.
const raw = new Database(file)
raw.pragma('busy_timeout = 5000')
const insert = raw.prepare('insert into documents (id, title, owner_id) values (?, ?, ?)')
raw.transaction(() => {
  for (let i = 1; i <= ROWS; i++) insert.run(i, `document ${i}`, i % 50)
})()
const rawSelect = raw.prepare('select * from "documents" where "id" = ?')

const kysely = new Kysely<TenantDB>({ dialect: new SqliteDialect({ database: new Database(file) }) })

const id = (i: number) => (i % ROWS) + 1
const rawCase = syncCase('raw better-sqlite3 prepared statement', (i) => rawSelect.get(id(i)))
const bareCase = (name: string) =>
  asyncCase(name, (i) => kysely.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst())

// Phase 1: before any scope exists.
const phase1 = await compare([rawCase, bareCase('bare Kysely (SqliteDialect), ALS off')])

// Phase 2: everything interleaved, with AsyncLocalStorage active in the process.
const phase2 = await compare([
  rawCase,
  bareCase('bare Kysely (SqliteDialect), ALS on'),
  asyncCase('withTenant per call', (i) =>
    shard.withTenant(TENANT, (t) =>
      t.db.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst(),
    ),
  ),
  {
    name: 'shard.db() inside one long scope',
    run: (n) =>
      shard.withTenant(TENANT, async () => {
        for (let i = 0; i < n; i++) {
          await shard.db().selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst()
        }
      }),
  },
  {
    name: 't.db inside one long scope',
    run: (n) =>
      shard.withTenant(TENANT, async (t) => {
        for (let i = 0; i < n; i++) {
          await t.db.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst()
        }
      }),
  },
])

const [raw1, bareOff] = phase1 as [Measurement, Measurement]
const [raw2, bareOn, perCall, dbScope, tScope] = phase2 as [
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
]
// Phase 2's raw figure is the common baseline (raw is not affected by promise hooks).
const rows = [
  [raw2.name, us(raw2.median), ratio(raw2.median, raw2.median), '', `${us(raw2.min)}–${us(raw2.max)}`],
  [
    bareOff.name,
    us(bareOff.median),
    ratio(bareOff.median, raw1.median),
    '1.00×',
    `${us(bareOff.min)}–${us(bareOff.max)}`,
  ],
  [
    bareOn.name,
    us(bareOn.median),
    ratio(bareOn.median, raw2.median),
    ratio(bareOn.median, bareOff.median),
    `${us(bareOn.min)}–${us(bareOn.max)}`,
  ],
  ...[perCall, dbScope, tScope].map((m) => [
    m.name,
    us(m.median),
    ratio(m.median, raw2.median),
    ratio(m.median, bareOff.median),
    `${us(m.min)}–${us(m.max)}`,
  ]),
]
printTable(
  'median time per query (rounds interleaved; raw of the same phase = 1.0×)',
  ['case', 'median', 'vs raw', 'vs bare Kysely (ALS off)', 'round range'],
  rows,
)

console.log('\nbars (against bare Kysely, ALS off):')
console.log(
  `  ${bar(perCall.median / bareOff.median, 1.0, `withTenant per call ${ratio(perCall.median, bareOff.median)}`)}`,
)
console.log(
  `  ${bar(dbScope.median / bareOff.median, 0.8, `shard.db() in a scope ${ratio(dbScope.median, bareOff.median)}`)}`,
)
console.log(`  ${bar(tScope.median / bareOff.median, 0.8, `t.db in a scope ${ratio(tScope.median, bareOff.median)}`)}`)
console.log('against bare Kysely measured in the same phase (ALS on):')
console.log(
  `  withTenant per call ${ratio(perCall.median, bareOn.median)}, shard.db() in a scope ${ratio(dbScope.median, bareOn.median)}, t.db in a scope ${ratio(tScope.median, bareOn.median)}`,
)
console.log(
  `distance from raw better-sqlite3: withTenant per call +${us(perCall.median - raw2.median)}, in a scope +${us(tScope.median - raw2.median)} per query`,
)

await kysely.destroy()
raw.close()
await shard.close()
