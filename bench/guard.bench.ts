/**
 * The statement guard's cost (issue 13).
 *
 * Hot paths (a statement whose verdict is cached on the handle) pay one AND of
 * two integers per run; `point-select.bench.ts` and `prepared.bench.ts` measure
 * them against bare Kysely and raw better-sqlite3. This file measures what the
 * guard adds once per handle and SQL string: the cold verdict.
 *
 * Workload: 1,000 distinct SQL strings per round (point selects and small
 * joins that differ in a literal, so none is cached), on one tenant file.
 * - plain prepare: raw better-sqlite3 `db.prepare(sql)` of each string (the bar's baseline);
 * - verdict on a clean connection (nothing attached, nothing in temp): judged from its
 *   prepared statement's flags (the adapter keeps that statement and runs it);
 * - verdict with apex attached, temp empty: the same, after checking that no name the SQL
 *   writes unqualified is an apex object (apex's names, re-read when its schema version
 *   changes: one pragma per verdict). Measured twice: strings that name
 *   only main, and strings where every read joins `apex.accounts` (the ATTACH compiler's shape);
 * - verdict from EXPLAIN (what a string costs when temp holds a view, or it writes while temp
 *   holds objects, or a name it writes unqualified is an apex object, or it writes and names apex);
 * - raw first run: `db.prepare(sql).get(id)`;
 * - Shardines first run: the same string as raw SQL in a tenant scope (`sql.raw(…).execute(t.db)`):
 *   verdict, prepare, run, on a clean connection and with apex attached.
 *
 * Bar: the verdict of a new SQL string costs at most 3× a plain prepare of it.
 */
import { type AttachedNames, judgeStatement, type ProgramReader, type ProgramStep } from '@shardines/core'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { openShard, tempDir, tenantFile } from './lib/fixture.js'
import { compare, type Measurement } from './lib/measure.js'
import { bar, printHeader, printTable, ratio, us } from './lib/table.js'

const DISTINCT = 1000
const TENANT = 'guarded'
/** A second tenant for the attached case: an attachment stays on the connection, which is then never clean again. */
const ATTACHED = 'attached'

printHeader('statement guard: cold verdicts (1,000 distinct SQL strings per batch)')
const dir = tempDir('guard')
const shard = await openShard(dir, { statementCacheSize: DISTINCT * 2 })
const file = tenantFile(dir, TENANT)
for (const id of [TENANT, ATTACHED]) {
  await shard.tenants.create(id)
  const seed = new Database(tenantFile(dir, id))
  const insert = seed.prepare('insert into documents (id, title, owner_id) values (?, ?, ?)')
  seed.transaction(() => {
    for (let i = 1; i <= 1000; i++) insert.run(i, `document ${i}`, i % 50)
  })()
  seed.close()
}

let generation = 0
/**
 * `count` SQL strings no connection has seen: shapes that an app would send, each with a distinct
 * literal. With `joinApex`, the reads join apex's accounts as the ATTACH compiler writes them.
 */
function freshStrings(count: number, joinApex = false): string[] {
  const g = generation++
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const tag = `${g}_${i}`
    switch (i % 4) {
      case 0:
        out.push(
          joinApex
            ? `select "d".*, "a"."email" from "main"."documents" as "d" left join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id" where "d"."id" = ? and '${tag}' is not null`
            : `select * from "main"."documents" where "id" = ? and '${tag}' is not null`,
        )
        break
      case 1:
        out.push(`select "id", "title" from "main"."documents" where "owner_id" = ? and "title" <> '${tag}' limit 5`)
        break
      case 2:
        out.push(
          `select "d"."id", count("c"."id") as "n" from "main"."documents" as "d" left join "main"."comments" as "c" on "c"."document_id" = "d"."id" where "d"."id" = ? and '${tag}' = '${tag}' group by "d"."id"`,
        )
        break
      default:
        out.push(`update "main"."documents" set "status" = 'open' where "id" = ? and "title" <> '${tag}'`)
    }
  }
  return out
}

// The raw connection of the baselines, and the two ways the adapter judges a string (same calls as its reader).
const rawDb = new Database(file)
rawDb.pragma('busy_timeout = 5000')
const explainReader: ProgramReader = {
  explain(text: string): readonly ProgramStep[] {
    const rows = rawDb.prepare(`explain ${text}`).raw(true).all(null) as [
      number,
      string,
      number,
      number,
      number,
      unknown,
    ][]
    return rows.map((r) => ({ opcode: r[1], p1: r[2], p2: r[3], p3: r[4], p4: r[5] }))
  },
  databases: () => ['main', 'temp'],
}
const cleanReader: ProgramReader = {
  ...explainReader,
  clean: () => true,
  statementKind: (text) => rawDb.prepare(text),
}
// The same calls as the adapter makes with apex attached and temp empty (its GuardedStatements).
const attachedDb = new Database(file)
attachedDb.pragma('busy_timeout = 5000')
attachedDb.prepare('attach database ? as "apex"').run(`${dir}/apex.sqlite3`)
const apexVersion = attachedDb.prepare('pragma "apex".schema_version').pluck()
let apexNames: AttachedNames | undefined
let apexNamesVersion: number | undefined
const attachedReader: ProgramReader = {
  explain: explainReader.explain,
  databases: () => ['main', 'temp', 'apex'],
  clean: () => false,
  statementKind: (text) => attachedDb.prepare(text),
  attachedNames: () => {
    const version = apexVersion.get() as number
    if (apexNames === undefined || version !== apexNamesVersion) {
      const rows = attachedDb.prepare('select name, tbl_name from "apex".sqlite_master').raw(true).all() as string[][]
      apexNames = {
        schemas: new Set(['apex']),
        objects: new Set(rows.flat().map((n) => n.toLowerCase())),
        tempObjects: false,
      }
      apexNamesVersion = version
    }
    return apexNames
  },
}

