// Concurrency inside one scope (and across scopes) on t.db against bare
// Kysely. Bare Kysely's SqliteDriver has one connection behind a mutex: a
// statement on `db` issued while a transaction holds the connection waits for
// that transaction to end, so it never joins it, never sees its uncommitted
// rows, and is never rolled back with it.
import type { Kysely } from 'kysely'
import { type DB, delay, differential, differentialScopes, outcome, outcomes, rowsOf } from './harness.js'

differential('concurrency: a plain insert from another branch survives a transaction that rolls back', async (db) => {
  const trx = db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'in trx' }).execute()
    await delay(20)
    throw new Error('x')
  })
  await delay(5)
  const plain = db.insertInto('log').values({ message: 'plain' }).execute()
  const settled = await outcomes([trx, plain])
  return { settled, log: await rowsOf(db, 'log') }
})

differential(
  'concurrency: a plain insert from another branch is ordered after a committing transaction',
  async (db) => {
    const trx = db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'trx 1' }).execute()
      await delay(15)
      await trx.insertInto('log').values({ message: 'trx 2' }).execute()
    })
    await delay(5)
    const plain = db.insertInto('log').values({ message: 'plain' }).execute()
    const settled = await outcomes([trx, plain])
    return { settled, log: await rowsOf(db, 'log') }
  },
)

differential('concurrency: a plain read from another branch never sees uncommitted rows', async (db) => {
  const trx = db.transaction().execute(async (trx) => {
    await trx.insertInto('items').values({ name: 'uncommitted' }).execute()
    await delay(20)
    throw new Error('rolled back')
  })
  await delay(5)
  const read = db.selectFrom('items').select('name').orderBy('id').execute()
  return outcomes([trx, read])
})

differential('concurrency: a plain read from another branch sees a transaction whole or not at all', async (db) => {
  const trx = db.transaction().execute(async (trx) => {
    await trx.updateTable('counters').set({ value: 100 }).where('name', '=', 'a').execute()
    await delay(15)
    await trx.updateTable('counters').set({ value: 100 }).where('name', '=', 'b').execute()
  })
  await delay(5)
  const read = db.selectFrom('counters').selectAll().orderBy('name').execute()
  return outcomes([trx, read])
})

differential('concurrency: a plain delete from another branch does not run inside the transaction', async (db) => {
  const order: string[] = []
  const trx = db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom('tags').select('id').orderBy('id').execute()
    order.push(`trx saw ${before.length} tags`)
    await delay(15)
    const after = await trx.selectFrom('tags').select('id').orderBy('id').execute()
    order.push(`trx saw ${after.length} tags`)
  })
  await delay(5)
  const plain = db
    .deleteFrom('tags')
    .where('label', '=', 'sweet')
    .execute()
    .then(() => order.push('plain delete done'))
  await Promise.all([trx, plain])
  return { order, tags: await rowsOf(db, 'tags') }
})

differential(
  'concurrency: a failing plain statement from another branch does not abort the transaction',
  async (db) => {
    const trx = db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'trx' }).execute()
      await delay(15)
      await trx.insertInto('log').values({ message: 'trx again' }).execute()
      return 'committed'
    })
    await delay(5)
    const plain = db.insertInto('items').values({ name: 'apple' }).execute()
    const settled = await outcomes([trx, plain])
    return { settled, log: await rowsOf(db, 'log') }
  },
)

differential(
  'concurrency: a plain insert from another branch survives a controlled transaction rollback',
  async (db) => {
    const trx = await db.startTransaction().execute()
    await trx.insertInto('log').values({ message: 'controlled' }).execute()
    const plain = outcome(db.insertInto('log').values({ message: 'plain' }).execute())
    await delay(10)
    await trx.rollback().execute()
    return { plain: await plain, log: await rowsOf(db, 'log') }
  },
)

differential('concurrency: plain writes from several branches during a rolled-back transaction', async (db) => {
  const trx = db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'trx' }).execute()
    await delay(20)
    throw new Error('undo')
  })
  await delay(3)
  const plains = [1, 2, 3].map((i) =>
    db
      .insertInto('counters')
      .values({ name: `p${i}`, value: i })
      .execute(),
  )
  const settled = await outcomes([trx, ...plains])
  return { settled: settled.map((s) => ('ok' in s ? 'ok' : s.error)), counters: await rowsOf(db, 'counters') }
})

