// `db.connection().execute(fn)` on t.db against bare Kysely. Kysely's
// SqliteDriver hands out its one connection under a mutex: a connection()
// callback has the database to itself until it returns, and every other
// statement, transaction or connection() waits for it.
import { sql } from 'kysely'
import { delay, differential, outcome, outcomes, rowsOf } from './harness.js'

differential('connection: statements on c run and commit (autocommit)', async (db) => {
  const value = await db.connection().execute(async (c) => {
    await c.insertInto('log').values({ message: 'on c' }).execute()
    return c.selectFrom('log').select('message').orderBy('id').execute()
  })
  return { value, log: await rowsOf(db, 'log') }
})

differential('connection: resolves to the callback value', async (db) => {
  return db.connection().execute(async (c) => {
    const row = await c.selectFrom('items').select(['id', 'name']).where('id', '=', 3).executeTakeFirstOrThrow()
    return { row, n: 1 }
  })
})

differential('connection: a throw rejects; statements that ran before it stay committed', async (db) => {
  const result = await outcome(
    db.connection().execute(async (c) => {
      await c.insertInto('log').values({ message: 'autocommitted' }).execute()
      throw new Error('callback failed')
    }),
  )
  return { result, log: await rowsOf(db, 'log') }
})

differential('connection: a transaction on c commits', async (db) => {
  await db.connection().execute((c) =>
    c.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'trx on c' }).execute()
      await trx.updateTable('counters').set({ value: 0 }).execute()
    }),
  )
  return { log: await rowsOf(db, 'log'), counters: await rowsOf(db, 'counters') }
})

differential('connection: a transaction on c rolls back on throw, c stays usable', async (db) => {
  return db.connection().execute(async (c) => {
    const failed = await outcome(
      c.transaction().execute(async (trx) => {
        await trx.insertInto('log').values({ message: 'rolled back' }).execute()
        throw new Error('no')
      }),
    )
    await c.insertInto('log').values({ message: 'after the rollback' }).execute()
    return { failed, log: await c.selectFrom('log').select('message').orderBy('id').execute() }
  })
})

differential('connection: a controlled transaction on c with a savepoint', async (db) => {
  await db.connection().execute(async (c) => {
    const trx = await c.startTransaction().execute()
    await trx.insertInto('log').values({ message: 'kept' }).execute()
    const sp = await trx.savepoint('s').execute()
    await sp.insertInto('log').values({ message: 'undone' }).execute()
    await sp.rollbackToSavepoint('s').execute()
    await trx.commit().execute()
  })
  return rowsOf(db, 'log')
})

differential('connection: statements on c started together run in call order', async (db) => {
  return db.connection().execute(async (c) => {
    const results = await Promise.all([
      c.insertInto('log').values({ message: 'first' }).returning('id').execute(),
      c.insertInto('log').values({ message: 'second' }).returning('id').execute(),
      c
        .selectFrom('log')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .execute(),
    ])
    return results
  })
})

differential('connection: two concurrent callbacks run one after the other', async (db) => {
  const order: string[] = []
  await Promise.all([
    db.connection().execute(async (c) => {
      order.push('a:start')
      await delay(10)
      await c.insertInto('log').values({ message: 'a' }).execute()
      order.push('a:end')
    }),
    db.connection().execute(async (c) => {
      order.push('b:start')
      await c.insertInto('log').values({ message: 'b' }).execute()
      await delay(1)
      order.push('b:end')
    }),
  ])
  return { order, log: await rowsOf(db, 'log') }
})

differential('connection: a plain statement started during a callback waits until it returns', async (db) => {
  const order: string[] = []
  const held = db.connection().execute(async (c) => {
    order.push('conn:start')
    await c.insertInto('log').values({ message: 'conn 1' }).execute()
    await delay(15)
    await c.insertInto('log').values({ message: 'conn 2' }).execute()
    order.push('conn:end')
  })
  await delay(3)
  const plain = db
    .insertInto('log')
    .values({ message: 'plain' })
    .execute()
    .then(() => order.push('plain'))
  await Promise.all([held, plain])
  return { order, log: await rowsOf(db, 'log') }
})

differential('connection: a transaction started during a callback waits until it returns', async (db) => {
  const order: string[] = []
  const held = db.connection().execute(async (c) => {
    order.push('conn:start')
    await delay(15)
    const n = await c
      .selectFrom('log')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    order.push(`conn:end saw ${n.n}`)
  })
  await delay(3)
  const trx = db.transaction().execute(async (t) => {
    order.push('trx')
    await t.insertInto('log').values({ message: 'trx' }).execute()
  })
  await Promise.all([held, trx])
  return order
})

differential('connection: five concurrent read-modify-write callbacks lose no update', async (db) => {
  await Promise.all(
    Array.from({ length: 5 }, () =>
      db.connection().execute(async (c) => {
        const { value } = await c
          .selectFrom('counters')
          .select('value')
          .where('name', '=', 'a')
          .executeTakeFirstOrThrow()
        await delay(2)
        await c
          .updateTable('counters')
          .set({ value: value + 1 })
          .where('name', '=', 'a')
          .execute()
      }),
    ),
  )
  return rowsOf(db, 'counters')
})

differential('connection: five concurrent read-modify-write transactions lose no update', async (db) => {
  await Promise.all(
    Array.from({ length: 5 }, () =>
      db.transaction().execute(async (trx) => {
        const { value } = await trx
          .selectFrom('counters')
          .select('value')
          .where('name', '=', 'b')
          .executeTakeFirstOrThrow()
        await delay(2)
        await trx
          .updateTable('counters')
          .set({ value: value + 1 })
          .where('name', '=', 'b')
          .execute()
      }),
    ),
  )
  return rowsOf(db, 'counters')
})

differential('connection: a temp table made on c is seen by later statements on db', async (db) => {
  await db.connection().execute(async (c) => {
    await sql`create temp table conn_scratch (x integer)`.execute(c)
    await sql`insert into conn_scratch values (1), (2)`.execute(c)
  })
  return outcome(sql`select x from conn_scratch order by x`.execute(db).then((r) => r.rows))
})

differential(
  'connection: nested db.connection() inside a callback gets its own turn (no deadlock on c)',
  async (db) => {
    return db.connection().execute(async (c) => {
      const inner = await c.connection().execute(async (c2) => c2.selectFrom('counters').select('name').execute())
      return { inner, outer: await c.selectFrom('counters').select('value').orderBy('name').execute() }
    })
  },
)

// The statements reach the file in call order on both (the log's ids). When each caller's promise
// settles may differ: t.db frees the tenant once a statement has run, Kysely once its promise chain ends.
differential('connection: callbacks, a transaction and plain statements interleaved keep call order', async (db) => {
  const tasks = [
    db.connection().execute(async (c) => {
      await delay(5)
      await c.insertInto('log').values({ message: 'c1' }).execute()
    }),
    db.insertInto('log').values({ message: 'p1' }).execute(),
    db.transaction().execute(async (trx) => {
      await delay(5)
      await trx.insertInto('log').values({ message: 't1' }).execute()
    }),
    db.insertInto('log').values({ message: 'p2' }).execute(),
  ]
  const settled = await outcomes(tasks)
  return { settled: settled.map((s) => 'ok' in s), log: await rowsOf(db, 'log') }
})