const per = (n: number) => Math.max(1, Math.ceil(n / DISTINCT))
const firstRuns = (name: string, attachApex: boolean, joinApex = false) => ({
  name,
  run: (n: number) =>
    shard.withTenant(attachApex ? ATTACHED : TENANT, async (t) => {
      if (attachApex) await t.attach('apex')
      for (let b = 0; b < per(n); b++) {
        let i = 0
        for (const text of freshStrings(DISTINCT, joinApex)) {
          await sql`${sql.raw(text.replace('?', String((i++ % 1000) + 1)))}`.execute(t.db)
        }
      }
    }),
})
const cases = [
  {
    name: 'plain prepare (raw better-sqlite3)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) for (const text of freshStrings(DISTINCT)) rawDb.prepare(text)
    },
  },
  {
    name: 'plain prepare, apex attached (reads join apex.accounts)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) for (const text of freshStrings(DISTINCT, true)) attachedDb.prepare(text)
    },
  },
  {
    name: 'verdict, clean connection (the statement prepared anyway + its flags)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) for (const text of freshStrings(DISTINCT)) judgeStatement(text, cleanReader)
    },
  },
  {
    name: 'verdict, apex attached (strings naming main only)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) for (const text of freshStrings(DISTINCT)) judgeStatement(text, attachedReader)
    },
  },
  {
    name: 'verdict, apex attached (reads join apex.accounts)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++)
        for (const text of freshStrings(DISTINCT, true)) judgeStatement(text, attachedReader)
    },
  },
  {
    name: 'verdict from EXPLAIN (see below when)',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) for (const text of freshStrings(DISTINCT)) judgeStatement(text, explainReader)
    },
  },
  {
    name: 'raw first run: prepare + run',
    run: (n: number) => {
      for (let b = 0; b < per(n); b++) {
        let i = 0
        for (const text of freshStrings(DISTINCT)) {
          const statement = rawDb.prepare(text)
          if (statement.reader) statement.get((i++ % 1000) + 1)
          else statement.run((i++ % 1000) + 1)
        }
      }
    },
  },
  firstRuns('Shardines first run, clean connection', false),
  firstRuns('Shardines first run, apex attached', true),
  firstRuns('Shardines first run, apex attached, reads join apex', true, true),
]

// Each op is a batch of 1,000 strings: the per-string figure is the median divided by 1,000.
const results = await compare(cases, { minOps: DISTINCT, maxOps: DISTINCT, warmupMs: 200, batchMs: 10 })
const [
  prepare,
  prepareJoin,
  cleanVerdict,
  attachedVerdict,
  joinVerdict,
  explainVerdict,
  rawFirst,
  oursClean,
  oursAttached,
  oursJoin,
] = results as Measurement[] as [
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
  Measurement,
]
printTable(
  'median time per distinct SQL string (cold: never seen by the connection); 3 of 4 strings are reads',
  ['case', 'median', 'vs plain prepare', 'vs raw first run', 'round range'],
  results.map((m) => [
    m.name,
    us(m.median),
    ratio(m.median, prepare.median),
    ratio(m.median, rawFirst.median),
    `${us(m.min)}–${us(m.max)}`,
  ]),
)
console.log('\nbars (cold verdict ≤ 3× a plain prepare):')
console.log(
  `  ${bar(cleanVerdict.median / prepare.median, 3, `clean connection ${ratio(cleanVerdict.median, prepare.median)}`)}`,
)
console.log(
  `  ${bar(attachedVerdict.median / prepare.median, 3, `apex attached ${ratio(attachedVerdict.median, prepare.median)}`)}`,
)
console.log(
  `  ${bar(joinVerdict.median / prepareJoin.median, 3, `apex attached, reads join apex ${ratio(joinVerdict.median, prepareJoin.median)} (vs a plain prepare of the same strings)`)}`,
)
console.log(
  `  (not under the bar) EXPLAIN ${ratio(explainVerdict.median, prepare.median)}: a temp view, a write while temp holds objects, an unqualified name that is an apex object, or a write that names apex`,
)
console.log(
  `first run of a new string vs raw's first run: clean ${ratio(oursClean.median, rawFirst.median)}, apex attached ${ratio(oursAttached.median, rawFirst.median)}, reads joining apex ${ratio(oursJoin.median, rawFirst.median)} (once per handle and string; clean verdicts are shared by every handle of the process)`,
)
attachedDb.close()
rawDb.close()
await shard.close()
