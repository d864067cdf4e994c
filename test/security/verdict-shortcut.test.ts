// The guard judges most cold statements without EXPLAIN: on a clean connection
// from the prepared statement's flags, and with databases attached (or temp
// tables) after checking that no name the SQL writes unqualified is an attached
// object. This differential test runs a corpus of statements, benign and
// hostile, on real connections in those states, and asserts that whenever the
// shortcut gives a verdict it is exactly the verdict read from the program.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { type AttachedNames, judgeStatement, type ProgramReader, type ProgramStep } from '@shardines/core'
import Database from 'better-sqlite3'
import { tempDir } from '../helpers/temp-dir.js'

const TENANT_DDL = `
  create table documents (id integer primary key, title text not null, owner_id integer, status text not null default 'open');
  create table comments (id integer primary key, document_id integer not null references documents (id) on delete cascade, body text);
  create index documents_owner on documents (owner_id);
  create trigger documents_touch after update on documents begin update comments set body = body where document_id = new.id; end;
  create view open_documents as select * from documents where status = 'open';
`
const APEX_DDL = `
  create table accounts (id integer primary key, email text not null, plan text);
  create table plans (id text primary key, name text not null);
  create view pro_accounts as select * from accounts where plan = 'pro';
  create table "Mixed Case" (x);
`

const CORPUS = [
  // Reads of main only.
  'select * from documents where id = ?',
  'select * from "main"."documents" where "id" = ?',
  'select d.id, count(c.id) from documents d left join comments c on c.document_id = d.id group by d.id',
  'select * from open_documents',
  'with recent as (select * from documents order by id desc limit 5) select * from recent',
  'select (select count(*) from comments) as n',
  'select * from documents indexed by documents_owner where owner_id = 1',
  'select * from sqlite_master',
  "select * from pragma_table_info('documents')",
  // Reads naming apex.
  'select d.*, a.email from documents d join apex.accounts a on a.id = d.owner_id',
  'select * from "apex"."accounts"',
  'select * from apex.pro_accounts',
  'select * from apex.sqlite_master',
  'select * from [apex].[plans] where id = ?',
  'select * from documents where owner_id in (select id from apex.accounts)',
  // Reads falling through (unqualified apex names, however written).
  'select * from accounts',
  'select * from "ACCOUNTS"',
  "select * from 'plans'",
  'select * from [Accounts]',
  'select * from pro_accounts',
  'select * from "Mixed Case"',
  'select * from documents where owner_id in (select id from accounts)',
  'select d.* from documents d, apex.accounts a, plans p where a.id = d.owner_id',
  'with accounts as (select 1 as id) select * from accounts',
  // Writes to main.
  "insert into documents (title) values ('x')",
  "update documents set title = 'y' where id = ?",
  'delete from documents where id = ?',
  'insert into main.documents (title) select title from main.documents limit 1',
  "insert into comments (document_id, body) values (1, 'b')",
  // Writes naming apex (read from apex, or write it).
  'insert into documents (title) select email from apex.accounts',
  "update apex.accounts set plan = 'free'",
  'delete from apex.plans',
  "insert into apex.plans values ('p', 'P')",
  // Writes falling through.
  "update accounts set plan = 'free'",
  "insert into plans values ('x', 'X')",
  "insert into 'plans' values ('x', 'X')",
  'delete from "Mixed Case"',
  'insert into documents (title) select email from accounts',
  // Temp tables.
  'select * from scratch',
  'select * from temp.scratch',
  'insert into scratch values (1)',
  'insert into documents (title) select x from scratch',
]

interface Judged {
  readonly flags: number
  readonly explained: boolean
}

