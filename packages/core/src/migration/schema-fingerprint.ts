import { CompiledQuery } from 'kysely'
import { bindHandle } from '../connection/handle-binding.js'
import { ScopedConnection } from '../connection/shardines-driver.js'
import { schemaDescriptionQueries } from '../storage/sqlite-engine.js'
import type { StorageHandle } from '../storage/storage-adapter.js'
import { MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from './run-migrations.js'

/**
 * The queries whose rows, concatenated, describe a schema (the engine's, see
 * `schemaDescriptionQueries`). The migration bookkeeping tables are left out:
 * their rows (not their shape) differ between a tenant and a template.
 */
const QUERIES: readonly string[] = schemaDescriptionQueries([MIGRATION_TABLE, MIGRATION_LOCK_TABLE])

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
