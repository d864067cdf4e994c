/**
 * The model layer against the Kysely queries it stands for (issue 6), in one
 * hot tenant, everything inside one long scope (scope entry amortized away).
 *
 * 1. `t.models.Document.find(id)` vs `t.db.selectFrom('documents').selectAll()
 *    .where('id', '=', id).executeTakeFirst()` in the same scope. Bar ≤ 1.1×.
 * 2. A 100-row list with a belongsTo-apex include,
 *    `t.models.Document.include('owner').all()`, vs the hand-written Kysely
 *    left join of `apex.accounts` producing the same nested rows. Bar ≤ 1.1×.
 *    The flat join (no nesting, a different shape) is printed for reference.
 */
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, defineModels, tenanted } from '@shardines/core'
import { type ApexDB, apexMigrations, type TenantDB, tempDir, tenantMigrations } from './lib/fixture.js'
import { compare, type Measurement } from './lib/measure.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'

const DOCUMENTS = 100
const ACCOUNTS = 40
const TENANT = 'hot'

printHeader('models vs the equivalent Kysely queries, one hot tenant')

const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts'),
  Plan: apex('plans'),
  Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
  Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
})
const shard = createShardines({
  storage: sqliteStorage({ dir: tempDir('models') }),
  migrations: { apex: apexMigrations, tenant: tenantMigrations },
  models,
})
await shard.migrate.apex()
await shard.models.Account.createMany(
  Array.from({ length: ACCOUNTS }, (_, i) => ({ email: `user${i}@x.test`, plan: i % 3 ? 'free' : 'pro' })),
)
await shard.tenants.create(TENANT)
await shard.withTenant(TENANT, (t) =>
  t.models.Document.createMany(
    // Every tenth document points at an account that does not exist (owner: null).
    Array.from({ length: DOCUMENTS }, (_, i) => ({
      title: `document ${i}`,
      owner_id: i % 10 === 9 ? 10_000 + i : (i % ACCOUNTS) + 1,
      status: i % 2 ? 'done' : 'open',
    })),
  ),
)

const id = (i: number) => (i % DOCUMENTS) + 1

/** A case that runs `n` operations inside one scope of the hot tenant. */
function inScope(
  name: string,
  op: (t: Parameters<Parameters<typeof shard.withTenant>[1]>[0], i: number) => Promise<unknown>,
) {
  return {
    name,
    run: (n: number) =>
      shard.withTenant(TENANT, async (t) => {
        for (let i = 0; i < n; i++) await op(t, i)
      }),
  }
}

const handJoinNested = (t: Parameters<Parameters<typeof shard.withTenant>[1]>[0]) =>
  t.db
    .selectFrom('documents as d')
    .leftJoin('apex.accounts as a', 'a.id', 'd.owner_id')
    .selectAll('d')
    .select(['a.id as owner_id_', 'a.email as owner_email', 'a.plan as owner_plan'])
    .execute()
    .then((rows) =>
      rows.map((r) => ({
        id: r.id,
        title: r.title,
        owner_id: r.owner_id,
        status: r.status,
        owner: r.owner_id_ === null ? null : { id: r.owner_id_, email: r.owner_email, plan: r.owner_plan },
      })),
    )

// The two shapes agree before anything is timed.
await shard.withTenant(TENANT, async (t) => {
  const viaModel = await t.models.Document.include('owner').all()
  const byHand = await handJoinNested(t)
  if (JSON.stringify(viaModel) !== JSON.stringify(byHand) || viaModel.length !== DOCUMENTS) {
    throw new Error('the model include and the hand-written join disagree')
  }
  if (
    JSON.stringify(await t.models.Document.find(7)) !==
    JSON.stringify(await t.db.selectFrom('documents').selectAll().where('id', '=', 7).executeTakeFirst())
  ) {
    throw new Error('find and the bare query disagree')
  }
})

const [bareFind, modelFind, shardModelFind] = (await compare([
  inScope('t.db select by id (bare Kysely)', (t, i) =>
    t.db.selectFrom('documents').selectAll().where('id', '=', id(i)).executeTakeFirst(),
  ),
  inScope('t.models.Document.find(id)', (t, i) => t.models.Document.find(id(i))),
  inScope('shard.models.Document.find(id)', (_t, i) => shard.models.Document.find(id(i))),
])) as [Measurement, Measurement, Measurement]

const [handNested, modelInclude, handFlat] = (await compare(
  [
    inScope('hand-written join + nesting (same rows)', (t) => handJoinNested(t)),
    inScope("t.models.Document.include('owner').all()", (t) => t.models.Document.include('owner').all()),
    inScope('hand-written join, flat rows (reference)', (t) =>
      t.db
        .selectFrom('documents as d')
        .leftJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .selectAll('d')
        .select(['a.email', 'a.plan'])
        .execute(),
    ),
  ],
  { batchMs: 60 },
)) as [Measurement, Measurement, Measurement]

const row = (m: Measurement, base: Measurement) => [
  m.name,
  us(m.median),
  ratio(m.median, base.median),
  `${us(m.min)}–${us(m.max)}`,
]
printTable(
  'find by primary key (median per call; bare Kysely = 1.0×)',
  ['case', 'median', 'vs bare', 'round range'],
  [row(bareFind, bareFind), row(modelFind, bareFind), row(shardModelFind, bareFind)],
)
printTable(
  `${DOCUMENTS}-row list with a belongsTo-apex include (median per list; hand-written nested join = 1.0×)`,
  ['case', 'median', 'vs hand join', 'round range'],
  [row(handNested, handNested), row(modelInclude, handNested), row(handFlat, handNested)],
)

console.log('\nbars:')
console.log(
  `  ${bar(modelFind.median / bareFind.median, 1.1, `Model.find(id) ${ratio(modelFind.median, bareFind.median)} of bare Kysely`)}`,
)
console.log(
  `  ${bar(modelInclude.median / handNested.median, 1.1, `include('owner') list ${ratio(modelInclude.median, handNested.median)} of the hand-written join`)}`,
)
console.log(
  `reference: include('owner') list ${ratio(modelInclude.median, handFlat.median)} of a flat join that does no nesting`,
)

await shard.close()
