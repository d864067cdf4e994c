// Property: a random query over tenant tables and apex tables, run by a tenant
// scope (tenant file + apex attached), returns exactly the rows the same query
// returns when all four tables live in ONE plain SQLite database queried with
// plain Kysely. The grammar: a start table, up to three inner/left joins along
// foreign-key-like edges, where-predicates (comparisons, null tests, IN
// subqueries over either side), distinct, optionally wrapped in a UNION of
// two such selects or read through a CTE, then a total order, limit/offset.
// FC_SEED=<n> replays a run.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { type Expression, Kysely, type SqlBool, SqliteDialect } from 'kysely'
import { apexMigrations, tenantMigrations } from '../helpers/fixture-schema.js'
import { tempDir } from '../helpers/temp-dir.js'
import { makeAttachShard } from './attach-helpers.js'

type Alias = 'd' | 'c' | 'a' | 'p'
type ColType = 'int' | 'text'

const TABLES: Record<Alias, { name: string; apex: boolean; cols: Record<string, ColType> }> = {
  d: { name: 'documents', apex: false, cols: { id: 'int', title: 'text', owner_id: 'int', status: 'text' } },
  c: { name: 'comments', apex: false, cols: { id: 'int', document_id: 'int', body: 'text' } },
  a: { name: 'accounts', apex: true, cols: { id: 'int', email: 'text', plan: 'text' } },
  p: { name: 'plans', apex: true, cols: { id: 'text', name: 'text' } },
}
const ALIASES = Object.keys(TABLES) as Alias[]

/** Join edges, usable in both directions. */
const EDGES: readonly (readonly [Alias, string, Alias, string])[] = [
  ['d', 'owner_id', 'a', 'id'],
  ['c', 'document_id', 'd', 'id'],
  ['a', 'plan', 'p', 'id'],
  ['d', 'title', 'a', 'email'],
  ['c', 'id', 'a', 'id'],
  ['d', 'status', 'p', 'id'],
]

const TEXTS = ['ann', 'bob', 'cy', 'free', 'pro', 'team', 'open', 'Plan'] as const
const OPS = ['=', '<>', '<', '>=', 'is null', 'is not null'] as const

// ---------- data ----------

const dataArb = fc.record({
  accounts: fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 1, max: 6 }),
      email: fc.constantFrom('ann', 'bob', 'cy'),
      plan: fc.constantFrom('free', 'pro', 'team', 'gone'),
    }),
    { selector: (r) => r.id, minLength: 2, maxLength: 6 },
  ),
  plans: fc.uniqueArray(
    fc.record({ id: fc.constantFrom('free', 'pro', 'team', 'open'), name: fc.constantFrom('Free', 'Pro', 'Team') }),
    { selector: (r) => r.id, minLength: 1, maxLength: 4 },
  ),
  documents: fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 1, max: 8 }),
      title: fc.constantFrom('ann', 'bob', 'Plan', 'Spec'),
      owner_id: fc.option(fc.integer({ min: 0, max: 7 }), { nil: null }),
      status: fc.constantFrom('open', 'closed', 'pro'),
    }),
    { selector: (r) => r.id, minLength: 3, maxLength: 8 },
  ),
  comments: fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 1, max: 8 }),
      document_id: fc.integer({ min: 1, max: 8 }),
      body: fc.constantFrom('ann', 'hi', 'free'),
    }),
    { selector: (r) => r.id, maxLength: 8 },
  ),
})
type Data = typeof dataArb extends fc.Arbitrary<infer T> ? T : never

// ---------- queries ----------

const predicateArb = fc.oneof(
  fc.record({
    kind: fc.constant('compare' as const),
    alias: fc.nat(),
    col: fc.nat(),
    op: fc.constantFrom(...OPS),
    int: fc.integer({ min: 0, max: 7 }),
    text: fc.constantFrom(...TEXTS),
  }),
  fc.record({
    kind: fc.constant('in' as const),
    alias: fc.nat(),
    edge: fc.nat(),
    negate: fc.boolean(),
    filterCol: fc.nat(),
    int: fc.integer({ min: 0, max: 7 }),
    text: fc.constantFrom(...TEXTS),
  }),
)
type Predicate = typeof predicateArb extends fc.Arbitrary<infer T> ? T : never

