// A property test of the statement guard: seeded random sequences of allowed
// statements (the tenant's own rows through the builder, raw SQL, models and
// transactions; apex-join reads; temp tables) interleaved with hostile ones,
// across concurrent scopes of four tenants (and withTenants scopes). An
// in-memory model of every tenant's documents predicts each read and the
// final files; apex must not change, and every hostile step must be refused
// with a ShardinesError of the expected code.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { test } from 'node:test'
import { ShardinesError } from '@shardines/core'
import { type Kysely, sql } from 'kysely'
import { caught, randomPause, seededRandom } from '../helpers/async-helpers.js'
import { hashFile, makeWorld, rowsOf, type Shard, seededDocuments, type World } from './guard-world.js'

type Scope = Parameters<Parameters<Shard['withTenant']>[1]>[0]
type TenantsScope = Parameters<Parameters<Shard['withTenants']>[1]>[0]

interface Doc {
  id: number
  title: string
  owner_id: number | null
  status: string
}

const OWNERS = [1, 2, 3, null, 9]
const EMAILS: Record<number, string> = { 1: 'ann@x.test', 2: 'bob@x.test', 3: 'cy@x.test' }
/** Documents 1 and 2 have comments (a foreign key): never deleted. */
const PINNED = new Set([1, 2])

type Code = 'READ_ONLY_ATTACHMENT' | 'STATEMENT_REFUSED'

/** A hostile statement run in a tenant scope (apex attached first), with the code its refusal carries. */
interface Hostile {
  readonly name: string
  readonly code: Code
  readonly run: (t: Scope, w: World) => Promise<unknown>
}

const rawIn =
  (text: string) =>
  (t: Scope): Promise<unknown> =>
    sql.raw(text).execute(t.db)

/** Hostile statements safe to run concurrently with other scopes of the same tenant (they leave nothing behind). */
const HOSTILE: readonly Hostile[] = [
  {
    name: 'insert into apex',
    code: 'READ_ONLY_ATTACHMENT',
    run: rawIn("insert into apex.accounts (email) values ('evil')"),
  },
  { name: 'update apex', code: 'READ_ONLY_ATTACHMENT', run: rawIn("update apex.plans set name = 'owned'") },
  { name: 'delete apex', code: 'READ_ONLY_ATTACHMENT', run: rawIn('delete from apex.accounts where id > 0') },
  {
    name: 'upsert apex',
    code: 'READ_ONLY_ATTACHMENT',
    run: rawIn("insert into apex.plans values ('pro', 'x') on conflict (id) do update set name = 'x'"),
  },
  { name: 'drop apex table', code: 'READ_ONLY_ATTACHMENT', run: rawIn('drop table apex.plans') },
  { name: 'create apex table', code: 'READ_ONLY_ATTACHMENT', run: rawIn('create table apex.evil (x)') },
  {
    name: 'create apex index',
    code: 'READ_ONLY_ATTACHMENT',
    run: rawIn('create index apex.evil_idx on accounts (plan)'),
  },
  { name: 'analyze apex', code: 'READ_ONLY_ATTACHMENT', run: rawIn('analyze apex') },
  {
    name: 'unqualified insert falling through to apex',
    code: 'READ_ONLY_ATTACHMENT',
    run: rawIn("insert into accounts (email) values ('evil')"),
  },
  {
    name: 'deleteFrom(sql.table(apex.accounts))',
    code: 'READ_ONLY_ATTACHMENT',
    run: (t) => (t.db as Kysely<any>).deleteFrom(sql.table('apex.accounts') as never).execute(),
  },
  {
    name: 'updateTable(sql.id(apex, plans))',
    code: 'READ_ONLY_ATTACHMENT',
    run: (t) =>
      (t.db as Kysely<any>)
        .updateTable(sql.id('apex', 'plans') as never)
        .set({ name: 'x' })
        .execute(),
  },
  {
    name: "attach another tenant's file",
    code: 'STATEMENT_REFUSED',
    run: async (t, w) => {
      const other = w.tenants.find((id) => id !== t.id) as string
      await sql`attach database ${w.tenantFile(other)} as stolen`.execute(t.db)
      await sql`delete from stolen.documents`.execute(t.db)
    },
  },
  { name: 'detach apex', code: 'STATEMENT_REFUSED', run: rawIn('detach apex') },
  { name: 'pragma query_only', code: 'STATEMENT_REFUSED', run: rawIn('pragma query_only = 1') },
  { name: 'pragma foreign_keys', code: 'STATEMENT_REFUSED', run: rawIn('/* x */ PRAGMA "foreign_keys" = off') },
  { name: 'pragma journal_mode', code: 'STATEMENT_REFUSED', run: rawIn('pragma journal_mode = wal') },
  { name: 'pragma apex.user_version', code: 'STATEMENT_REFUSED', run: rawIn('pragma apex.user_version = 5') },
  { name: 'explain pragma', code: 'STATEMENT_REFUSED', run: rawIn('explain pragma busy_timeout = 0') },
  { name: 'begin', code: 'STATEMENT_REFUSED', run: rawIn('begin immediate') },
  { name: 'commit', code: 'STATEMENT_REFUSED', run: rawIn('commit') },
  { name: 'savepoint', code: 'STATEMENT_REFUSED', run: rawIn('savepoint s') },
  {
    name: 'vacuum into',
    code: 'STATEMENT_REFUSED',
    run: (t, w) => sql`vacuum into ${`${w.outside}/${t.id}-copy.sqlite3`}`.execute(t.db),
  },
  { name: 'load_extension', code: 'STATEMENT_REFUSED', run: rawIn("select load_extension('/tmp/nope')") },
  { name: 'fall-through read', code: 'STATEMENT_REFUSED', run: rawIn('select * from accounts') },
  {
    name: 'fall-through in a builder subquery',
    code: 'STATEMENT_REFUSED',
    run: (t) => t.db.selectFrom('documents').select(sql<number>`(select count(*) from plans)`.as('n')).execute(),
  },
]

