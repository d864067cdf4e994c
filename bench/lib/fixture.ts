/**
 * The benchmark schema (test/helpers/fixture-schema.ts, shared with the tests:
 * two apex tables, two tenant migrations) and temp folders that are removed when the process exits.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { type SqliteStorageOptions, sqliteStorage, type TenantLayout } from '@shardines/adapter-sqlite'
import { createShardines, type Shardines } from '@shardines/core'

export {
  type ApexDB,
  apexMigrations,
  type TenantDB,
  tenantMigrations,
} from '../../test/helpers/fixture-schema.js'

import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from '../../test/helpers/fixture-schema.js'

/** The raw DDL the two tenant migrations produce (for raw better-sqlite3 baselines). */
export const TENANT_DDL = [
  'create table "documents" ("id" integer primary key, "title" text not null, "owner_id" integer, "status" text default \'open\' not null)',
  'create table "comments" ("id" integer primary key, "document_id" integer not null references "documents" ("id"), "body" text not null)',
]

export type BenchShard = Shardines<ApexDB, TenantDB>

/** A Shardines instance over `dir` with the benchmark schema; apex migrated. */
export async function openShard(dir: string, storage: Partial<SqliteStorageOptions> = {}): Promise<BenchShard> {
  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir, onWarning: (m) => console.error(`warning: ${m}`), ...storage }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  return shard
}

const made: string[] = []
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

/** A fresh folder under the OS temp folder, removed when the process exits. */
export function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `shardines-bench-${name}-`))
  made.push(dir)
  return dir
}

/** A folder under the OS temp folder kept across runs (tenant sets that take long to build). */
export function cacheDir(name: string): string {
  return path.join(os.tmpdir(), 'shardines-bench-cache', name)
}

/** The tenant file of `id` under a storage folder, in the adapter's flat layout (the default) or its hashed one. */
export function tenantFile(dir: string, id: string, layout: TenantLayout = 'flat'): string {
  if (layout === 'flat') return path.join(dir, 'tenants', `${id}.sqlite3`)
  // FNV-1a of the id: the hashed layout's two folder levels (the adapter's layoutHash; pinned by a test).
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  hash >>>= 0
  const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0')
  return path.join(dir, 'tenants', hex(hash >>> 24), hex(hash >>> 16), `${id}.sqlite3`)
}

/**
 * A fresh temp folder (`tempDir(name)`) of `count` tenants `idOf(0…count−1)`, each a copy of one
 * tenant made with `tenants.create` and `rows` documents, where `storage.layout` puts them.
 * Returns the folder and each id's file.
 */
export async function copiedTenantSet(
  name: string,
  count: number,
  idOf: (i: number) => string,
  rows: number,
  storage: Partial<SqliteStorageOptions> = {},
): Promise<{ dir: string; files: Map<string, string> }> {
  const dir = tempDir(name)
  const layout = storage.layout ?? 'flat'
  const shard = await openShard(dir, storage)
  await shard.tenants.create('template')
  await shard.withTenant('template', async (t) => {
    for (let i = 1; i <= rows; i++)
      await t.db
        .insertInto('documents')
        .values({ title: `document ${i}` })
        .execute()
  })
  await shard.close()
  const template = tenantFile(dir, 'template', layout)
  const files = new Map<string, string>()
  const folders = new Set<string>()
  for (let i = 0; i < count; i++) {
    const id = idOf(i)
    const file = tenantFile(dir, id, layout)
    const folder = path.dirname(file)
    if (!folders.has(folder)) {
      fs.mkdirSync(folder, { recursive: true })
      folders.add(folder)
    }
    fs.copyFileSync(template, file)
    files.set(id, file)
  }
  fs.rmSync(template)
  return { dir, files }
}
