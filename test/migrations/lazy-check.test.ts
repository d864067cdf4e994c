import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  createShardines,
  MigrationError,
  type StorageAdapter,
  type StorageHandle,
  TenantSchemaOutdatedError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { tempDir } from '../helpers/temp-dir.js'
import { inspect, seedTenants, shardAt, tenantFile, tenantIds, writeMigrations } from './migration-fixtures.js'

const documents = (t: { db: unknown }) =>
  (t.db as any).selectFrom('documents').selectAll().orderBy('id').execute() as Promise<Record<string, unknown>[]>

test('lazy: a behind tenant is migrated on first open; concurrent first opens apply each migration once', async () => {
  const dir = tempDir()
  const ids = tenantIds(10)
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ids)
  const shard = shardAt(dir, writeMigrations(dir, 'v3', 3))
  // 10 tenants × 8 concurrent first opens each.
  const rows = await Promise.all(ids.flatMap((id) => Array.from({ length: 8 }, () => shard.withTenant(id, documents))))
  for (const r of rows)
    assert.deepEqual(r, [
      { id: 1, title: 'alpha', slug: null },
      { id: 2, title: 'beta', slug: null },
    ])
  for (const id of ids) assert.deepEqual(inspect(dir, id).log, ['001_documents', '002_unique_titles', '003_notes'])
  await shard.close()
})

test('lazy: a failing migration rejects the scope with a MigrationError; the file stays intact at its old version', async () => {
  const dir = tempDir()
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ['acme'])
  const raw = new Database(tenantFile(dir, 'acme'))
  raw.prepare('insert into documents (title) values (?)').run('beta')
  raw.close()
  const before = inspect(dir, 'acme')
  const shard = shardAt(dir, writeMigrations(dir, 'v2', 2))
  let ran = false
  for (let attempt = 0; attempt < 2; attempt++) {
    await assert.rejects(
      shard.withTenant('acme', () => {
        ran = true
      }),
      (error: unknown) => {
        assert.ok(error instanceof MigrationError)
        assert.equal(error.tenantId, 'acme')
        assert.equal(error.migration, '002_unique_titles')
        assert.match(error.message, /tenant "acme"/)
        assert.match(error.message, /002_unique_titles/)
        assert.match(String((error.cause as Error).message), /UNIQUE constraint failed: documents\.title/)
        return true
      },
    )
  }
  assert.equal(ran, false, 'the scope function never ran on a half-migrated tenant')
  const after = inspect(dir, 'acme')
  assert.deepEqual(after, before)
  assert.equal(after.integrity, 'ok')
  assert.deepEqual(after.documents, ['alpha', 'beta', 'beta'])
  await shard.close()
})

test("check: a behind tenant throws TenantSchemaOutdatedError and is not touched; 'off' opens it as it is", async () => {
  const dir = tempDir()
  await seedTenants(dir, writeMigrations(dir, 'v1', 1), ['acme', 'beta'])
  const v3 = writeMigrations(dir, 'v3', 3)
  const before = inspect(dir, 'acme')
  const checking = shardAt(dir, v3, { migrateOnOpen: 'check' })
  await assert.rejects(checking.withTenant('acme', documents), (error: unknown) => {
    assert.ok(error instanceof TenantSchemaOutdatedError)
    assert.equal(error.tenantId, 'acme')
    assert.equal(error.version, '001_documents')
    assert.deepEqual(error.pending, ['002_unique_titles', '003_notes'])
    return true
  })
  assert.deepEqual(inspect(dir, 'acme'), before)
  await checking.migrate.tenant('acme')
  assert.equal((await checking.withTenant('acme', documents)).length, 2)
  await checking.close()

  const off = shardAt(dir, v3, { migrateOnOpen: 'off' })
  assert.deepEqual(await off.withTenant('beta', documents), [
    { id: 1, title: 'alpha' },
    { id: 2, title: 'beta' },
  ])
  assert.deepEqual(inspect(dir, 'beta').applied, ['001_documents'])
  await off.close()
})

/** Wraps an adapter so every statement on a tenant handle is recorded. */
function recording(storage: StorageAdapter, statements: string[]): StorageAdapter {
  const wrapped = new WeakMap<StorageHandle, StorageHandle>()
  const wrap = (handle: StorageHandle): StorageHandle => {
    let proxy = wrapped.get(handle)
    if (proxy === undefined) {
      proxy = new Proxy(handle, {
        get(target, key) {
          if (key === 'executeQuery') {
            return (query: { sql: string }, guard: unknown) => {
              statements.push(query.sql)
              return target.executeQuery(query as never, guard as never)
            }
          }
          if (key === 'executeQuerySync' || key === 'executeTakeFirstSync') {
            const run = Reflect.get(target, key, target) as (sql: string, ...rest: unknown[]) => unknown
            return (sql: string, ...rest: unknown[]) => {
              statements.push(sql)
              return run.call(target, sql, ...rest)
            }
          }
          const value = Reflect.get(target, key, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
      wrapped.set(handle, proxy)
    }
    return proxy
  }
  return new Proxy(storage, {
    get(target, key) {
      if (key === 'acquire') {
        return async (id: string) => {
          const lease = await target.acquire(id)
          return {
            handle: wrap(lease.handle),
            versionStampAtOpen: lease.versionStampAtOpen,
            release: () => lease.release(),
          }
        }
      }
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

test('the up-to-date check on open costs no statement of its own: the adapter reads user_version as it opens the file, and an up-to-date tenant is never read further', async () => {
  const dir = tempDir()
  const v2 = writeMigrations(dir, 'v2', 2)
  await seedTenants(dir, v2, ['acme'])
  const statements: string[] = []
  const shard = createShardines({
    storage: recording(sqliteStorage({ dir, maxOpen: 1 }), statements),
    migrations: { tenant: v2 },
  })
  await shard.withTenant('acme', async () => {})
  assert.deepEqual(statements, [])
  // A hit in the pool is not checked again.
  await shard.withTenant('acme', async () => {})
  assert.deepEqual(statements, [])
  await shard.close()
})

test('a tenant acquired without the check first (status) and then by a scope is checked with one pragma', async () => {
  const dir = tempDir()
  const v2 = writeMigrations(dir, 'v2', 2)
  await seedTenants(dir, v2, ['acme'])
  const statements: string[] = []
  const shard = createShardines({
    storage: recording(sqliteStorage({ dir, maxOpen: 1 }), statements),
    migrations: { tenant: v2 },
  })
  await shard.migrate.status()
  statements.length = 0
  // The handle is open already (a hit): the stamp read at open may be stale, so it is read again.
  await shard.withTenant('acme', async () => {})
  assert.deepEqual(statements, ['pragma user_version'])
  await shard.close()
})