/** Hostile statements inside withTenants(a, b) (both attached), with their codes. */
const HOSTILE_WITH_TENANTS: readonly {
  readonly name: string
  readonly code: Code
  readonly run: (x: TenantsScope, a: string, b: string) => Promise<unknown>
}[] = [
  {
    name: 'delete other tenant',
    code: 'READ_ONLY_ATTACHMENT',
    run: (x, a) => sql.raw(`delete from "${a}".documents`).execute(x.db),
  },
  {
    name: 'update other tenant',
    code: 'READ_ONLY_ATTACHMENT',
    run: (x, _a, b) => sql.raw(`update "${b}".documents set title = 'x'`).execute(x.db),
  },
  {
    name: 'deleteFrom(sql.table(<b>.documents))',
    code: 'READ_ONLY_ATTACHMENT',
    run: (x, _a, b) => (x.db as Kysely<any>).deleteFrom(sql.table(`${b}.documents`) as never).execute(),
  },
  { name: 'create temp table', code: 'STATEMENT_REFUSED', run: (x) => sql`create temp table t (x)`.execute(x.db) },
  { name: 'pragma', code: 'STATEMENT_REFUSED', run: (x) => sql`pragma query_only = 0`.execute(x.db) },
  { name: 'detach', code: 'STATEMENT_REFUSED', run: (x, a) => sql.raw(`detach "${a}"`).execute(x.db) },
  { name: 'fall-through', code: 'STATEMENT_REFUSED', run: (x) => sql`select * from comments`.execute(x.db) },
]

/** One step of a writer scope, generated against the model (which it updates at generation time). */
type Step =
  | { kind: 'write'; label: string; run: (t: Scope) => Promise<unknown> }
  | { kind: 'read'; label: string; run: (t: Scope) => Promise<unknown>; expected: unknown }
  | { kind: 'hostile'; hostile: Hostile }
  | { kind: 'trigger-trap' }
  | { kind: 'transaction'; docs: Doc[]; hostile: Hostile | undefined }
  | { kind: 'clean-check' }

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T

/** The join read's expected rows: every document with its owner's email (null when apex lacks the owner). */
function joined(docs: Map<number, Doc>) {
  return [...docs.values()]
    .sort((a, b) => a.id - b.id)
    .map((d) => ({ id: d.id, title: d.title, email: d.owner_id === null ? null : (EMAILS[d.owner_id] ?? null) }))
}