const queryArb = fc.record({
  start: fc.constantFrom(...ALIASES),
  joins: fc.array(fc.record({ edge: fc.nat(), left: fc.boolean() }), { maxLength: 3 }),
  where: fc.array(predicateArb, { maxLength: 2 }),
  where2: fc.array(predicateArb, { maxLength: 2 }),
  shape: fc.constantFrom('plain', 'plain', 'union', 'cte'),
  or: fc.boolean(),
  distinct: fc.boolean(),
  desc: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
  limit: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  offset: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
})
type Query = typeof queryArb extends fc.Arbitrary<infer T> ? T : never

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T
const colsOf = (alias: Alias) => Object.keys(TABLES[alias].cols)

function edgesFrom(alias: Alias) {
  return EDGES.flatMap(([x, xc, y, yc]) => [
    ...(x === alias ? [{ col: xc, other: y, otherCol: yc }] : []),
    ...(y === alias ? [{ col: yc, other: x, otherCol: xc }] : []),
  ])
}

/** Builds the query for `db`, naming tables through `table` ('documents' / 'apex.accounts' vs plain names). */
function build(db: Kysely<any>, q: Query, table: (alias: Alias) => string) {
  const present: Alias[] = [q.start]
  let from = db.selectFrom(`${table(q.start)} as ${q.start}`)
  for (const step of q.joins) {
    const options = present.flatMap((alias) =>
      edgesFrom(alias)
        .filter((e) => !present.includes(e.other))
        .map((e) => ({ from: alias, ...e })),
    )
    if (options.length === 0) break
    const e = pick(options, step.edge)
    const on = [`${e.other}.${e.otherCol}`, `${e.from}.${e.col}`] as const
    from = step.left
      ? from.leftJoin(`${table(e.other)} as ${e.other}`, ...on)
      : from.innerJoin(`${table(e.other)} as ${e.other}`, ...on)
    present.push(e.other)
  }
  const names = present.flatMap((alias) => colsOf(alias).map((col) => `${alias}_${col}`))
  const base = (where: readonly Predicate[]) => {
    let select = from.select(names.map((n) => n.replace('_', '.').concat(` as ${n}`)) as any)
    if (where.length > 0) {
      select = select.where((eb) => {
        const parts = where.map((p) => predicate(eb, p, present, table))
        return q.or ? eb.or(parts) : eb.and(parts)
      })
    }
    return q.distinct ? select.distinct() : select
  }
  let select: any =
    q.shape === 'union'
      ? base(q.where).union(base(q.where2))
      : q.shape === 'cte'
        ? db
            .with('q', () => base(q.where))
            .selectFrom('q')
            .selectAll()
        : base(q.where)
  names.forEach((name, i) => {
    select = select.orderBy(name, q.desc[i % q.desc.length] ? 'desc' : 'asc')
  })
  if (q.limit !== undefined) {
    select = select.limit(q.limit)
    if (q.offset !== undefined) select = select.offset(q.offset)
  }
  return { query: select as ReturnType<typeof base>, present }
}

function value(type: ColType, p: { int: number; text: string }) {
  return type === 'int' ? p.int : p.text
}

function predicate(eb: any, p: Predicate, present: Alias[], table: (alias: Alias) => string): Expression<SqlBool> {
  const alias = pick(present, p.alias)
  if (p.kind === 'compare') {
    const col = pick(colsOf(alias), p.col)
    const ref = `${alias}.${col}`
    if (p.op === 'is null') return eb(ref, 'is', null)
    if (p.op === 'is not null') return eb(ref, 'is not', null)
    return eb(ref, p.op, value(TABLES[alias].cols[col] as ColType, p))
  }
  // alias.col [not] in (select otherCol from other as s where s.filterCol = v)
  const e = pick(edgesFrom(alias), p.edge)
  const filterCol = pick(colsOf(e.other), p.filterCol)
  const sub = eb
    .selectFrom(`${table(e.other)} as s`)
    .select(`s.${e.otherCol}`)
    .where(`s.${filterCol}`, '=', value(TABLES[e.other].cols[filterCol] as ColType, p))
    .where(`s.${e.otherCol}`, 'is not', null)
  return eb(`${alias}.${e.col}`, p.negate ? 'not in' : 'in', sub)
}

