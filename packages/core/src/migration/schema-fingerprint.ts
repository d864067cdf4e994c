import { CompiledQuery } from 'kysely'
import { bindHandle } from '../connection/handle-binding.js'
import { ScopedConnection } from '../connection/shardines-driver.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from './run-migrations.js'

/**
 * Tables left out of a schema comparison: SQLite's own (`sqlite_sequence`,
 * `sqlite_stat*`) and the migration bookkeeping, whose rows (not shape) differ
 * between a tenant and a template.
 */
const IGNORED = `m.name not like 'sqlite\\_%' escape '\\' and m.name not in ('${MIGRATION_TABLE}', '${MIGRATION_LOCK_TABLE}')`

/**
 * The queries whose rows, concatenated, describe a schema. Tables and indexes
 * are described from `pragma_*` functions (so two spellings of the same DDL
 * compare equal); triggers, views and partial-index conditions only exist as
 * SQL text, which is compared with whitespace and case of keywords normalised.
 */
const QUERIES: readonly string[] = [
  `select m.name, t.type, t.ncol, t.wr, t.strict from main.sqlite_master m
     join pragma_table_list(m.name) t on t.schema = 'main'
   where m.type = 'table' and ${IGNORED} order by m.name`,
  `select m.name, p.cid, p.name, lower(p.type), p."notnull", p.dflt_value, p.pk, p.hidden
   from main.sqlite_master m join pragma_table_xinfo(m.name, 'main') p
   where m.type = 'table' and ${IGNORED} order by m.name, p.cid`,
  `select m.name, l.name, l."unique", l.origin, l.partial, x.seqno, x.cid, x.name, x."desc", lower(x.coll), x.key
   from main.sqlite_master m join pragma_index_list(m.name, 'main') l join pragma_index_xinfo(l.name, 'main') x
   where m.type = 'table' and ${IGNORED} order by m.name, l.name, x.seqno`,
  `select m.name, f.id, f.seq, f."table", f."from", f."to", f.on_update, f.on_delete, f."match"
   from main.sqlite_master m join pragma_foreign_key_list(m.name, 'main') f
   where m.type = 'table' and ${IGNORED} order by m.name, f.id, f.seq`,
  `select m.type, m.name, m.tbl_name, m.sql from main.sqlite_master m
   where (m.type in ('trigger', 'view') or (m.type = 'index' and m.sql like '% where %'))
     and ${IGNORED} order by m.type, m.name`,
]

/**
 * A canonical text of a database's schema: equal texts mean the same tables,
 * columns (name, type, nullability, default, key), indexes, foreign keys,
 * triggers and views. Runs five reads through the handle's transaction
 * discipline (it waits for another owner's open transaction).
 */
export async function schemaFingerprint(handle: StorageHandle, label: string): Promise<string> {
  const connection = new ScopedConnection(bindHandle(handle, { label }))
  const parts: string[] = []
  for (const sql of QUERIES) {
    const { rows } = await connection.executeQuery<Record<string, unknown>>(CompiledQuery.raw(sql))
    parts.push(rows.map((row) => Object.values(row).map(normaliseValue).join('\u001f')).join('\u001e'))
  }
  return parts.join('\u001d')
}

function normaliseValue(value: unknown): string {
  if (value === null || value === undefined) return '\u2400'
  if (typeof value === 'string') return normaliseSql(value)
  return String(value)
}

/**
 * Collapses whitespace and drops it around punctuation, outside quoted text, so
 * `create  table "a"(x)` and `CREATE TABLE "a" ( x )` compare equal; keywords and
 * unquoted identifiers compare case-insensitively, as SQLite treats them.
 */
export function normaliseSql(sql: string): string {
  let out = ''
  let i = 0
  while (i < sql.length) {
    const c = sql[i] as string
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c
      let j = i + 1
      while (j < sql.length) {
        if (sql[j] === close) {
          if (close !== ']' && sql[j + 1] === close) {
            j += 2
            continue
          }
          break
        }
        j++
      }
      out += sql.slice(i, j + 1)
      i = j + 1
      continue
    }
    if (/\s/.test(c)) {
      while (i < sql.length && /\s/.test(sql[i] as string)) i++
      const prev = out.at(-1)
      const next = sql[i]
      if (prev !== undefined && next !== undefined && /[\w$]/.test(prev) && /[\w$'"`[]/.test(next)) out += ' '
      continue
    }
    out += c.toLowerCase()
    i++
  }
  return out
}
