// Codegen reaches its scratch databases only through the storage contract
// (storage.openScratch()), so any adapter generates the types, and the same
// migrations give the same files whatever the engine.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { libsqlStorage } from '@shardines/adapter-libsql'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { type CodegenOptions, generateSchemas, renderSchemas } from '@shardines/codegen'
import { createShardines, MigrationError, type ScratchHandle, type StorageAdapter } from '@shardines/core'
import { tempDir } from '../helpers/temp-dir.js'
import { apexMigrations, tenantMigrations } from '../typings/schema-migrations.js'

const migrations = { apex: apexMigrations, tenant: tenantMigrations }
const typings = fileURLToPath(new URL('../typings', import.meta.url))

/** The two option sets of test/typings/codegen.ts (the golden files), without outDir. */
const optionSets: Record<string, Omit<CodegenOptions, 'outDir' | 'storage'>> = {
  generated: { migrations },
  'generated-options': {
    migrations,
    camelCase: true,
    json: 'parsed',
    overrides: { tenant: { 'documents.status': "ColumnType<'open' | 'closed', 'open' | 'closed' | undefined>" } },
  },
}

const libsqlStorages: Record<string, (dir: string) => StorageAdapter> = {
  'libsql local': (dir) => libsqlStorage({ mode: 'local', dir }),
  // Encrypted tenants: codegen migrates private in-memory databases, which the key resolver never sees.
  'libsql local, encrypted': (dir) => libsqlStorage({ mode: 'local', dir, encryptionKey: (name) => `key-of-${name}` }),
  'libsql client': (dir) =>
    libsqlStorage({ mode: 'client', url: `file:${dir}/tenants/{tenant}.db`, apexUrl: `file:${dir}/apex.db` }),
}

/** Renders every option set with a fresh storage of one kind; returns the files by set, and the data folder. */
async function renderWith(make: (dir: string) => StorageAdapter) {
  const dir = path.join(tempDir(), 'data')
  const storage = make(dir)
  try {
    const out: Record<string, string[]> = {}
    for (const [set, options] of Object.entries(optionSets)) {
      const files = await renderSchemas({ ...options, storage, outDir: path.join(typings, set) })
      out[set] = files.map((f) => f.content)
    }
    return { out, dir }
  } finally {
    await storage.close()
  }
}

test('libSQL (local and client mode) generates byte-identical types to SQLite for the same migrations', async () => {
  const { out: sqlite, dir: sqliteDir } = await renderWith((dir) => sqliteStorage({ dir }))
  // The SQLite storage's output is the committed golden set (test/typings/generated*).
  for (const set of Object.keys(optionSets)) {
    assert.deepEqual(sqlite[set], [
      fs.readFileSync(path.join(typings, set, 'apex.ts'), 'utf8'),
      fs.readFileSync(path.join(typings, set, 'tenant.ts'), 'utf8'),
    ])
  }
  for (const [kind, make] of Object.entries(libsqlStorages)) {
    const { out, dir } = await renderWith(make)
    assert.deepEqual(out, sqlite, `${kind} differs from sqlite`)
    // Scratch handles only: no database of the storage was created.
    assert.deepEqual(fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : [], [], kind)
  }
  assert.equal(fs.existsSync(sqliteDir), false)
})

test("with { shard }, codegen uses the instance's storage (here libSQL); { storage } takes precedence", async () => {
  const dir = tempDir()
  const shard = createShardines({ storage: libsqlStorage({ mode: 'local', dir: path.join(dir, 'data') }), migrations })
  const scratches = spy(sqliteStorage({ dir: path.join(dir, 'other') }))
  try {
    const fromShard = await renderSchemas({ shard, outDir: path.join(typings, 'generated') })
    assert.deepEqual(
      fromShard.map((f) => f.content),
      [
        fs.readFileSync(path.join(typings, 'generated', 'apex.ts'), 'utf8'),
        fs.readFileSync(path.join(typings, 'generated', 'tenant.ts'), 'utf8'),
      ],
    )
    assert.equal(scratches.opened.length, 0)
    await renderSchemas({ shard, storage: scratches.storage, outDir: path.join(typings, 'generated') })
    assert.equal(scratches.opened.length, 2, 'the apex scratch and the tenant template')
    // None of the instance's own databases was opened (nor its folder created).
    assert.equal(fs.existsSync(path.join(dir, 'data')), false)
  } finally {
    await shard.close()
    await scratches.storage.close()
  }
})

test('the scratch handles are closed afterwards, also when a migration fails; the storage stays open', async () => {
  const { storage, opened } = spy(sqliteStorage({ dir: path.join(tempDir(), 'data') }))
  try {
    const outDir = tempDir()
    await generateSchemas({ migrations, storage, outDir })
    assert.equal(opened.length, 2)
    assert.ok(opened.every((h) => h.closed))

    const broken = {
      ...tenantMigrations,
      '003_broken': {
        async up() {
          throw new Error('boom')
        },
      },
    }
    await assert.rejects(
      generateSchemas({ migrations: { apex: apexMigrations, tenant: broken }, storage, outDir }),
      (e: unknown) =>
        e instanceof MigrationError && e.migration === '003_broken' && /tenant "template"/.test(e.message),
    )
    assert.equal(opened.length, 4)
    assert.ok(opened.every((h) => h.closed))
    // Still usable: codegen never closes a storage it was given.
    const again = await renderSchemas({ migrations, storage, outDir })
    assert.equal(again.length, 2)
  } finally {
    await storage.close()
  }
})

/** The storage, with the scratch handles it hands out recorded. */
function spy(inner: StorageAdapter): { storage: StorageAdapter; opened: ScratchHandle[] } {
  const opened: ScratchHandle[] = []
  const storage = new Proxy(inner, {
    get(target, key) {
      if (key === 'openScratch') {
        return async () => {
          const handle = await target.openScratch()
          opened.push(handle)
          return handle
        }
      }
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { storage, opened }
}
