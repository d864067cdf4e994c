// The statement guard, attacked: every hostile statement below, through every
// entry point a scope has (builder targets, sql fragments, raw SQL, shard.db(),
// withTenants, prepared queries, models, connection(), streams, transactions),
// must be refused with its typed error before anything runs. After each case
// every database file (dumped through a separate read-only connection), every
// tenant connection's attachments (as a fresh scope sees them) and every
// connection's pragma state are exactly as before.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import {
  type Params,
  ReadOnlyAttachmentError,
  ShardinesError,
  type StatementRefusal,
  StatementRefusedError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { type Kysely, sql } from 'kysely'
import { caught, latch } from '../helpers/async-helpers.js'
import { APEX_ACCOUNTS, makeWorld, observe, rowsOf, type Shard, seededDocuments, type World } from './guard-world.js'

type Scope = Parameters<Parameters<Shard['withTenant']>[1]>[0]
type ErrorClass = abstract new (...args: never[]) => ShardinesError

interface Expected {
  readonly error: ErrorClass
  /** Undefined: any ShardinesError will do (a known hole, whose fix may refuse at any step). */
  readonly code: string | undefined
  readonly kind?: StatementRefusal
  /** For ReadOnlyAttachmentError: the attached schema written. */
  readonly schema?: string
  /** The tenant id the error names (undefined outside a withTenant scope). */
  readonly tenantId: string | undefined
}

interface Case {
  readonly name: string
  /** The entry point the attack goes through. */
  readonly where: string
  readonly attempt: (w: World) => Promise<unknown> | AsyncIterable<unknown>
  readonly expect: Expected
  /** Further checks that the refused statement changed nothing (run after the snapshot comparison). */
  readonly verify?: (w: World) => Promise<void> | void
  /** Set for a known implementation bug: the case is reported but does not fail the suite. */
  readonly todo?: string
  /**
   * Files (keys of `fileHashes`, e.g. 'data/tenants/acme.sqlite3') the case's
   * legitimate preparation changes (its own tables); every other observation
   * must stay as it was.
   */
  readonly mayChange?: readonly string[]
}

/** `null`: the error names no tenant (withTenants, shard.apex). */
const roa = (schema = 'apex', tenantId: string | null = 'acme'): Expected => ({
  error: ReadOnlyAttachmentError,
  code: 'READ_ONLY_ATTACHMENT',
  schema,
  tenantId: tenantId ?? undefined,
})
const refused = (kind: StatementRefusal, tenantId: string | null = 'acme'): Expected => ({
  error: StatementRefusedError,
  code: 'STATEMENT_REFUSED',
  kind,
  tenantId: tenantId ?? undefined,
})
const WT = null // withTenants and shard.apex errors name no tenant
/** Any typed refusal, for known holes (their fix may refuse at another step than the last). */
const anyRefusal = (tenantId: string | null = 'acme'): Expected => ({
  error: ShardinesError,
  code: undefined,
  tenantId: tenantId ?? undefined,
})

/** A fresh comment, so a case's SQL text is its own (verdicts are cached by SQL text, process-wide). */
let uniqueCounter = 0
const unique = () => `/* case ${process.pid}-${++uniqueCounter}-${Date.now()} */`

/** Runs `fn` in acme's scope with apex attached (raw SQL does not attach by itself). */
const inAcme =
  <T>(fn: (t: Scope, w: World) => Promise<T>) =>
  (w: World) =>
    w.shard.withTenant('acme', async (t) => {
      await t.attach('apex')
      return fn(t, w)
    })
/** One raw statement in acme's scope, through a `sql` template (`sql.raw`). */
const raw = (text: string) => inAcme((t) => sql.raw(text).execute(t.db))
/** One raw statement built by `build(w)` (for statements naming paths), through a `sql` template. */
const rawOf = (build: (w: World) => ReturnType<typeof sql>) => inAcme((t, w) => build(w).execute(t.db))
/** What the withTenants cases use of `x`. */
interface Both {
  readonly db: Kysely<any>
}
/** Runs `fn` inside withTenants(['acme', 'beta']) with both tenants (and apex) attached. */
const inBoth =
  <T>(fn: (x: Both, w: World) => Promise<T>) =>
  (w: World) =>
    w.shard.withTenants(['acme', 'beta'], async (x) => {
      await x.attach('acme')
      await x.attach('beta')
      await x.attach('apex')
      return fn({ db: x.db as Kysely<any> }, w)
    })
const rawBoth = (text: string) => inBoth((x) => sql.raw(text).execute(x.db))

/** A temp trigger on acme's documents that copies every inserted title into apex.plans. */
const APEX_TRIGGER = sql`create temp trigger copy_out after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end`

/** A fresh acme scope can still insert a document (then deletes it again). */
async function acmeCanWrite(w: World): Promise<void> {
  await w.shard.withTenant('acme', async (t) => {
    const row = await t.db
      .insertInto('documents')
      .values({ title: 'after the attack' })
      .returning(['id', 'title'])
      .executeTakeFirstOrThrow()
    assert.equal(row.title, 'after the attack')
    await t.db.deleteFrom('documents').where('id', '=', row.id).execute()
  })
}

/** Apex and both tenants hold exactly the seeded rows. */
function seededRowsIntact(w: World): void {
  assert.deepEqual(rowsOf(w.apexFile, 'accounts'), APEX_ACCOUNTS)
  assert.deepEqual(rowsOf(w.tenantFile('acme'), 'documents'), seededDocuments('acme'))
  assert.deepEqual(rowsOf(w.tenantFile('beta'), 'documents'), seededDocuments('beta'))
}

const evilFile = (w: World, name = 'evil.sqlite3') => path.join(w.outside, name)
const noEvilFile =
  (name = 'evil.sqlite3') =>
  (w: World) =>
    assert.equal(fs.existsSync(evilFile(w, name)), false, `${name} must not have been written`)