function generateWriterSteps(random: () => number, docs: Map<number, Doc>, nextId: () => number): Step[] {
  const steps: Step[] = []
  if (random() < 0.3) steps.push({ kind: 'clean-check' })
  const count = 2 + Math.floor(random() * 5)
  const title = () => `doc-${Math.floor(random() * 1e6).toString(36)}${random() < 0.2 ? " o'quote" : ''}`
  for (let i = 0; i < count; i++) {
    const r = random()
    const ids = [...docs.keys()]
    const deletable = ids.filter((id) => !PINNED.has(id))
    if (r < 0.22) {
      const doc: Doc = { id: nextId(), title: title(), owner_id: pick(random, OWNERS), status: 'open' }
      docs.set(doc.id, { ...doc })
      const how = Math.floor(random() * 3)
      steps.push({
        kind: 'write',
        label: `insert ${doc.id} via ${['builder', 'raw', 'model'][how]}`,
        run: (t) =>
          how === 0
            ? t.db.insertInto('documents').values(doc).execute()
            : how === 1
              ? sql`insert into documents (id, title, owner_id, status) values (${doc.id}, ${doc.title}, ${doc.owner_id}, ${doc.status})`.execute(
                  t.db,
                )
              : t.models.Document.create(doc),
      })
    } else if (r < 0.34 && ids.length > 0) {
      const id = pick(random, ids)
      const next = title()
      // A new object: steps generated earlier (an insert of this row) keep the values they were made with.
      docs.set(id, { ...(docs.get(id) as Doc), title: next })
      const raw = random() < 0.5
      steps.push({
        kind: 'write',
        label: `update ${id} via ${raw ? 'raw' : 'model'}`,
        run: (t) =>
          raw
            ? sql`update main.documents set title = ${next} where id = ${id}`.execute(t.db)
            : t.models.Document.update(id, { title: next }),
      })
    } else if (r < 0.42 && deletable.length > 0) {
      const id = pick(random, deletable)
      docs.delete(id)
      const raw = random() < 0.5
      steps.push({
        kind: 'write',
        label: `delete ${id} via ${raw ? 'raw' : 'builder'}`,
        run: (t) =>
          raw
            ? sql`delete from documents where id = ${id}`.execute(t.db)
            : t.db.deleteFrom('documents').where('id', '=', id).execute(),
      })
    } else if (r < 0.52) {
      steps.push({
        kind: 'read',
        label: 'apex join',
        expected: joined(docs),
        run: (t) =>
          t.db
            .selectFrom('documents as d')
            .leftJoin('apex.accounts as a', 'a.id', 'd.owner_id')
            .select(['d.id', 'd.title', 'a.email'])
            .orderBy('d.id')
            .execute(),
      })
    } else if (r < 0.6) {
      const picked = ids.filter(() => random() < 0.5)
      const name = `tmp_${Math.floor(random() * 1e9)}`
      const drop = random() < 0.6
      steps.push({
        kind: 'read',
        label: `temp table ${name}${drop ? '' : ' (left for the reset)'}`,
        expected: picked.length,
        run: async (t) => {
          await sql`create temp table ${sql.id('temp', name)} (doc_id integer)`.execute(t.db)
          for (const id of picked) await sql`insert into ${sql.id('temp', name)} values (${id})`.execute(t.db)
          const { rows } = await sql<{ n: number }>`
            select count(*) as n from main.documents d join ${sql.id('temp', name)} p on p.doc_id = d.id`.execute(t.db)
          if (drop) await sql`drop table ${sql.id('temp', name)}`.execute(t.db)
          return rows[0]?.n
        },
      })
    } else if (r < 0.66) {
      const hostile = random() < 0.5 ? pick(random, HOSTILE) : undefined
      const batch: Doc[] = [0, 1].map(() => ({
        id: nextId(),
        title: title(),
        owner_id: pick(random, OWNERS),
        status: 'open',
      }))
      // A transaction with a hostile statement in it is rolled back whole.
      if (hostile === undefined) for (const doc of batch) docs.set(doc.id, doc)
      steps.push({ kind: 'transaction', docs: batch, hostile })
    } else if (r < 0.7) {
      steps.push({ kind: 'trigger-trap' })
    } else {
      steps.push({ kind: 'hostile', hostile: pick(random, HOSTILE) })
    }
  }
  return steps
}

interface Tally {
  hostile: number
  refused: number
  allowed: number
  failures: string[]
}

/**
 * Runs a hostile statement in a tenant scope with apex attached. Attachments
 * belong to the connection: a concurrent scope's transaction on the same
 * tenant detaches apex (before its BEGIN IMMEDIATE), and raw SQL does not
 * attach it again, so a statement naming apex can then fail with SQLite's "no
 * such table". That is not the refusal under test: attach again and retry
 * until the guard judges the statement with apex attached.
 */
