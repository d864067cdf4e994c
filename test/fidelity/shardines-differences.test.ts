// Where t.db deliberately differs from Kysely on one SQLite connection, each asserted as
// Shardines' documented behaviour (docs/transactions.md): what a scope leaves open is rolled
// back when it ends, db.destroy() is refused, and streams buffer instead of holding the tenant.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  createShardines,
  InvalidOptionsError,
  StatementRefusedError,
  TenantScopeClosedError,
  TransactionLeftOpenError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { type Kysely, sql } from 'kysely'
import { latch } from '../helpers/async-helpers.js'
import { tempDir } from '../helpers/temp-dir.js'
import { type DB, fidelityMigrations } from './fidelity-schema.js'
import { delay } from './harness.js'

async function open() {
  const dir = tempDir('fidelity-diff-')
  const shard = createShardines<{}, DB>({
    storage: sqliteStorage({ dir, synchronous: 'off', onWarning: () => {} }),
    migrations: { tenant: fidelityMigrations },
  })
  await shard.tenants.create('acme')
  const log = () => {
    const db = new Database(path.join(dir, 'tenants', 'acme.sqlite3'), { readonly: true })
    try {
      return (db.prepare('select message from log order by id').all() as { message: string }[])
        .map((r) => r.message)
        .filter((message) => message !== 'seeded')
    } finally {
      db.close()
    }
  }
  return { shard, log }
}

const db = (t: { db: unknown }) => t.db as Kysely<DB>

test('a controlled transaction left open when the scope ends is rolled back, and the scope rejects saying so', async () => {
  const { shard, log } = await open()
  let kept: Awaited<ReturnType<ReturnType<Kysely<DB>['startTransaction']>['execute']>> | undefined
  await assert.rejects(
    shard.withTenant('acme', async (t) => {
      kept = await db(t).startTransaction().execute()
      await kept.insertInto('log').values({ message: 'never committed' }).execute()
      return 'left open'
    }),
    (error: unknown) => {
      assert.ok(error instanceof TransactionLeftOpenError, String(error))
      assert.equal(error.code, 'TRANSACTION_LEFT_OPEN')
      assert.equal(error.tenantId, 'acme')
      assert.equal(error.count, 1)
      return true
    },
  )
  assert.deepEqual(log(), [])
  // The tenant is not wedged: the next scope writes at once.
  await shard.withTenant('acme', (t) => db(t).insertInto('log').values({ message: 'next scope' }).execute())
  assert.deepEqual(log(), ['next scope'])
  // The kept transaction object is dead.
  await assert.rejects(kept!.commit().execute(), TenantScopeClosedError)
  await shard.close()
})

test('an unawaited t.transaction and a connection() callback still running when the scope ends are ended with it', async () => {
  const { shard, log } = await open()
  const { promise: gate, resolve: release } = latch()
  let floating: Promise<unknown> | undefined
  await assert.rejects(
    shard.withTenant('acme', async (t) => {
      floating = t.transaction(async (trx) => {
        await trx.db.insertInto('log').values({ message: 'floating' }).execute()
        await gate
        await trx.db.insertInto('log').values({ message: 'after the scope' }).execute()
      })
      await delay(5)
    }),
    TransactionLeftOpenError,
  )
  release()
  await assert.rejects(floating!, TenantScopeClosedError)
  assert.deepEqual(log(), [])
  await shard.withTenant('acme', (t) => db(t).insertInto('log').values({ message: 'not wedged' }).execute())
  assert.deepEqual(log(), ['not wedged'])
  await shard.close()
})

test('db.destroy() is refused with a typed error pointing to shard.close(); the scope keeps working', async () => {
  const { shard, log } = await open()
  await shard.withTenant('acme', async (t) => {
    await assert.rejects(db(t).destroy(), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionsError)
      assert.match(error.message, /shard\.close\(\)/)
      return true
    })
    await db(t).insertInto('log').values({ message: 'still works' }).execute()
  })
  await assert.rejects(shard.apex.destroy(), InvalidOptionsError)
  assert.deepEqual(log(), ['still works'])
  await shard.close()
})

test('a stream does not hold the tenant: another scope writes mid-stream, and a kept iterator is closed with its scope', async () => {
  const { shard, log } = await open()
  let iterator: AsyncIterator<{ name: string }> | undefined
  await shard.withTenant('acme', async (t) => {
    const names: string[] = []
    let wrote: Promise<unknown> | undefined
    for await (const row of db(t).selectFrom('items').select('name').orderBy('id').stream(1)) {
      names.push(row.name)
      // Another scope of the tenant writes while this one is mid-stream: it does not wait for the stream.
      wrote ??= shard.withTenant('acme', (other) =>
        db(other).insertInto('log').values({ message: 'mid-stream' }).execute(),
      )
      await delay(1)
    }
    await wrote
    assert.ok(names.length > 1)
    iterator = db(t).selectFrom('items').select('name').orderBy('id').stream(1)[Symbol.asyncIterator]()
    await iterator.next()
  })
  assert.deepEqual(log(), ['mid-stream'])
  await assert.rejects(iterator!.next(), TenantScopeClosedError)
  await shard.close()
})

test("two statements in one string: a typed refusal instead of the driver's RangeError, and neither runs", async () => {
  const { shard, log } = await open()
  await shard.withTenant('acme', async (t) => {
    await assert.rejects(
      sql`insert into log (message) values ('one'); insert into log (message) values ('two')`.execute(db(t)),
      (error: unknown) => {
        assert.ok(error instanceof StatementRefusedError, String(error))
        assert.equal(error.kind, 'multiple-statements')
        assert.equal(error.tenantId, 'acme')
        return true
      },
    )
  })
  assert.deepEqual(log(), [])
  await shard.close()
})

// Named so that its frame can be looked for in the error's stack.
async function insertIntoMissingTable(t: { db: unknown }): Promise<unknown> {
  return await db(t)
    .insertInto('no_such_table' as 'log')
    .values({ message: 'x' })
    .execute()
}

test("an error from a statement that had to wait keeps the caller's frame in its stack, as Kysely's do", async () => {
  const { shard } = await open()
  await shard.withTenant('acme', async (t) => {
    const { promise: held, resolve: release } = latch()
    const transaction = t.transaction(async () => {
      await held
    })
    await delay(1)
    // This statement waits for the transaction (another branch of the scope), then fails.
    const failing = insertIntoMissingTable(t)
    await delay(5)
    release()
    await transaction
    const error = (await failing.then(
      () => undefined,
      (e: unknown) => e,
    )) as Error
    assert.match(String(error), /no such table/)
    assert.match(error.stack ?? '', /insertIntoMissingTable/)
  })
  await shard.close()
})