// ---------- the two databases ----------

/** The fixture schema's tenant and apex tables in one database (the reference). */
async function createTables(db: Kysely<any>) {
  for (const set of [tenantMigrations, apexMigrations]) {
    for (const migration of Object.values(set)) await migration.up(db)
  }
}

async function load(db: Kysely<any>, rows: Partial<Data>) {
  for (const [name, list] of Object.entries(rows)) {
    await db.deleteFrom(name).execute()
    if (list.length > 0) await db.insertInto(name).values(list).execute()
  }
}

test('random tenant × apex queries return the same rows as one database holding all tables', async () => {
  // Durability is not under test here: skip fsyncs so the data loads stay fast.
  const { shard } = await makeAttachShard({ synchronous: 'off' })
  await shard.tenants.create('acme')
  const reference = new Kysely<any>({
    dialect: new SqliteDialect({ database: new Database(path.join(tempDir('shardines-ref-'), 'one.sqlite3')) }),
  })
  await createTables(reference)

  const shardName = (alias: Alias) => (TABLES[alias].apex ? `apex.${TABLES[alias].name}` : TABLES[alias].name)
  const plainName = (alias: Alias) => TABLES[alias].name
  let queriesRun = 0
  let nonEmpty = 0
  let withApex = 0

  await fc.assert(
    fc.asyncProperty(dataArb, fc.array(queryArb, { minLength: 1, maxLength: 8 }), async (data, queries) => {
      const docIds = new Set(data.documents.map((d) => d.id))
      const comments = data.comments.filter((c) => docIds.has(c.document_id))
      const tenantRows = { comments: [], documents: data.documents, ...{} }
      // Order matters for the foreign key: clear comments first, fill them last.
      await shard.withTenant('acme', async (t) => {
        const db = t.db as unknown as Kysely<any>
        await load(db, tenantRows)
        await load(db, { comments })
      })
      await load(shard.apex as unknown as Kysely<any>, { accounts: data.accounts, plans: data.plans })
      await load(reference, { ...tenantRows, accounts: data.accounts, plans: data.plans })
      await load(reference, { comments })

      await shard.withTenant('acme', async (t) => {
        for (const q of queries) {
          const { query: mine, present } = build(t.db as unknown as Kysely<any>, q, shardName)
          const { query: theirs } = build(reference, q, plainName)
          const compiled = mine.compile().sql
          // Apex tables are qualified with "apex"; the tenant's stay as written, resolved by SQLite.
          for (const alias of present) {
            const table = TABLES[alias].apex ? `"apex"."${TABLES[alias].name}"` : `"${TABLES[alias].name}"`
            assert.ok(compiled.includes(`${table} as "${alias}"`), compiled)
          }
          const expected = await theirs.execute()
          const actual = await mine.execute()
          assert.deepEqual(actual, expected, compiled)
          queriesRun++
          if (expected.length > 0) nonEmpty++
          if (/"apex"\./.test(compiled)) withApex++
        }
      })
    }),
    { numRuns: 150, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
  )
  // The grammar must actually exercise the interesting cases.
  assert.ok(queriesRun >= 60)
  console.log(`${queriesRun} queries, ${nonEmpty} non-empty, ${withApex} with apex`)
  assert.ok(nonEmpty > queriesRun / 4, `${nonEmpty} of ${queriesRun} queries returned rows`)
  assert.ok(withApex > queriesRun / 3, `${withApex} of ${queriesRun} queries used apex`)
  await reference.destroy()
  await shard.close()
})