async function attackWithApex(t: Scope, w: World, hostile: Hostile): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    await t.attach('apex')
    try {
      return await hostile.run(t, w)
    } catch (error) {
      const detached =
        !(error instanceof ShardinesError) &&
        /no such table|unknown database apex/.test(String((error as Error).message))
      if (detached && attempt < 50) continue
      throw error
    }
  }
}

/** Runs a hostile step: it must be refused with a ShardinesError of its code. */
async function expectRefused(tally: Tally, label: string, code: Code, call: () => Promise<unknown>): Promise<void> {
  tally.hostile++
  const error = await caught(call).catch((e: unknown) => e)
  if (error instanceof ShardinesError && error.code === code) tally.refused++
  else
    tally.failures.push(
      `${label}: expected ${code}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    )
}

async function runWriter(w: World, tenant: string, steps: Step[], timing: () => number, tally: Tally): Promise<void> {
  await w.shard.withTenant(tenant, async (t) => {
    for (const step of steps) {
      await randomPause(timing)
      switch (step.kind) {
        case 'write':
          await step.run(t)
          tally.allowed++
          break
        case 'read':
          assert.deepEqual(await step.run(t), step.expected, `${tenant}: ${step.label}`)
          tally.allowed++
          break
        case 'clean-check': {
          const { rows } = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
          assert.deepEqual(rows, [{ n: 0 }], `${tenant}: a scope starts with no temp objects`)
          break
        }
        case 'hostile': {
          const { hostile } = step
          await expectRefused(tally, `${tenant}: ${hostile.name}`, hostile.code, () => attackWithApex(t, w, hostile))
          break
        }
        case 'trigger-trap':
          await t.attach('apex')
          await sql`create temp trigger trap after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end`.execute(
            t.db,
          )
          try {
            await expectRefused(
              tally,
              `${tenant}: innocent insert under an apex-writing temp trigger`,
              'READ_ONLY_ATTACHMENT',
              () => t.db.insertInto('documents').values({ title: 'never stored' }).execute(),
            )
          } finally {
            await sql`drop trigger temp.trap`.execute(t.db)
          }
          break
        case 'transaction': {
          const run = () =>
            t.transaction(async (trx) => {
              await trx.db
                .insertInto('documents')
                .values(step.docs[0] as Doc)
                .execute()
              await randomPause(timing)
              if (step.hostile !== undefined) {
                await trx.db.selectFrom('apex.plans').select('id').execute() // attaches apex inside
                await step.hostile.run({ ...t, db: trx.db } as unknown as Scope, w)
              }
              await trx.models.Document.create(step.docs[1] as Doc)
            })
          if (step.hostile === undefined) {
            await run()
            tally.allowed++
          } else {
            await expectRefused(tally, `${tenant}: in a transaction, ${step.hostile.name}`, step.hostile.code, run)
          }
          break
        }
      }
    }
  })
}

async function runHostileScope(
  w: World,
  tenant: string,
  hostiles: readonly Hostile[],
  timing: () => number,
  tally: Tally,
) {
  await w.shard.withTenant(tenant, async (t) => {
    for (const hostile of hostiles) {
      await randomPause(timing)
      await expectRefused(tally, `${tenant} (concurrent): ${hostile.name}`, hostile.code, () =>
        attackWithApex(t, w, hostile),
      )
    }
  })
}

async function runWithTenantsScope(
  w: World,
  a: string,
  b: string,
  hostiles: readonly (typeof HOSTILE_WITH_TENANTS)[number][],
  timing: () => number,
  tally: Tally,
) {
  await w.shard.withTenants([a, b], async (x) => {
    await x.attach(a)
    await x.attach(b)
    for (const hostile of hostiles) {
      await randomPause(timing)
      await expectRefused(tally, `withTenants(${a}, ${b}): ${hostile.name}`, hostile.code, () => hostile.run(x, a, b))
    }
  })
}

async function property(seed: number, options: Parameters<typeof makeWorld>[0]): Promise<Tally & { ms: number }> {
  const tenants = ['t1', 't2', 't3', 't4']
  const w = await makeWorld({ ...options, tenants })
  // Two generators: the plan (steps, tenants, hostile picks) is fixed by the seed whatever the
  // interleaving; the pauses draw from their own, in whatever order the scopes reach them.
  const random = seededRandom(seed)
  const timing = seededRandom(seed ^ 0x9e3779b9)
  const models = new Map(tenants.map((id) => [id, new Map(seededDocuments(id).map((d) => [d.id, { ...d }]))]))
  const apexBefore = hashFile(w.apexFile)
  let id = 100
  const nextId = () => id++
  const tally: Tally = { hostile: 0, refused: 0, allowed: 0, failures: [] }
  const started = Date.now()
  for (let round = 0; round < 70; round++) {
    const writers = new Set<string>()
    const work: Promise<void>[] = []
    const scopes = 2 + Math.floor(random() * 4)
    for (let s = 0; s < scopes; s++) {
      const tenant = pick(random, tenants)
      const r = random()
      if (r < 0.15) {
        const other = pick(
          random,
          tenants.filter((x) => x !== tenant),
        )
        const hostiles = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(random, HOSTILE_WITH_TENANTS))
        work.push(runWithTenantsScope(w, tenant, other, hostiles, timing, tally))
      } else if (writers.has(tenant) || r < 0.35) {
        // Several scopes of one tenant at once: the extra ones only attack (their refusals change nothing).
        const hostiles = Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(random, HOSTILE))
        work.push(runHostileScope(w, tenant, hostiles, timing, tally))
      } else {
        writers.add(tenant)
        const steps = generateWriterSteps(random, models.get(tenant) as Map<number, Doc>, nextId)
        work.push(runWriter(w, tenant, steps, timing, tally))
      }
    }
    await Promise.all(work)
  }
  const elapsed = Date.now() - started

  assert.deepEqual(tally.failures, [], 'every hostile step refused with its typed error')
  assert.equal(tally.refused, tally.hostile)
  assert.ok(tally.hostile >= 100, `${tally.hostile} hostile steps`)
  assert.ok(tally.allowed >= 100, `${tally.allowed} allowed steps`)
  assert.ok(elapsed < 30_000, `${elapsed} ms`)
  assert.equal(hashFile(w.apexFile), apexBefore, 'apex unchanged')
  assert.deepEqual(fs.readdirSync(w.outside), [], 'nothing vacuumed out')
  for (const tenant of tenants) {
    assert.deepEqual(
      rowsOf(w.tenantFile(tenant), 'sqlite_master')
        .map((r) => r.name)
        .sort(),
      [
        'comments',
        'documents',
        'kysely_migration',
        'kysely_migration_lock',
        'sqlite_autoindex_kysely_migration_1',
        'sqlite_autoindex_kysely_migration_lock_1',
      ],
      `${tenant}'s schema is the template's`,
    )
    const expected = [...(models.get(tenant) as Map<number, Doc>).values()].sort((a, b) => a.id - b.id)
    assert.deepEqual(rowsOf(w.tenantFile(tenant), 'documents'), expected, `${tenant}'s file equals the model`)
    assert.deepEqual(
      rowsOf(w.tenantFile(tenant), 'comments').map((c) => c.body),
      [`${tenant} first`, `${tenant} second`],
    )
    await w.shard.withTenant(tenant, async (t) => {
      const temp = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(t.db)
      assert.deepEqual(temp.rows, [{ n: 0 }], `${tenant}: no temp objects left`)
      await t.attach('apex')
      const { rows } = await sql<{ name: string; file: string }>`pragma database_list`.execute(t.db)
      assert.deepEqual(
        rows.map((r) => [r.name, r.file]).filter(([name]) => name !== 'temp'),
        [
          ['main', w.tenantFile(tenant)],
          ['apex', w.apexFile],
        ],
      )
      assert.deepEqual((await sql`select * from pragma_foreign_keys`.execute(t.db)).rows, [{ foreign_keys: 1 }])
      assert.deepEqual((await sql`pragma journal_mode`.execute(t.db)).rows, [{ journal_mode: 'delete' }])
    })
  }
  await w.shard.close()
  return { ...tally, ms: elapsed }
}

test('random allowed and hostile statements across concurrent scopes keep every file as the model says (seed 1)', async (t) => {
  // GUARD_PROPERTY_SEED=<n> explores another plan.
  const { hostile, allowed, ms } = await property(Number(process.env.GUARD_PROPERTY_SEED ?? 0x5eed_0001), {})
  t.diagnostic(`${allowed} allowed and ${hostile} hostile steps in ${ms} ms`)
})

test('the same with statement logging on and no statement cache (every statement judged again) (seed 2)', async (t) => {
  let logged = 0
  const { hostile, allowed, ms } = await property(0x5eed_0002, {
    statementCacheSize: 0,
    log: () => {
      logged++
    },
  })
  assert.ok(logged > 0)
  t.diagnostic(`${allowed} allowed and ${hostile} hostile steps in ${ms} ms, ${logged} log events`)
})
