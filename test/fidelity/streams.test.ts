// `.stream()` on t.db against bare Kysely. Kysely's SqliteDriver iterates one
// better-sqlite3 statement and holds its one connection until the iteration
// ends (or breaks): other statements wait for it rather than run mid-stream.
import { sql } from 'kysely'
import { delay, differential, differentialScopes, outcome, rowsOf } from './harness.js'

differential('stream: full iteration yields every row in order', async (db) => {
  const rows: unknown[] = []
  for await (const row of db.selectFrom('items').selectAll().orderBy('id').stream()) rows.push(row)
  return rows
})

differential('stream: early break, then the db is usable', async (db) => {
  const rows: unknown[] = []
  for await (const row of db.selectFrom('items').select(['id', 'name']).orderBy('id').stream()) {
    rows.push(row)
    if (rows.length === 2) break
  }
  await db.insertInto('log').values({ message: 'after break' }).execute()
  return { rows, log: await rowsOf(db, 'log') }
})

differential('stream: with a chunkSize', async (db) => {
  const rows: unknown[] = []
  for await (const row of db.selectFrom('tags').select(['id', 'label']).orderBy('id').stream(2)) rows.push(row)
  return rows
})

differential('stream: sees rows inserted before it starts', async (db) => {
  await db
    .insertInto('log')
    .values([{ message: 'x' }, { message: 'y' }, { message: 'z' }])
    .execute()
  const rows: unknown[] = []
  for await (const row of db.selectFrom('log').select('message').orderBy('id').stream()) rows.push(row)
  return rows
})

differential('stream: an empty result yields nothing', async (db) => {
  const rows: unknown[] = []
  for await (const row of db.selectFrom('items').selectAll().where('qty', '>', 1000).stream()) rows.push(row)
  return rows
})

differential('stream: with parameters, a join and a where', async (db) => {
  const rows: unknown[] = []
  const query = db
    .selectFrom('tags')
    .innerJoin('items', 'items.id', 'tags.item_id')
    .select(['items.name', 'tags.label'])
    .where('tags.label', '=', 'sweet')
    .orderBy('tags.id')
  for await (const row of query.stream()) rows.push(row)
  return rows
})

differential('stream: inside a transaction sees its uncommitted rows', async (db) => {
  return db.transaction().execute(async (trx) => {
    await trx.insertInto('items').values({ name: 'quince', qty: 1 }).execute()
    const names: string[] = []
    for await (const row of trx.selectFrom('items').select('name').orderBy('id').stream()) names.push(row.name)
    return names
  })
})

differential('stream: on a connection() c', async (db) => {
  return db.connection().execute(async (c) => {
    const names: string[] = []
    for await (const row of c.selectFrom('counters').select('name').orderBy('name').stream()) names.push(row.name)
    await c
      .insertInto('log')
      .values({ message: names.join(',') })
      .execute()
    return names
  })
})

differential('stream: a throw inside the loop ends it, and the db stays usable', async (db) => {
  const failed = await outcome(
    (async () => {
      for await (const row of db.selectFrom('items').select('id').orderBy('id').stream()) {
        if (row.id === 2) throw new Error('stop at 2')
      }
    })(),
  )
  const after = await db
    .selectFrom('items')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst()
  return { failed, after }
})

differential('stream: an insert … returning cannot be streamed (the driver streams selects only)', async (db) => {
  const result = await outcome(
    (async () => {
      const rows: unknown[] = []
      for await (const row of db.insertInto('log').values({ message: 'streamed insert' }).returning('id').stream())
        rows.push(row)
      return rows
    })(),
  )
  return { result, log: await rowsOf(db, 'log') }
})

differential('stream: a raw sql select cannot be streamed either', async (db) => {
  return outcome(
    (async () => {
      const rows: unknown[] = []
      const query = sql<{ n: number }>`select 1 as n`
      for await (const row of db.getExecutor().stream(query.compile(db), 1)) rows.push(row.rows)
      return rows
    })(),
  )
})

differential('stream: a plain insert started mid-stream waits for the stream to end', async (db) => {
  const seen: string[] = []
  let insert: Promise<unknown> | undefined
  for await (const row of db.selectFrom('items').select('name').orderBy('id').stream()) {
    seen.push(row.name)
    if (seen.length === 1) insert = outcome(db.insertInto('items').values({ name: 'zucchini' }).execute())
    await delay(2)
  }
  return { seen, insert: await insert, items: await db.selectFrom('items').select('name').orderBy('id').execute() }
})

// Both streams see every row of their own query (t.db buffers, so the second need not wait:
// shardines-differences.test.ts).
differential('stream: a second stream started mid-stream gets all its rows', async (db) => {
  const first: string[] = []
  const second: string[] = []
  const other = (async () => {
    await delay(1)
    for await (const row of db.selectFrom('counters').select('name').orderBy('name').stream()) second.push(row.name)
  })()
  for await (const row of db.selectFrom('tags').select('id').orderBy('id').stream()) {
    first.push(String(row.id))
    await delay(2)
  }
  await other
  return { first, second }
})

differentialScopes('stream: another scope writing while a scope streams waits for the stream (and both succeed)', [
  async (db) => {
    const names: string[] = []
    for await (const row of db.selectFrom('items').select('name').orderBy('id').stream()) {
      names.push(row.name)
      await delay(3)
    }
    return names
  },
  async (db) => {
    await delay(4)
    await db.insertInto('log').values({ message: 'written by another scope' }).execute()
    return rowsOf(db, 'log')
  },
])

differentialScopes('stream: another scope reading while a scope streams', [
  async (db) => {
    let n = 0
    for await (const _ of db.selectFrom('tags').select('id').stream()) {
      n++
      await delay(3)
    }
    return n
  },
  async (db) => {
    await delay(4)
    return db.selectFrom('counters').selectAll().orderBy('name').execute()
  },
])
