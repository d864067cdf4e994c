/**
 * Tenant creation (issue 2): milliseconds per `shard.tenants.create(id)` with
 * the fixture's two tenant migrations, against raw better-sqlite3 baselines on
 * the same disk:
 *
 * - raw minimal (1.0×): open a new file, set the journal mode, run the two
 *   tables' DDL in one transaction, close;
 * - raw equivalent: what `create` does, by hand: a temporary file, the open
 *   pragmas, one `begin immediate` with the DDL, Kysely's two migration tables,
 *   the two migration rows and `user_version`, commit, close, link into place,
 *   remove the temporary name, fsync the folder.
 *
 * Both adapter journal modes are measured (`delete`, the default, and `wal`).
 * Every operation creates a new tenant, so the folders grow by a few thousand files.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import Database from 'better-sqlite3'
import { openShard, TENANT_DDL, tempDir } from './lib/fixture.js'
import { asyncCase, compare, type Measurement, syncCase } from './lib/measure.js'
import { printHeader, printTable, ratio } from './lib/table.js'

printHeader('tenant creation, two tenant migrations')

const rawDir = tempDir('create-raw')
const shardDelete = await openShard(tempDir('create-delete'))
const shardWal = await openShard(tempDir('create-wal'), { journalMode: 'wal' })

let n = 0
const nextId = () => `t${(n++).toString(36)}`

const MIGRATION_DDL = [
  'create table if not exists "kysely_migration" ("name" varchar(255) not null primary key, "timestamp" varchar(255) not null)',
  'create table if not exists "kysely_migration_lock" ("id" varchar(255) not null primary key, "is_locked" integer default 0 not null)',
]

function rawMinimal(): void {
  const db = new Database(path.join(rawDir, `${nextId()}.sqlite3`))
  db.pragma('journal_mode = delete')
  db.exec(`begin; ${TENANT_DDL.join(';\n')}; commit;`)
  db.close()
}

function rawEquivalent(): void {
  const id = nextId()
  const target = path.join(rawDir, `${id}.sqlite3`)
  const temporary = path.join(rawDir, `.creating-${id}.sqlite3`)
  const db = new Database(temporary)
  db.pragma('journal_mode = delete')
  db.exec('pragma busy_timeout = 5000; pragma foreign_keys = on; pragma synchronous = full;')
  db.exec('begin immediate')
  for (const ddl of [...MIGRATION_DDL, ...TENANT_DDL]) db.exec(ddl)
  const insert = db.prepare('insert into "kysely_migration" ("name", "timestamp") values (?, ?)')
  insert.run('001_documents', new Date().toISOString())
  insert.run('002_comments', new Date().toISOString())
  db.exec('pragma user_version = 2; commit')
  db.close()
  fs.linkSync(temporary, target)
  fs.unlinkSync(temporary)
  const fd = fs.openSync(rawDir, 'r')
  fs.fsyncSync(fd)
  fs.closeSync(fd)
}

const results = await compare(
  [
    syncCase('raw minimal: open + DDL in one transaction + close', rawMinimal),
    syncCase('raw equivalent of create (temp file, link, fsync)', rawEquivalent),
    asyncCase("tenants.create, journalMode 'delete' (default)", () => shardDelete.tenants.create(nextId())),
    asyncCase("tenants.create, journalMode 'wal'", () => shardWal.tenants.create(nextId())),
  ],
  { rounds: Number(process.env.BENCH_ROUNDS ?? 10), batchMs: 100, warmupMs: 300 },
)

const [base, equivalent] = results as [Measurement, Measurement]
printTable(
  'time per tenant (rounds interleaved; raw minimal = 1.0×)',
  ['case', 'median', 'vs raw minimal', 'vs raw equivalent', 'round range'],
  results.map((m) => [
    m.name,
    msPerOp(m.median),
    ratio(m.median, base.median),
    ratio(m.median, equivalent.median),
    `${msPerOp(m.min)}–${msPerOp(m.max)}`,
  ]),
)
const def = results[2] as Measurement
console.log(
  `\ntenants.create: ${msPerOp(def.median)} per tenant → ${(1e9 / def.median).toFixed(0)} tenants/s; 10,000 tenants ≈ ${((def.median * 10_000) / 1e9).toFixed(0)} s one after another`,
)

await shardDelete.close()
await shardWal.close()

function msPerOp(ns: number): string {
  return `${(ns / 1e6).toFixed(2)} ms`
}
