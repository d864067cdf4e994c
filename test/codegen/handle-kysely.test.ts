// kyselyOnHandle (core): the plain Kysely codegen introspects its scratch handles with.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { libsqlStorage } from '@shardines/adapter-libsql'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { kyselyOnHandle, type StorageAdapter } from '@shardines/core'
import { tempDir } from '../helpers/temp-dir.js'

const storages: Record<string, (dir: string) => StorageAdapter> = {
  sqlite: (dir) => sqliteStorage({ dir }),
  'libsql client': (dir) =>
    libsqlStorage({ mode: 'client', url: `file:${dir}/tenants/{tenant}.db`, apexUrl: `file:${dir}/apex.db` }),
}

for (const [kind, make] of Object.entries(storages)) {
  test(`${kind}: a Kysely on a scratch handle runs queries, transactions with savepoints, and introspection`, async () => {
    const storage = make(path.join(tempDir(), 'data'))
    const scratch = await storage.openScratch()
    try {
      const db = kyselyOnHandle(scratch)
      await db.schema
        .createTable('notes')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .execute()
      await db.insertInto('notes').values({ body: 'kept' }).execute()

      // A transaction holds the one connection: a query from outside waits for its end.
      const trx = await db.startTransaction().execute()
      const outside = db.selectFrom('notes').select('body').orderBy('id').execute()
      await trx.insertInto('notes').values({ body: 'in transaction' }).execute()
      const savepoint = await trx.savepoint('before_undo').execute()
      await savepoint.insertInto('notes').values({ body: 'rolled back' }).execute()
      await savepoint.rollbackToSavepoint('before_undo').execute()
      await trx.commit().execute()
      assert.deepEqual(
        (await outside).map((r) => r.body),
        ['kept', 'in transaction'],
      )
      const rows = await db.selectFrom('notes').select('body').orderBy('id').execute()
      assert.deepEqual(
        rows.map((r) => r.body),
        ['kept', 'in transaction'],
      )

      const tables = await db.introspection.getTables()
      assert.deepEqual(
        tables.map((t) => [t.name, t.columns.map((c) => [c.name, c.dataType, c.isNullable, c.isAutoIncrementing])]),
        [
          [
            'notes',
            [
              ['id', 'INTEGER', true, true],
              ['body', 'TEXT', false, false],
            ],
          ],
        ],
      )
      // destroy() leaves the handle to its owner.
      await db.destroy()
      assert.equal(scratch.closed, false)
      const again = kyselyOnHandle(scratch)
      assert.equal((await again.selectFrom('notes').select('id').execute()).length, 2)
    } finally {
      await scratch.close()
      await storage.close()
    }
  })
}
