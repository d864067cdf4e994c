// The SQLite adapter runs the whole storage behaviour suite (every capability
// declared, in both tenant journal modes; no skips), plus the checks that
// depend on its file layout and pragmas. The suite's target (better-sqlite3
// and the file layout as the suite's view of the storage) is
// ./targets/sqlite-target.ts.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { NATIVE_BUSY_WAIT_MS } from '@shardines/adapter-sqlite'
import { sql } from 'kysely'
import { makeShard } from '../helpers/fixtures.js'
import { storageBehaviourSuite } from './storage-behaviour-suite.js'
import { sqliteTarget } from './targets/sqlite-target.js'

storageBehaviourSuite(sqliteTarget)

describe('sqlite adapter: file layout and pragmas', () => {
  test('files live at <dir>/apex.sqlite3 and <dir>/tenants/<id>.sqlite3', async () => {
    const { shard, dir } = await makeShard()
    await shard.tenants.create('acme')
    assert.ok(fs.statSync(path.join(dir, 'apex.sqlite3')).isFile())
    assert.ok(fs.statSync(path.join(dir, 'tenants', 'acme.sqlite3')).isFile())
    await shard.close()
  })

  test('list() skips temporary, side and foreign files, and names that are not tenant ids', async () => {
    const { shard, dir } = await makeShard()
    await shard.tenants.create('b')
    await shard.tenants.create('a')
    const tenants = path.join(dir, 'tenants')
    for (const stray of [
      '.creating-c-123-abc-xyz.sqlite3',
      '.forking-d-123-abc-xyz.sqlite3',
      'a.sqlite3-journal',
      'b.sqlite3-wal',
      'b.sqlite3-shm',
      'notes.txt',
      'e.sqlite',
      'UPPER.sqlite3',
      'acme (copy).sqlite3',
      'apex.sqlite3',
    ]) {
      fs.writeFileSync(path.join(tenants, stray), '')
    }
    const ids: string[] = []
    for await (const id of shard.tenants.list()) ids.push(id)
    assert.deepEqual(ids, ['a', 'b'])
    await shard.close()
  })

  for (const [journalMode, synchronous, level] of [
    ['delete', 'normal', 1],
    ['delete', 'off', 0],
    ['wal', 'extra', 3],
    ['wal', 'full', 2],
  ] as const) {
    test(`synchronous ${synchronous} on a ${journalMode} tenant holds on every open (a pool miss runs only the pragmas that differ from the build's defaults)`, async () => {
      const { shard } = await makeShard({ storageOptions: { journalMode, synchronous, maxOpen: 1 } })
      await shard.tenants.create('acme')
      await shard.tenants.create('other')
      for (let i = 0; i < 3; i++) {
        // maxOpen 1: each scope of acme after one of other is a fresh open.
        await shard.withTenant('other', () => undefined)
        const got = await shard.withTenant('acme', async (t) => ({
          synchronous: (await sql<{ synchronous: number }>`pragma synchronous`.execute(t.db)).rows[0]?.synchronous,
          foreignKeys: (await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(t.db)).rows[0]?.foreign_keys,
        }))
        assert.deepEqual(got, { synchronous: level, foreignKeys: 1 })
      }
      assert.ok(shard.stats().misses >= 6)
      await shard.close()
    })
  }

  for (const journalMode of ['delete', 'wal'] as const) {
    test(`journal mode ${journalMode} is set once at create; every open sets busy_timeout, foreign_keys and synchronous`, async () => {
      const { shard, dir } = await makeShard({ storageOptions: { journalMode } })
      await shard.tenants.create('acme')
      const pragmas = await shard.withTenant('acme', async (t) => ({
        journal: (await sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db)).rows[0]?.journal_mode,
        foreignKeys: (await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(t.db)).rows[0]?.foreign_keys,
        busy: (await sql<{ timeout: number }>`pragma busy_timeout`.execute(t.db)).rows[0]?.timeout,
        synchronous: (await sql<{ synchronous: number }>`pragma synchronous`.execute(t.db)).rows[0]?.synchronous,
      }))
      assert.deepEqual(pragmas, {
        journal: journalMode,
        foreignKeys: 1,
        // SQLite's own wait blocks the event loop: a few ms; the rest of busyTimeout is waited asynchronously.
        busy: NATIVE_BUSY_WAIT_MS,
        synchronous: journalMode === 'wal' ? 1 : 2,
      })
      if (journalMode === 'wal') {
        // While the handle is open its side files exist; destroy removes them with the database.
        await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'x' }).execute())
        const base = path.join(dir, 'tenants', 'acme.sqlite3')
        assert.ok(fs.existsSync(`${base}-wal`) && fs.existsSync(`${base}-shm`))
        assert.equal(await shard.tenants.destroy('acme'), true)
        for (const f of [base, `${base}-wal`, `${base}-shm`, `${base}-journal`])
          assert.equal(fs.existsSync(f), false, f)
      }
      await shard.close()
    })
  }

  test('foreign keys are enforced in tenant databases', async () => {
    const { shard } = await makeShard()
    await shard.tenants.create('acme')
    await assert.rejects(
      shard.withTenant('acme', (t) =>
        t.db.insertInto('comments').values({ document_id: 999, body: 'orphan' }).execute(),
      ),
      /FOREIGN KEY/,
    )
    await shard.close()
  })
})