differential('concurrency: a plain upsert from another branch during a transaction that fails', async (db) => {
  const trx = db.transaction().execute(async (trx) => {
    await trx.updateTable('counters').set({ value: 0 }).execute()
    await delay(15)
    await trx.insertInto('items').values({ name: 'banana' }).execute()
  })
  await delay(5)
  const upsert = db
    .insertInto('counters')
    .values({ name: 'a', value: 1 })
    .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({ value: eb('counters.value', '+', 1) })))
    .execute()
  const settled = await outcomes([trx, upsert])
  return { settled: settled.map((s) => ('ok' in s ? 'ok' : s.error)), counters: await rowsOf(db, 'counters') }
})

differential('concurrency: two branches each run a transaction, one fails: only its rows go', async (db) => {
  const a = db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'a1' }).execute()
    await delay(10)
    await trx.insertInto('log').values({ message: 'a2' }).execute()
  })
  const b = db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'b1' }).execute()
    await delay(5)
    throw new Error('b fails')
  })
  const settled = await outcomes([a, b])
  return { settled, log: await rowsOf(db, 'log') }
})

// Streams buffer on t.db (shardines-differences.test.ts): the transaction may run mid-iteration,
// so only what both engines guarantee is compared: every row streamed, and the transaction's write.
differential('concurrency: a stream and a transaction in two branches', async (db) => {
  const rows: string[] = []
  const stream = (async () => {
    for await (const row of db.selectFrom('items').select('name').orderBy('id').stream()) {
      rows.push(`row ${row.name}`)
      await delay(2)
    }
  })()
  await delay(1)
  const trx = db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'after stream' }).execute()
  })
  const settled = await outcomes([stream, trx])
  return { settled, rows, log: await rowsOf(db, 'log') }
})

differentialScopes('scopes: a write in another scope waits for a scope transaction that rolls back', [
  async (db) =>
    outcome(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('log').values({ message: 'scope A trx' }).execute()
        await delay(15)
        throw new Error('A rolls back')
      }),
    ),
  async (db) => {
    await delay(5)
    await db.insertInto('log').values({ message: 'scope B plain' }).execute()
    return rowsOf(db, 'log')
  },
])

differentialScopes('scopes: a read in another scope does not see a scope transaction uncommitted rows', [
  async (db) =>
    outcome(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('items').values({ name: 'scoped' }).execute()
        await delay(15)
        throw new Error('no')
      }),
    ),
  async (db) => {
    await delay(5)
    return db.selectFrom('items').select('name').orderBy('id').execute()
  },
])

differentialScopes('scopes: read-modify-write transactions in five scopes lose no update', [
  ...Array.from(
    { length: 5 },
    () => async (db: Kysely<DB>) =>
      db.transaction().execute(async (trx) => {
        const { value } = await trx
          .selectFrom('counters')
          .select('value')
          .where('name', '=', 'a')
          .executeTakeFirstOrThrow()
        await delay(2)
        await trx
          .updateTable('counters')
          .set({ value: value + 1 })
          .where('name', '=', 'a')
          .execute()
        return 'done'
      }),
  ),
])

differentialScopes('scopes: controlled transaction in one scope, plain write in another', [
  async (db) => {
    const trx = await db.startTransaction().execute()
    await trx.insertInto('log').values({ message: 'controlled A' }).execute()
    await delay(15)
    await trx.rollback().execute()
    return 'rolled back'
  },
  async (db) => {
    await delay(5)
    await db.insertInto('log').values({ message: 'plain B' }).execute()
    return rowsOf(db, 'log')
  },
])

differentialScopes('scopes: savepoint rollback in one scope while another scope reads', [
  async (db) => {
    const trx = await db.startTransaction().execute()
    await trx.insertInto('log').values({ message: 'kept' }).execute()
    const sp = await trx.savepoint('s').execute()
    await sp.insertInto('log').values({ message: 'undone' }).execute()
    await sp.rollbackToSavepoint('s').execute()
    await delay(5)
    await trx.commit().execute()
    return 'committed'
  },
  async (db) => {
    await delay(2)
    return db.selectFrom('log').select('message').orderBy('id').execute()
  },
])