/** A ProgramReader over a real connection, as the adapter's: names re-read on each call. */
function readerOn(db: Database.Database, attached: readonly string[], withShortcut: boolean) {
  let explained = false
  const reader: ProgramReader = {
    explain(text: string): readonly ProgramStep[] {
      explained = true
      const rows = db
        .prepare(`explain ${text}`)
        .raw(true)
        .all(...new Array(text.split('?').length - 1).fill(1)) as unknown[][]
      return rows.map((r) => ({
        opcode: r[1] as string,
        p1: r[2] as number,
        p2: r[3] as number,
        p3: r[4] as number,
        p4: r[5],
      }))
    },
    databases: () => (db.pragma('database_list') as { seq: number; name: string }[]).map((r) => r.name),
    schemaObjects: (index) => {
      const name = reader.databases()[index]
      return db.prepare(`select type, name, tbl_name, rootpage from "${name}".sqlite_master`).all() as never
    },
  }
  if (withShortcut) {
    const tempObjects = () => (db.prepare('select count(*) as n from temp.sqlite_master').get() as { n: number }).n > 0
    Object.assign(reader, {
      clean: () => attached.length === 0 && !tempObjects(),
      statementKind: (text: string) => db.prepare(text),
      attachedNames: (): AttachedNames => {
        const objects = new Set<string>()
        for (const schema of attached) {
          for (const row of db.prepare(`select name, tbl_name from "${schema}".sqlite_master`).all() as {
            name: string
            tbl_name: string
          }[]) {
            objects.add(row.name.toLowerCase())
            objects.add(row.tbl_name.toLowerCase())
          }
        }
        return { schemas: new Set(attached), objects, tempObjects: tempObjects() }
      },
    })
  }
  return {
    judge(text: string): Judged {
      explained = false
      const verdict = judgeStatement(text, reader)
      return { flags: verdict.flags, explained }
    },
  }
}

function connection(dir: string, state: 'clean' | 'apex' | 'apex+temp'): Database.Database {
  const file = path.join(dir, `tenant-${state}.sqlite3`)
  const db = new Database(file)
  db.exec(TENANT_DDL)
  if (state !== 'clean') {
    const apexFile = path.join(dir, 'apex.sqlite3')
    const apex = new Database(apexFile)
    apex.exec(APEX_DDL.replaceAll('create ', 'create ').replace(/create (table|view) /g, 'create $1 if not exists '))
    apex.close()
    db.prepare('attach database ? as apex').run(apexFile)
  }
  if (state === 'apex+temp') db.exec('create temp table scratch (x)')
  else db.exec('create table scratch (x)')
  return db
}

for (const state of ['clean', 'apex', 'apex+temp'] as const) {
  test(`a verdict without EXPLAIN equals the verdict from the program (${state} connection)`, () => {
    const dir = tempDir('verdict-shortcut')
    const db = connection(dir, state)
    try {
      const attached = state === 'clean' ? [] : ['apex']
      const fast = readerOn(db, attached, true)
      const slow = readerOn(db, attached, false)
      let shortcuts = 0
      for (const text of CORPUS) {
        let expected: Judged
        try {
          expected = slow.judge(text)
        } catch {
          continue // not valid on this connection (an apex name with nothing attached)
        }
        const got = fast.judge(text)
        if (!got.explained) shortcuts++
        assert.equal(
          got.flags,
          expected.flags,
          `${state}: ${text} (judged ${got.explained ? 'from EXPLAIN' : 'by name'})`,
        )
      }
      // The shortcut must actually be taken for most of the corpus, or this test proves nothing.
      assert.ok(shortcuts >= 15, `${state}: only ${shortcuts} statements judged without EXPLAIN`)
    } finally {
      db.close()
    }
  })
}

test('with apex attached, every unqualified apex name, however quoted, sends the statement to EXPLAIN', () => {
  const dir = tempDir('verdict-shortcut')
  const db = connection(dir, 'apex')
  try {
    const fast = readerOn(db, ['apex'], true)
    for (const text of [
      'select * from accounts',
      'select * from "ACCOUNTS"',
      "select * from 'plans'",
      'select * from [Accounts]',
      'select * from `plans`',
      'select * from "Mixed Case"',
      'select * from documents /* a comment */ join pro_accounts on 1',
    ]) {
      assert.equal(fast.judge(text).explained, true, text)
    }
    for (const text of ['select * from documents', 'select * from apex.accounts', "select 'accounts' is not null"]) {
      const judged = fast.judge(text)
      if (text.includes("'accounts'")) assert.equal(judged.explained, true, `${text}: a string may be a table name`)
      else assert.equal(judged.explained, false, text)
    }
  } finally {
    db.close()
  }
})