const cases: Case[] = [
  // ── Writes to apex, raw SQL in a tenant scope ────────────────────────────
  {
    where: 'withTenant sql.raw',
    name: 'insert into apex',
    attempt: raw("insert into apex.accounts (email) values ('evil@x.test')"),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'insert or replace into apex',
    attempt: raw("insert or replace into apex.accounts (id, email) values (1, 'evil@x.test')"),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'replace into apex',
    attempt: raw("replace into apex.plans (id, name) values ('pro', 'Hacked')"),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'upsert into apex',
    attempt: raw(
      "insert into apex.accounts (id, email) values (1, 'evil@x.test') on conflict (id) do update set email = excluded.email",
    ),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'update apex',
    attempt: raw("update apex.accounts set plan = 'enterprise'"),
    expect: roa(),
  },
  { where: 'withTenant sql.raw', name: 'delete all of apex', attempt: raw('delete from apex.accounts'), expect: roa() },
  {
    where: 'withTenant sql.raw',
    name: 'delete from apex driven by tenant rows',
    attempt: raw('delete from apex.accounts where id in (select owner_id from main.documents)'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'delete from apex behind a CTE',
    attempt: raw('with c as (select 1) delete from apex.plans where 1 in (select * from c)'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'insert … select into apex',
    attempt: raw('insert into apex.plans (id, name) select title, status from main.documents'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'quoted identifiers',
    attempt: raw(`update "apex"."accounts" set "plan" = 'x'`),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'bracket-quoted schema, mixed case',
    attempt: raw('DELETE FROM [APEX].Accounts'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'create table in apex',
    attempt: raw('create table apex.evil (x)'),
    expect: roa(),
  },
  { where: 'withTenant sql.raw', name: 'drop table in apex', attempt: raw('drop table apex.plans'), expect: roa() },
  {
    where: 'withTenant sql.raw',
    name: 'alter table in apex (add column)',
    attempt: raw('alter table apex.accounts add column evil text'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'alter table in apex (rename)',
    attempt: raw('alter table apex.accounts rename to hacked'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'create index on apex',
    attempt: raw('create index apex.evil_idx on accounts (plan)'),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'drop index in apex',
    attempt: raw('drop index apex.accounts_email'),
    expect: roa(),
  },
  { where: 'withTenant sql.raw', name: 'drop view in apex', attempt: raw('drop view apex.paid'), expect: roa() },
  {
    where: 'withTenant sql.raw',
    name: 'create trigger in apex',
    attempt: raw('create trigger apex.t after insert on accounts begin delete from accounts; end'),
    expect: roa(),
  },
  { where: 'withTenant sql.raw', name: 'analyze apex', attempt: raw('analyze apex'), expect: roa() },
  { where: 'withTenant sql.raw', name: 'analyze (every database)', attempt: raw('analyze'), expect: roa() },
  {
    where: 'withTenant sql.raw',
    name: 'reindex an apex index',
    attempt: raw('reindex apex.accounts_email'),
    expect: roa(),
  },
  { where: 'withTenant sql.raw', name: 'reindex (every database)', attempt: raw('reindex'), expect: roa() },
  { where: 'withTenant sql.raw', name: 'vacuum apex', attempt: raw('vacuum apex'), expect: roa() },
  {
    where: 'withTenant sql template',
    name: 'insert into apex with a bound parameter',
    attempt: inAcme((t) => sql`insert into apex.accounts (email) values (${'evil@x.test'})`.execute(t.db)),
    expect: roa(),
  },
  // ── Builder targets the compiler cannot read ─────────────────────────────
  {
    where: 'withTenant builder',
    name: 'updateTable(sql.table("apex.accounts"))',
    attempt: inAcme((t) =>
      (t.db as Kysely<any>)
        .updateTable(sql.table('apex.accounts') as never)
        .set({ plan: 'x' })
        .execute(),
    ),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'deleteFrom(sql.table("apex.accounts"))',
    attempt: inAcme((t) => (t.db as Kysely<any>).deleteFrom(sql.table('apex.accounts') as never).execute()),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'updateTable(sql.id("apex", "accounts"))',
    attempt: inAcme((t) =>
      (t.db as Kysely<any>)
        .updateTable(sql.id('apex', 'accounts') as never)
        .set({ plan: 'x' })
        .execute(),
    ),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'deleteFrom(sql.id("apex", "plans"))',
    attempt: inAcme((t) => (t.db as Kysely<any>).deleteFrom(sql.id('apex', 'plans') as never).execute()),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'deleteFrom(sql`apex.accounts`) (a raw fragment)',
    attempt: inAcme((t) => (t.db as Kysely<any>).deleteFrom(sql`apex.accounts` as never).execute()),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'updateTable(sql`apex.plans`) with a where',
    attempt: inAcme((t) =>
      (t.db as Kysely<any>)
        .updateTable(sql`apex.plans` as never)
        .set({ name: 'Hacked' })
        .where(sql<boolean>`id = 'pro'`)
        .execute(),
    ),
    expect: roa(),
  },
  {
    where: 'withTenant builder',
    name: 'executeQuery of a compiled raw apex insert … returning',
    attempt: inAcme((t) =>
      t.db.executeQuery(sql`insert into apex.plans (id, name) values ('x', 'y') returning id`.compile(t.db)),
    ),
    expect: roa(),
  },
  // ── shard.db() ───────────────────────────────────────────────────────────
  {
    where: 'shard.db()',
    name: 'delete from apex',
    attempt: inAcme((_t, w) => sql`delete from apex.accounts`.execute(w.shard.db())),
    expect: roa(),
  },
  {
    where: 'shard.db()',
    name: 'deleteFrom(sql.table("apex.plans"))',
    attempt: inAcme((_t, w) => (w.shard.db() as Kysely<any>).deleteFrom(sql.table('apex.plans') as never).execute()),
    expect: roa(),
  },
  {
    where: 'shard.db()',
    name: 'pragma foreign_keys = off',
    attempt: inAcme((_t, w) => sql`pragma foreign_keys = off`.execute(w.shard.db())),
    expect: refused('pragma'),
  },
  // ── Another tenant's file, attached by hand ──────────────────────────────
  {
    where: 'withTenant sql template',
    name: "attach another tenant's file and delete its rows",
    attempt: inAcme(async (t, w) => {
      await sql`attach database ${w.tenantFile('beta')} as stolen`.execute(t.db)
      await sql`delete from stolen.documents`.execute(t.db)
    }),
    expect: refused('attach'),
    verify: seededRowsIntact,
  },
  {
    where: 'withTenant sql template',
    name: "attach another tenant's file under its own id",
    attempt: inAcme(async (t, w) => {
      await sql`attach database ${w.tenantFile('beta')} as beta`.execute(t.db)
      await sql`update beta.documents set title = 'owned'`.execute(t.db)
    }),
    expect: refused('attach'),
    verify: seededRowsIntact,
  },
  {
    where: 'withTenant sql.raw',
    name: 'ATTACH with comments, upper case and a literal path',
    attempt: (w) => raw(`/* hi */ ATTACH DATABASE '${w.tenantFile('beta')}' AS "x" -- bye`)(w),
    expect: refused('attach'),
  },
  {
    where: 'withTenant sql template',
    name: 'attach a file name computed by a subquery',
    attempt: inAcme((t, w) => sql`attach (select ${w.tenantFile('beta')}) as sub`.execute(t.db)),
    expect: refused('attach'),
  },
  {
    where: 'withTenant sql template',
    name: 'attach a new file (would create it)',
    attempt: inAcme((t, w) => sql`attach database ${evilFile(w)} as fresh`.execute(t.db)),
    expect: refused('attach'),
    verify: noEvilFile(),
  },
  {
    where: 'withTenant sql template',
    name: "attach another tenant's file as apex (apex detached by a transaction first)",
    attempt: (w) =>
      w.shard.withTenant('acme', async (t) => {
        await t.transaction(async () => {}) // BEGIN IMMEDIATE detached apex
        await sql`attach database ${w.tenantFile('beta')} as apex`.execute(t.db)
        await sql`delete from apex.documents`.execute(t.db)
      }),
    expect: refused('attach'),
    verify: async (w) => {
      seededRowsIntact(w)
      const rows = await w.shard.withTenant('acme', (t) =>
        t.db.selectFrom('apex.accounts').selectAll().orderBy('id').execute(),
      )
      assert.deepEqual(rows, APEX_ACCOUNTS, 'apex.* still reads the apex file')
    },
  },
  {
    where: 'withTenant sql template',
    name: 'attach as main',
    attempt: rawOf((w) => sql`attach database ${w.tenantFile('beta')} as main`),
    expect: refused('attach'),
  },
  {
    where: 'withTenant sql template',
    name: 'attach as temp',
    attempt: rawOf((w) => sql`attach database ${w.tenantFile('beta')} as temp`),
    expect: refused('attach'),
  },
  {
    where: 'withTenant sql template',
    name: 'attach the apex file a second time',
    attempt: rawOf((w) => sql`attach database ${w.apexFile} as apex2`),
    expect: refused('attach'),
  },
  {
    where: 'withTenant sql template',
    name: 'attach an in-memory database',
    attempt: rawOf(() => sql`attach database ':memory:' as mem`),
    expect: refused('attach'),
  },
  { where: 'withTenant sql.raw', name: 'detach apex', attempt: raw('detach apex'), expect: refused('detach') },
  {
    where: 'withTenant sql.raw',
    name: 'detach database "apex"',
    attempt: raw('DETACH DATABASE "apex"'),
    expect: refused('detach'),
  },
  // ── VACUUM INTO ──────────────────────────────────────────────────────────
  {
    where: 'withTenant sql template',
    name: 'vacuum into a file',
    attempt: rawOf((w) => sql`vacuum into ${evilFile(w)}`),
    expect: refused('vacuum-into'),
    verify: noEvilFile(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'vacuum main into a literal path',
    attempt: (w) => raw(`vacuum main into '${evilFile(w, 'main.sqlite3')}'`)(w),
    expect: refused('vacuum-into'),
    verify: noEvilFile('main.sqlite3'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'vacuum apex into a file (exfiltrate the catalogue)',
    attempt: (w) => raw(`vacuum apex into '${evilFile(w, 'apex-copy.sqlite3')}'`)(w),
    expect: refused('vacuum-into'),
    verify: noEvilFile('apex-copy.sqlite3'),
  },
  // ── Pragmas ──────────────────────────────────────────────────────────────
  {
    where: 'withTenant sql.raw',
    name: 'pragma query_only = 1',
    attempt: raw('pragma query_only = 1'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma foreign_keys = off',
    attempt: raw('pragma foreign_keys = off'),
    expect: refused('pragma'),
    verify: async (w) => {
      await w.shard.withTenant('acme', async (t) => {
        const { rows } = await sql<{ foreign_keys: number }>`select * from pragma_foreign_keys`.execute(t.db)
        assert.deepEqual(rows, [{ foreign_keys: 1 }])
        // Still enforced: a comment on a missing document is refused by SQLite.
        const error = await caught(() => t.db.insertInto('comments').values({ document_id: 999, body: 'x' }).execute())
        assert.match(String(error), /FOREIGN KEY constraint failed/)
      })
    },
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma journal_mode = wal (tenant)',
    attempt: raw('pragma journal_mode = wal'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma apex.journal_mode = delete',
    attempt: raw('pragma apex.journal_mode = delete'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma apex.journal_mode=off',
    attempt: raw('pragma apex.journal_mode=off'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma busy_timeout = 0',
    attempt: raw('pragma busy_timeout = 0'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma case_sensitive_like = 1',
    attempt: raw('pragma case_sensitive_like = 1'),
    expect: refused('pragma'),
    verify: async (w) => {
      const { rows } = await w.shard.withTenant('acme', (t) =>
        sql<{ ci: number }>`select 'a' like 'A' as ci`.execute(t.db),
      )
      assert.deepEqual(rows, [{ ci: 1 }])
    },
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma hard_heap_limit = …',
    attempt: raw('pragma hard_heap_limit = 1099511627776'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma locking_mode = exclusive',
    attempt: raw('pragma locking_mode = exclusive'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma writable_schema = on',
    attempt: raw('pragma writable_schema = on'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma recursive_triggers = on',
    attempt: raw('pragma recursive_triggers = on'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma defer_foreign_keys = on',
    attempt: raw('pragma defer_foreign_keys = on'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma user_version = 99',
    attempt: raw('pragma user_version = 99'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma apex.user_version = 7',
    attempt: raw('pragma apex.user_version = 7'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma schema_version = 1',
    attempt: raw('pragma schema_version = 1'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma temp_store = memory',
    attempt: raw('pragma temp_store = memory'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma cache_size = 10 (a read-list pragma given a value)',
    attempt: raw('pragma cache_size = 10'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma trusted_schema = off',
    attempt: raw('pragma trusted_schema = off'),
    expect: refused('pragma'),
  },
  { where: 'withTenant sql.raw', name: 'pragma optimize', attempt: raw('pragma optimize'), expect: refused('pragma') },
  {
    where: 'withTenant sql.raw',
    name: 'pragma wal_checkpoint(truncate) on apex',
    attempt: raw('pragma apex.wal_checkpoint(truncate)'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma case_sensitive_like (read form, not on the list)',
    attempt: raw('pragma case_sensitive_like'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: '/* c */ PRAGMA "query_only" = 1',
    attempt: raw('/* c */ PRAGMA "query_only" = 1'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'explain pragma query_only=1',
    attempt: raw('explain pragma query_only=1'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'explain query plan pragma foreign_keys = 0',
    attempt: raw('explain query plan pragma foreign_keys = 0'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma query_only(1)',
    attempt: raw('pragma query_only(1)'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma [query_only] = true, bracket-quoted',
    attempt: raw('pragma [query_only] = true'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma `foreign_keys` = 0, backquoted',
    attempt: raw('pragma `foreign_keys` = 0'),
    expect: refused('pragma'),
  },
  {
    where: 'withTenant sql.raw',
    name: "pragma 'query_only' = 1, a string name",
    attempt: raw("pragma 'query_only' = 1"),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma split over lines with a line comment',
    attempt: raw('--x\nPRAGMA\n main . query_only -- y\n = 1'),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'pragma table_info = documents (a call pragma assigned)',
    attempt: raw('pragma table_info = documents'),
    expect: refused('pragma'),
  },
  // ── Transaction control ──────────────────────────────────────────────────
  {
    where: 'withTenant sql.raw',
    name: 'begin',
    attempt: raw('begin'),
    expect: refused('transaction-control'),
    verify: acmeCanWrite,
  },
  {
    where: 'withTenant sql.raw',
    name: 'begin immediate transaction',
    attempt: raw('begin immediate transaction'),
    expect: refused('transaction-control'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'begin exclusive',
    attempt: raw('BEGIN EXCLUSIVE'),
    expect: refused('transaction-control'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'commit (no transaction open)',
    attempt: raw('commit'),
    expect: refused('transaction-control'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'end transaction',
    attempt: raw('end transaction'),
    expect: refused('transaction-control'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'savepoint',
    attempt: raw('savepoint s1'),
    expect: refused('transaction-control'),
    verify: acmeCanWrite,
  },
  {
    where: 't.transaction',
    name: 'commit inside t.transaction (ends Shardines’ transaction early)',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await trx.db.insertInto('documents').values({ title: 'half-written' }).execute()
          await sql`commit`.execute(trx.db)
          throw new Error('unreachable: the commit must be refused')
        }),
      ),
    expect: refused('transaction-control'),
    verify: acmeCanWrite,
  },
  {
    where: 't.transaction',
    name: 'rollback inside t.transaction',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await trx.db.insertInto('documents').values({ title: 'half-written' }).execute()
          await sql`rollback`.execute(trx.db)
        }),
      ),
    expect: refused('transaction-control'),
  },
  {
    where: 't.transaction',
    name: 'savepoint / release inside t.transaction',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await sql`savepoint inner_sp`.execute(trx.db)
          await sql`release inner_sp`.execute(trx.db)
        }),
      ),
    expect: refused('transaction-control'),
  },
  // ── Functions ────────────────────────────────────────────────────────────
  {
    where: 'withTenant sql.raw',
    name: "load_extension('…')",
    attempt: raw("select load_extension('/tmp/nonexistent-extension')"),
    expect: refused('function'),
  },
  {
    where: 'withTenant sql template',
    name: 'LOAD_EXTENSION(?) in upper case with a bound path',
    attempt: inAcme((t) => sql`SELECT LOAD_EXTENSION(${'/tmp/nonexistent-extension'}, 'init')`.execute(t.db)),
    expect: refused('function'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'load_extension from a temp view',
    attempt: inAcme(async (t) => {
      await sql`create temp view ext as select load_extension('/tmp/nonexistent-extension') as x`.execute(t.db)
      await sql`select * from temp.ext`.execute(t.db)
    }),
    expect: refused('function'),
  },
  // ── Temp triggers that write apex ────────────────────────────────────────
  {
    where: 'withTenant builder',
    name: 'temp trigger writing apex, then an innocent builder insert',
    attempt: inAcme(async (t) => {
      await APEX_TRIGGER.execute(t.db)
      await t.db.insertInto('documents').values({ title: 'innocent' }).execute()
    }),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 'model',
    name: 'temp trigger writing apex, then Document.update()',
    attempt: inAcme(async (t) => {
      await sql`create temp trigger wipe after update on main.documents begin delete from apex.accounts; end`.execute(
        t.db,
      )
      await t.models.Document.update(1, { title: 'innocent' })
    }),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 'model',
    name: 'temp trigger writing apex, then Document.create()',
    attempt: inAcme(async (t) => {
      await APEX_TRIGGER.execute(t.db)
      await t.models.Document.create({ title: 'innocent' })
    }),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'temp view with an instead-of trigger writing apex',
    attempt: inAcme(async (t) => {
      await sql`create temp view v as select 1 as x`.execute(t.db)
      await sql`create temp trigger vt instead of insert on v begin update apex.accounts set plan = new.x; end`.execute(
        t.db,
      )
      await sql`insert into temp.v values ('owned')`.execute(t.db)
    }),
    expect: roa(),
  },
  // ── Fall-through ─────────────────────────────────────────────────────────
  {
    where: 'withTenant sql.raw',
    name: 'select from a table only apex has',
    attempt: raw('select * from accounts'),
    expect: { ...refused('fall-through') },
  },
  {
    where: 'withTenant sql.raw',
    name: 'insert into a tenant table from an unqualified apex table',
    attempt: raw('insert into main.documents (title) select email from accounts'),
    expect: refused('fall-through'),
  },
  {
    where: 'withTenant builder',
    name: 'selectFrom(sql`accounts`) (a raw fragment the compiler cannot qualify)',
    attempt: inAcme((t) =>
      (t.db as Kysely<any>)
        .selectFrom(sql`accounts`.as('a') as never)
        .selectAll()
        .execute(),
    ),
    expect: refused('fall-through'),
  },
  {
    where: 'stream',
    name: 'stream of selectFrom(sql`plans`)',
    attempt: inAcme(async (t) => {
      for await (const _ of (t.db as Kysely<any>)
        .selectFrom(sql`plans`.as('p') as never)
        .selectAll()
        .stream()) {
        // drained: refused before the first row
      }
    }),
    expect: refused('fall-through'),
  },
  {
    where: 'stream',
    name: 'stream with an unqualified apex subquery in the select list',
    attempt: inAcme(async (t) => {
      const rows = t.db.selectFrom('documents').select(sql<number>`(select count(*) from accounts)`.as('n')).stream()
      for await (const _ of rows) {
        // drained
      }
    }),
    expect: refused('fall-through'),
  },
  {
    where: 'stream',
    name: 'stream calling load_extension',
    attempt: inAcme(async (t) => {
      for await (const _ of t.db
        .selectFrom('documents')
        .select(sql<number>`load_extension('/tmp/x')`.as('x'))
        .stream()) {
        // drained
      }
    }),
    expect: refused('function'),
  },
  {
    where: 'model',
    name: 'Document.query() with an unqualified apex subquery',
    attempt: inAcme((t) =>
      t.models.Document.query()
        .selectAll()
        .where('owner_id', '=', sql<number>`(select min(id) from accounts)`)
        .execute(),
    ),
    expect: refused('fall-through'),
  },
  {
    where: 'model',
    name: 'Document.query() selecting load_extension',
    attempt: inAcme((t) => t.models.Document.query().select(sql<number>`load_extension('/tmp/x')`.as('x')).execute()),
    expect: refused('function'),
  },
  // ── connection() ─────────────────────────────────────────────────────────
  {
    where: 'connection()',
    name: 'delete from apex on a held connection',
    attempt: inAcme((t) => t.db.connection().execute((c) => sql`delete from apex.plans`.execute(c))),
    expect: roa(),
  },
  {
    where: 'connection()',
    name: 'begin on a held connection',
    attempt: inAcme((t) => t.db.connection().execute((c) => sql`begin immediate`.execute(c))),
    expect: refused('transaction-control'),
    verify: acmeCanWrite,
  },
  {
    where: 'connection()',
    name: 'attach on a held connection',
    attempt: inAcme((t, w) =>
      t.db.connection().execute((c) => sql`attach database ${w.tenantFile('beta')} as b`.execute(c)),
    ),
    expect: refused('attach'),
  },
  {
    where: 'connection()',
    name: 'pragma on a held connection',
    attempt: inAcme((t) => t.db.connection().execute((c) => sql`pragma query_only = on`.execute(c))),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  // ── Transactions ─────────────────────────────────────────────────────────
  {
    where: 't.transaction',
    name: 'apex write inside t.transaction rolls the whole transaction back',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await trx.db.insertInto('documents').values({ title: 'rolled back' }).execute()
          await trx.db.selectFrom('apex.accounts').select('id').execute() // attaches apex inside the transaction
          await sql`update apex.accounts set plan = 'x'`.execute(trx.db)
        }),
      ),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 't.transaction',
    name: 'deleteFrom(sql.table("apex.accounts")) through trx.db',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await trx.db.selectFrom('apex.accounts').select('id').execute()
          await (trx.db as Kysely<any>).deleteFrom(sql.table('apex.accounts') as never).execute()
        }),
      ),
    expect: roa(),
  },
  {
    where: 't.transaction',
    name: 'pragma defer_foreign_keys inside t.transaction',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) => t.transaction((trx) => sql`pragma defer_foreign_keys = 1`.execute(trx.db))),
    expect: refused('pragma'),
  },
  {
    where: 't.transaction models',
    name: 'trx.models with a temp trigger writing apex',
    attempt: inAcme(async (t) => {
      await APEX_TRIGGER.execute(t.db)
      await t.transaction(async (trx) => {
        await trx.db.selectFrom('apex.plans').select('id').execute()
        await trx.models.Document.create({ title: 'innocent' })
      })
    }),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 'db.transaction()',
    name: 'insert into apex inside t.db.transaction().execute',
    attempt: inAcme((t) =>
      t.db.transaction().execute(async (trx) => {
        await trx.selectFrom('apex.plans').select('id').execute()
        await sql`insert into apex.plans (id, name) values ('x', 'y')`.execute(trx)
      }),
    ),
    expect: roa(),
  },
  {
    where: 'nested scope + db.transaction()',
    name: "acme's scope nested in beta's, apex write in a transaction",
    attempt: (w) =>
      w.shard.withTenant('beta', () =>
        w.shard.withTenant('acme', (t) =>
          t.db.transaction().execute(async (trx) => {
            await trx.insertInto('documents').values({ title: 'rolled back' }).execute()
            await trx.selectFrom('apex.accounts').select('id').execute()
            await sql`delete from apex.accounts`.execute(trx)
          }),
        ),
      ),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 'nested scope in t.transaction',
    name: 'a nested acme scope inside its own transaction (joins it) runs a pragma',
    attempt: (w) =>
      w.shard.withTenant('acme', (t) =>
        t.transaction(async (trx) => {
          await trx.db.insertInto('documents').values({ title: 'rolled back' }).execute()
          await w.shard.withTenant('acme', (inner) => sql`pragma foreign_keys = off`.execute(inner.db))
        }),
      ),
    expect: refused('pragma'),
    verify: seededRowsIntact,
  },
  {
    where: 'controlled transaction',
    name: 'apex write in a startTransaction() transaction',
    attempt: inAcme(async (t) => {
      const trx = await t.db.startTransaction().execute()
      try {
        await trx.insertInto('documents').values({ title: 'rolled back' }).execute()
        await trx.selectFrom('apex.plans').select('id').execute()
        await sql`update apex.plans set name = 'x'`.execute(trx)
        await trx.commit().execute()
      } catch (error) {
        await trx.rollback().execute()
        throw error
      }
    }),
    expect: roa(),
    verify: seededRowsIntact,
  },
  // ── Prepared queries ─────────────────────────────────────────────────────
  {
    where: 'prepare',
    name: 'deleteFrom(sql.table("apex.accounts")) prepared, run in a scope',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db) => (db as Kysely<any>).deleteFrom(sql.table('apex.accounts') as never))
      await q.execute()
    }),
    expect: roa(),
  },
  {
    where: 'prepare',
    name: 'raw update of apex with a parameter (execute)',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db, p: Params<{ plan: string }>) => ({
        compile: () => sql`update apex.accounts set plan = ${p('plan')}`.compile(db),
      }))
      await q.execute({ plan: 'stolen' })
    }),
    expect: roa(),
  },
  {
    where: 'prepare',
    name: 'raw delete … returning from apex (executeTakeFirst)',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db) => ({
        compile: () => sql<{ id: string }>`delete from apex.plans returning id`.compile(db),
      }))
      await q.executeTakeFirst()
    }),
    expect: roa(),
  },
  {
    where: 'prepare',
    name: 'raw pragma prepared',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db) => ({ compile: () => sql`pragma query_only = 1`.compile(db) }))
      await q.execute()
    }),
    expect: refused('pragma'),
    verify: acmeCanWrite,
  },
  {
    where: 'prepare',
    name: 'raw attach prepared',
    attempt: inAcme(async (_t, w) => {
      const file = w.tenantFile('beta')
      const q = w.shard.prepare((db) => ({ compile: () => sql`attach database ${file} as b`.compile(db) }))
      await q.execute()
    }),
    expect: refused('attach'),
  },
  {
    where: 'prepare (executeSync)',
    name: 'fall-through read, synchronously',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db) => ({ compile: () => sql`select * from accounts`.compile(db) }))
      q.executeSync()
    }),
    expect: refused('fall-through'),
  },
  {
    where: 'prepare (executeTakeFirstSync)',
    name: 'load_extension, synchronously',
    attempt: inAcme(async (_t, w) => {
      const q = w.shard.prepare((db) => ({ compile: () => sql`select load_extension('/tmp/x') as x`.compile(db) }))
      q.executeTakeFirstSync()
    }),
    expect: refused('function'),
  },
  {
    where: 'prepare (executeSync)',
    name: "fall-through read during another scope's transaction (the separate reader)",
    attempt: inAcme(async (_t, w) => {
      const attachesApex = w.shard.prepare((db) => db.selectFrom('apex.plans').select('id'))
      const q = w.shard.prepare((db) => ({ compile: () => sql`select * from plans`.compile(db) }))
      const { promise: held, resolve: release } = latch()
      const { promise: open, resolve: started } = latch()
      const holder = w.shard.withTenant('acme', (other) =>
        other.transaction(async (trx) => {
          await trx.db.insertInto('documents').values({ title: 'held' }).execute()
          started()
          await held
          throw new Error('roll the holder back')
        }),
      )
      await open
      try {
        // Apex attached on the separate reader first (a builder query's schemas), then the raw read.
        assert.deepEqual(attachesApex.executeSync(), [{ id: 'free' }, { id: 'pro' }])
        q.executeSync()
      } finally {
        release()
        await holder.catch(() => undefined)
      }
    }),
    expect: refused('fall-through'),
    verify: seededRowsIntact,
  },
  // ── withTenants ──────────────────────────────────────────────────────────
  {
    where: 'withTenants sql.raw',
    name: "delete another tenant's rows",
    attempt: rawBoth('delete from acme.documents'),
    expect: roa('acme', WT),
    verify: seededRowsIntact,
  },
  {
    where: 'withTenants sql.raw',
    name: "update another tenant's rows",
    attempt: rawBoth("update beta.documents set title = 'owned'"),
    expect: roa('beta', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: "insert into another tenant's table",
    attempt: rawBoth("insert into beta.comments (document_id, body) values (1, 'spam')"),
    expect: roa('beta', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: "drop another tenant's table",
    attempt: rawBoth('drop table beta.comments'),
    expect: roa('beta', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'delete from apex',
    attempt: rawBoth('delete from apex.plans'),
    expect: roa('apex', WT),
  },
  {
    where: 'withTenants builder',
    name: 'deleteFrom(sql.table("beta.documents"))',
    attempt: inBoth((x) => x.db.deleteFrom(sql.table('beta.documents') as never).execute()),
    expect: roa('beta', WT),
  },
  {
    where: 'withTenants builder',
    name: 'updateTable(sql.table("acme.documents"))',
    attempt: inBoth((x) =>
      (x.db as Kysely<any>)
        .updateTable(sql.table('acme.documents') as never)
        .set({ title: 'owned' })
        .execute(),
    ),
    expect: roa('acme', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'create temp table',
    attempt: rawBoth('create temp table scratch (x)'),
    expect: refused('read-only-scope', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: "create a table in the scratch connection's main",
    attempt: rawBoth('create table main.scratch (x)'),
    expect: refused('read-only-scope', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'temp trigger (would copy rows between tenants)',
    attempt: rawBoth(
      'create temp trigger t after insert on acme.documents begin insert into beta.documents (title) values (new.title); end',
    ),
    expect: refused('read-only-scope', WT),
  },
  {
    where: 'withTenants sql template',
    name: 'attach a tenant by hand',
    attempt: inBoth((x, w) => sql`attach database ${w.tenantFile('beta')} as b2`.execute(x.db)),
    expect: refused('attach', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'detach a tenant',
    attempt: rawBoth('detach acme'),
    expect: refused('detach', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'pragma query_only = 0',
    attempt: rawBoth('pragma query_only = 0'),
    expect: refused('pragma', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'begin',
    attempt: rawBoth('begin'),
    expect: refused('transaction-control', WT),
  },
  {
    where: 'withTenants sql template',
    name: 'vacuum a tenant into a file',
    attempt: inBoth((x, w) => sql`vacuum acme into ${evilFile(w)}`.execute(x.db)),
    expect: refused('vacuum-into', WT),
    verify: noEvilFile(),
  },
  {
    where: 'withTenants sql.raw',
    name: 'fall-through read',
    attempt: rawBoth('select * from documents'),
    expect: refused('fall-through', WT),
  },
  {
    where: 'withTenants sql.raw',
    name: 'reindex (every attached tenant)',
    attempt: rawBoth('reindex'),
    expect: roa('acme', WT),
  },
  // ── shard.apex: writes apex, but attaches, pragmas and transactions are Shardines' ──
  {
    where: 'shard.apex',
    name: "attach a tenant's file to the apex connection",
    attempt: (w) => sql`attach database ${w.tenantFile('acme')} as a`.execute(w.shard.apex),
    expect: refused('attach', WT),
  },
  {
    where: 'shard.apex',
    name: 'pragma journal_mode = delete',
    attempt: (w) => sql`pragma journal_mode = delete`.execute(w.shard.apex),
    expect: refused('pragma', WT),
  },
  {
    where: 'shard.apex',
    name: 'begin',
    attempt: (w) => sql`begin`.execute(w.shard.apex),
    expect: refused('transaction-control', WT),
  },
  {
    where: 'shard.apex',
    name: 'vacuum into a file',
    attempt: (w) => sql`vacuum into ${evilFile(w)}`.execute(w.shard.apex),
    expect: refused('vacuum-into', WT),
    verify: noEvilFile(),
  },
  // ── Known holes (reported; see the todo reasons) ─────────────────────────
  {
    where: 'withTenant sql.raw',
    name: 'select * from pragma_optimize (runs ANALYZE on attached apex at run time)',
    attempt: raw('select * from pragma_optimize'),
    expect: anyRefusal(),
  },
  {
    where: 'withTenant builder',
    name: 'selectFrom(sql`pragma_optimize(0x10002)`) through the builder',
    attempt: inAcme((t) =>
      (t.db as Kysely<any>)
        .selectFrom(sql`pragma_optimize(0x10002)`.as('o') as never)
        .selectAll()
        .execute(),
    ),
    expect: anyRefusal(),
  },
  {
    where: 'withTenants sql.raw',
    name: "select * from pragma_optimize analyzes every attached tenant's file",
    attempt: rawBoth('select * from pragma_optimize'),
    expect: anyRefusal(WT),
  },
  {
    where: 'withTenant sql.raw',
    name: 'several statements in one string (better-sqlite3 refuses them, untyped)',
    attempt: raw('select 1; pragma query_only = 1'),
    expect: anyRefusal(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'a stale verdict: insert into the tenant’s own "plans", dropped under a shared no-op verdict, re-prepared into apex.plans',
    attempt: (w) =>
      w.shard.withTenant('acme', async (t) => {
        const tag = unique()
        const drop = sql.raw(`drop table if exists plans ${tag}`)
        const insert = sql.raw(`insert into plans (id, name) values ('evil', 'stale verdict') ${tag}`)
        await t.transaction(async () => {}) // BEGIN IMMEDIATE detached apex: the connection is clean
        await drop.execute(t.db) // no "plans" here: a no-op, remembered as the clean verdict of this SQL
        await sql.raw(`create table plans (id text primary key, name text) ${tag}`).execute(t.db) // the tenant's own table
        await insert.execute(t.db) // main.plans: allowed, cached with its statement
        await drop.execute(t.db) // the remembered no-op verdict: no schema change seen, the cache is kept
        await t.attach('apex')
        await insert.execute(t.db) // SQLite re-prepares the cached statement: "plans" is now apex.plans
      }),
    expect: anyRefusal(),
    mayChange: ['data/tenants/acme.sqlite3'],
    verify: (w) =>
      assert.deepEqual(rowsOf(w.apexFile, 'plans'), [
        { id: 'free', name: 'Free' },
        { id: 'pro', name: 'Pro' },
      ]),
  },
  {
    where: 'withTenant sql.raw',
    name: 'a stale verdict: another connection (another process) drops the tenant’s "plans", the cached insert is re-prepared into apex.plans',
    attempt: async (w) => {
      const tag = unique()
      const insert = sql.raw(`insert into plans (id, name) values ('local', 'x') ${tag}`)
      await w.shard.withTenant('acme', async (t) => {
        await sql.raw(`create table plans (id text primary key, name text) ${tag}`).execute(t.db)
        await insert.execute(t.db) // main.plans: allowed, cached with its statement
      })
      // A second instance on the same folder (as another process would) drops the tenant's own table.
      const other = await makeWorld({ dir: w.dir, seed: false })
      try {
        await other.shard.withTenant('acme', (t) => sql`drop table plans`.execute(t.db))
      } finally {
        await other.shard.close()
      }
      await w.shard.withTenant('acme', async (t) => {
        await t.attach('apex')
        await insert.execute(t.db) // same SQL, cached verdict; SQLite re-prepares it: "plans" is now apex.plans
      })
    },
    expect: anyRefusal(),
    mayChange: ['data/tenants/acme.sqlite3'],
    verify: (w) =>
      assert.deepEqual(rowsOf(w.apexFile, 'plans'), [
        { id: 'free', name: 'Free' },
        { id: 'pro', name: 'Pro' },
      ]),
  },
  {
    where: 'withTenants sql.raw',
    name: 'a stale verdict: a no-op "drop table if exists comments" re-prepared after attach drops another tenant’s table',
    attempt: async (w) => {
      const tag = unique()
      const create = sql.raw(`create table if not exists documents (x) ${tag}`)
      const drop = sql.raw(`drop table if exists comments ${tag}`)
      // beta has documents: judged there (clean), the create is a no-op, remembered for every clean connection.
      await w.shard.withTenant('beta', async (t) => {
        await t.transaction(async () => {})
        await create.execute(t.db)
      })
      await w.shard.withTenants(['acme'], async (x) => {
        await drop.execute(x.db) // nothing attached, main empty: a no-op, cached with its statement
        await create.execute(x.db) // the shared no-op verdict: creates main.documents, no schema change seen
        await x.attach('acme')
        await drop.execute(x.db) // re-prepared: "comments" is now acme.comments
      })
    },
    expect: anyRefusal(WT),
    verify: (w) => assert.equal(rowsOf(w.tenantFile('acme'), 'comments').length, 2),
  }, // With apex attached and temp empty, a statement none of whose unqualified names is an apex
  // object is judged without EXPLAIN (from the names in apex, checked against its schema version).
  {
    where: 'withTenant sql.raw',
    name: 'a table apex gains from another process mid-scope, then written unqualified (names read before it existed)',
    attempt: inAcme(async (t, w) => {
      const tag = unique()
      await sql.raw(`select count(*) from main.documents ${tag}`).execute(t.db) // apex's names read now
      const other = new Database(w.apexFile)
      other.exec('create table promos (id text primary key)')
      other.close()
      await sql.raw(`insert into promos (id) values ('stolen') ${tag}`).execute(t.db)
    }),
    expect: roa(),
    mayChange: ['data/apex.sqlite3'],
    verify: (w) => assert.deepEqual(rowsOf(w.apexFile, 'promos'), []),
  },
  {
    where: 'withTenant sql.raw',
    name: 'a table apex gains from another process mid-scope, then read unqualified',
    attempt: inAcme(async (t, w) => {
      const tag = unique()
      await sql.raw(`select count(*) from main.documents ${tag}`).execute(t.db)
      const other = new Database(w.apexFile)
      other.exec("create table promos (id text primary key); insert into promos values ('secret')")
      other.close()
      return sql.raw(`select * from promos ${tag}`).execute(t.db)
    }),
    expect: refused('fall-through'),
    mayChange: ['data/apex.sqlite3'],
  },
  {
    where: 'withTenant sql.raw',
    name: 'load_extension from a temp view made after reads of a temp table (judged without EXPLAIN)',
    attempt: inAcme(async (t) => {
      const tag = unique()
      await sql.raw(`create temp table scratch (x) ${tag}`).execute(t.db)
      await sql.raw(`select * from scratch ${tag}`).execute(t.db)
      await sql
        .raw(`create temp view ext as select load_extension('/tmp/nonexistent-extension') as x ${tag}`)
        .execute(t.db)
      await sql.raw(`select * from temp.ext ${tag}`).execute(t.db)
    }),
    expect: refused('function'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'a temp view reading apex unqualified, read through its temp qualifier',
    attempt: inAcme(async (t) => {
      const tag = unique()
      await sql.raw(`create temp table scratch (x) ${tag}`).execute(t.db)
      await sql.raw(`select * from scratch ${tag}`).execute(t.db)
      await sql.raw(`create temp view peek as select * from accounts ${tag}`).execute(t.db)
      return sql.raw(`select * from temp.peek ${tag}`).execute(t.db)
    }),
    expect: refused('fall-through'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'a temp trigger made after reads of a temp table, then an innocent write',
    attempt: inAcme(async (t) => {
      const tag = unique()
      await sql.raw(`create temp table scratch (x) ${tag}`).execute(t.db)
      await sql.raw(`select * from scratch ${tag}`).execute(t.db)
      await sql.raw(`insert into scratch values (1) ${tag}`).execute(t.db)
      await APEX_TRIGGER.execute(t.db)
      await sql.raw(`insert into documents (title) values ('innocent') ${tag}`).execute(t.db)
    }),
    expect: roa(),
    verify: seededRowsIntact,
  },
  {
    where: 'withTenant sql.raw',
    name: "an apex table named by a string literal ('accounts'), which SQLite takes as a table name",
    attempt: raw(`select * from 'accounts' ${unique()}`),
    expect: refused('fall-through'),
  },
  {
    where: 'withTenant sql.raw',
    name: 'an apex table written unqualified in another case and quoting ("ACCOUNTS")',
    attempt: raw(`delete from "ACCOUNTS" ${unique()}`),
    expect: roa(),
  },
  {
    where: 'withTenant sql.raw',
    name: 'an apex table written in brackets inside a subquery of a write to main',
    attempt: raw(`insert into main.documents (title) select email from [Accounts] ${unique()}`),
    expect: refused('fall-through'),
  },
]

/** Asserts that `error` is the typed refusal `expected` describes, and no driver error. */
function assertRefusal(error: unknown, expected: Expected, label: string): void {
  assert.ok(
    error instanceof ShardinesError,
    `${label}: expected a ShardinesError, got ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`,
  )
  assert.ok(
    error instanceof expected.error,
    `${label}: expected ${expected.error.name}, got ${error.constructor.name}: ${error.message}`,
  )
  if (expected.code === undefined) return
  assert.equal(error.code, expected.code, label)
  assert.equal(error.tenantId, expected.tenantId, `${label}: tenantId`)
  if (error instanceof StatementRefusedError) {
    assert.equal(error.kind, expected.kind, `${label}: kind (${error.message})`)
    assert.equal(typeof error.sql, 'string')
    assert.ok(error.sql.length > 0)
  }
  if (error instanceof ReadOnlyAttachmentError) assert.equal(error.schema, expected.schema, `${label}: schema`)
}

const where = new Set(cases.map((c) => c.where))
test('the hostile table covers every entry point and at least 60 cases', () => {
  assert.ok(cases.length >= 60, `${cases.length} cases`)
  for (const entry of [
    'withTenant sql.raw',
    'withTenant builder',
    'shard.db()',
    'withTenants sql.raw',
    'withTenants builder',
    'prepare',
    'prepare (executeSync)',
    'model',
    'connection()',
    'stream',
    't.transaction',
    'db.transaction()',
    'nested scope + db.transaction()',
    'controlled transaction',
    'shard.apex',
  ]) {
    assert.ok(where.has(entry), entry)
  }
})

for (const c of cases) {
  test(`${c.where}: ${c.name}`, c.todo === undefined ? {} : { todo: c.todo }, async () => {
    const w = await makeWorld()
    try {
      // The canonical state: apex attached on each tenant's connection.
      const before = await observe(w)
      const error = await caught(() => c.attempt(w))
      assertRefusal(error, c.expect, c.name)
      const after = await observe(w)
      for (const key of c.mayChange ?? []) {
        delete (before.files as Record<string, string>)[key]
        delete (after.files as Record<string, string>)[key]
      }
      assert.deepEqual(after, before, 'files, attachments and connection state unchanged')
      await c.verify?.(w)
    } finally {
      await w.shard.close()
    }
  })
}

test("temp objects made on the shared apex connection (shard.apex inside a tenant's scope) do not outlive that scope", {}, async () => {
  const w = await makeWorld()
  try {
    const made = await w.shard
      .withTenant('acme', async () => {
        await sql`create temp table spy (email text)`.execute(w.shard.apex)
        await sql`create temp trigger spy_on_accounts after insert on main.accounts begin insert into temp.spy values (new.email); end`.execute(
          w.shard.apex,
        )
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    if (made !== undefined) {
      // Refusing temp objects on the apex connection outright is an acceptable fix too.
      assert.ok(made instanceof ShardinesError, String(made))
      return
    }
    await w.shard.withTenant('beta', () => w.shard.models.Account.create({ email: 'beta-secret@x.test' }))
    const { rows } = await sql<{ n: number }>`select count(*) as n from temp.sqlite_master`.execute(w.shard.apex)
    assert.deepEqual(rows, [{ n: 0 }], "acme's temp trigger is still on the apex connection")
  } finally {
    await w.shard.close()
  }
})
