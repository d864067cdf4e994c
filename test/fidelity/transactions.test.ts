// `db.transaction().execute(fn)` on t.db against bare Kysely: commit, rollback,
// return values, access modes, errors inside, upserts and returning.
import { CompiledQuery, sql } from 'kysely'
import { delay, differential, outcome, outcomes, rowsOf } from './harness.js'

differential('transaction: commits its writes and resolves to the callback value', async (db) => {
  const value = await db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'in trx' }).execute()
    await trx.updateTable('counters').set({ value: 2 }).where('name', '=', 'a').execute()
    return { answer: 42 }
  })
  return { value, log: await rowsOf(db, 'log'), counters: await rowsOf(db, 'counters') }
})

differential(
  'transaction: a throw rolls back every write and rejects with the thrown error',
  async (db) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'doomed' }).execute()
      await trx.deleteFrom('tags').execute()
      throw new Error('boom')
    })
  },
  { rejects: /boom/ },
)

differential('transaction: after a rollback the rows are as before and the db is usable', async (db) => {
  const first = await outcome(
    db.transaction().execute(async (trx) => {
      await trx.updateTable('items').set({ qty: 999 }).execute()
      throw new Error('undo')
    }),
  )
  return { first, items: await rowsOf(db, 'items') }
})

differential('transaction: reads inside see the transaction own uncommitted writes', async (db) => {
  return db.transaction().execute(async (trx) => {
    await trx.insertInto('items').values({ name: 'fig', qty: 1 }).execute()
    const inside = await trx.selectFrom('items').select(['name', 'qty']).where('name', '=', 'fig').execute()
    const count = await trx
      .selectFrom('items')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst()
    return { inside, count }
  })
})

differential('transaction: resolves to undefined, a number, a string and rows as returned', async (db) => {
  const a = await db.transaction().execute(async () => undefined)
  const b = await db.transaction().execute(async () => 7)
  const c = await db.transaction().execute(async () => 'text')
  const d = await db.transaction().execute((trx) => trx.selectFrom('counters').selectAll().orderBy('name').execute())
  return { a, b, c, d }
})

differential('transaction: setAccessMode("read only") runs reads and commits', async (db) => {
  return db
    .transaction()
    .setAccessMode('read only')
    .execute((trx) => trx.selectFrom('items').select('name').orderBy('id').execute())
})

differential(
  'transaction: setAccessMode("read only") is not enforced by the SQLite driver (a write commits)',
  async (db) => {
    const result = await outcome(
      db
        .transaction()
        .setAccessMode('read only')
        .execute(async (trx) => {
          await trx.insertInto('log').values({ message: 'written read-only' }).execute()
          return 'done'
        }),
    )
    return { result, log: await rowsOf(db, 'log') }
  },
)

differential('transaction: setIsolationLevel is accepted and ignored by SQLite', async (db) => {
  return db
    .transaction()
    .setIsolationLevel('serializable')
    .execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'serializable' }).execute()
      return trx.selectFrom('log').select('message').orderBy('id').execute()
    })
})

differential(
  'transaction: a unique-constraint error rolls back the earlier writes',
  async (db) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'before' }).execute()
      await trx.insertInto('items').values({ name: 'apple', qty: 1 }).execute()
    })
  },
  { rejects: /SQLITE_CONSTRAINT_UNIQUE/ },
)

differential('transaction: a constraint error caught inside keeps the transaction and commits the rest', async (db) => {
  const value = await db.transaction().execute(async (trx) => {
    await trx.insertInto('log').values({ message: 'kept 1' }).execute()
    const failed = await outcome(trx.insertInto('items').values({ name: 'banana' }).execute())
    await trx.insertInto('log').values({ message: 'kept 2' }).execute()
    return failed
  })
  return { value, log: await rowsOf(db, 'log') }
})

differential('transaction: insertInto … returning inside a transaction', async (db) => {
  const inserted = await db.transaction().execute((trx) =>
    trx
      .insertInto('items')
      .values([
        { name: 'grape', qty: 9, category: 'fruit' },
        { name: 'hops', qty: 1 },
      ])
      .returning(['id', 'name', 'qty', 'category'])
      .execute(),
  )
  return { inserted, items: await rowsOf(db, 'items') }
})

differential('transaction: onConflict doUpdateSet upsert inside a transaction', async (db) => {
  const returned = await db.transaction().execute(async (trx) => {
    const a = await trx
      .insertInto('counters')
      .values({ name: 'a', value: 100 })
      .onConflict((oc) =>
        oc.column('name').doUpdateSet((eb) => ({ value: eb('counters.value', '+', eb.ref('excluded.value')) })),
      )
      .returningAll()
      .execute()
    const c = await trx
      .insertInto('counters')
      .values({ name: 'c', value: 3 })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: 0 }))
      .returningAll()
      .execute()
    return { a, c }
  })
  return { returned, counters: await rowsOf(db, 'counters') }
})

differential('transaction: onConflict doNothing inside a transaction, then rolled back', async (db) => {
  const result = await outcome(
    db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto('items')
        .values([{ name: 'apple' }, { name: 'kiwi' }])
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst()
      throw new Error(`rollback after ${r.numInsertedOrUpdatedRows} rows`)
    }),
  )
  return { result, items: await rowsOf(db, 'items') }
})

differential('transaction: the trx used after commit rejects (Kysely: already committed)', async (db) => {
  let kept: any
  await db.transaction().execute(async (trx) => {
    kept = trx
    await trx.insertInto('log').values({ message: 'committed' }).execute()
  })
  const after = await outcome(kept.selectFrom('log').selectAll().execute())
  return { after, log: await rowsOf(db, 'log') }
})

differential('transaction: the trx used after rollback rejects (Kysely: already rolled back)', async (db) => {
  let kept: any
  await outcome(
    db.transaction().execute(async (trx) => {
      kept = trx
      throw new Error('x')
    }),
  )
  return outcome(kept.insertInto('log').values({ message: 'late' }).execute())
})

differential('transaction: trx.transaction(), trx.connection() and trx.destroy() are refused', async (db) => {
  return db.transaction().execute(async (trx) => {
    const nested = await outcome(async () => (trx as any).transaction().execute(async () => 1))
    const connection = await outcome(async () => (trx as any).connection().execute(async () => 1))
    const destroy = await outcome(trx.destroy())
    return { nested, connection, destroy }
  })
})

differential('transaction: two in sequence each commit', async (db) => {
  await db.transaction().execute((trx) => trx.insertInto('log').values({ message: 'one' }).execute())
  await db.transaction().execute((trx) => trx.insertInto('log').values({ message: 'two' }).execute())
  return rowsOf(db, 'log')
})

differential('transaction: two started together run one after the other', async (db) => {
  const order: string[] = []
  const run = (name: string) =>
    db.transaction().execute(async (trx) => {
      order.push(`${name}:begin`)
      await trx.insertInto('log').values({ message: name }).execute()
      await delay(10)
      order.push(`${name}:end`)
    })
  await Promise.all([run('a'), run('b')])
  return { order, log: await rowsOf(db, 'log') }
})

differential(
  'transaction: a non-Error throw rejects with that value and rolls back',
  async (db) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'gone' }).execute()
      throw 'plain string'
    })
  },
  { rejects: /plain string/ },
)

differential(
  'transaction: a foreign-key violation inside rolls everything back',
  async (db) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('tags').values({ item_id: 2, label: 'ok' }).execute()
      await trx.insertInto('tags').values({ item_id: 404, label: 'dangling' }).execute()
    })
  },
  { rejects: /SQLITE_CONSTRAINT_FOREIGNKEY/ },
)

differential('transaction: DDL inside a rolled-back transaction leaves no table', async (db) => {
  const result = await outcome(
    db.transaction().execute(async (trx) => {
      await trx.schema.createTable('scratch').addColumn('x', 'integer').execute()
      await trx
        .insertInto('scratch' as any)
        .values({ x: 1 })
        .execute()
      throw new Error('no DDL either')
    }),
  )
  const tables = await db.introspection.getTables()
  return { result, tables: tables.map((t) => t.name) }
})

differential('transaction: DDL inside a committed transaction stays', async (db) => {
  await db.transaction().execute(async (trx) => {
    await trx.schema.createTable('scratch').addColumn('x', 'integer').execute()
    await trx
      .insertInto('scratch' as any)
      .values({ x: 1 })
      .execute()
    await trx.schema.alterTable('items').addColumn('note', 'text').execute()
  })
  return db
    .selectFrom('scratch' as any)
    .selectAll()
    .execute()
})

differential('transaction: deleteFrom … returning inside a transaction', async (db) => {
  const deleted = await db
    .transaction()
    .execute((trx) => trx.deleteFrom('tags').where('label', '=', 'sweet').returning(['id', 'item_id']).execute())
  return { deleted, tags: await rowsOf(db, 'tags') }
})

differential('transaction: trx.executeQuery(CompiledQuery.raw(...)) reads and writes', async (db) => {
  return db.transaction().execute(async (trx) => {
    const write = await trx.executeQuery(CompiledQuery.raw("insert into log (message) values ('raw')"))
    const read = await trx.executeQuery(CompiledQuery.raw('select message from log order by id desc limit ?', [1]))
    return { write, read: read.rows }
  })
})

differential(
  'transaction: a deferred foreign key fails at commit, and the transaction rolls back',
  async (db) => {
    await sql`create table deferred_ref (id integer primary key, item_id integer references items(id) deferrable initially deferred)`.execute(
      db,
    )
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('log').values({ message: 'with a bad ref' }).execute()
      await sql`insert into deferred_ref (item_id) values (404)`.execute(trx)
    })
  },
  { rejects: /SQLITE_CONSTRAINT_FOREIGNKEY/ },
)

differential('transaction: a deferred-FK commit failure leaves the db usable', async (db) => {
  await sql`create table deferred_ref (id integer primary key, item_id integer references items(id) deferrable initially deferred)`.execute(
    db,
  )
  const failed = await outcome(
    db.transaction().execute((trx) => sql`insert into deferred_ref (item_id) values (404)`.execute(trx)),
  )
  await db.insertInto('log').values({ message: 'after' }).execute()
  return {
    failed,
    log: await rowsOf(db, 'log'),
    refs: await db
      .selectFrom('deferred_ref' as any)
      .selectAll()
      .execute(),
  }
})

differential('transaction: update … returningAll of several rows', async (db) => {
  const rows = await db.transaction().execute((trx) =>
    trx
      .updateTable('items')
      .set((eb) => ({ qty: eb('qty', '*', 2) }))
      .where('category', '=', 'fruit')
      .returningAll()
      .execute(),
  )
  return rows.sort((a, b) => a.id - b.id)
})

differential('transaction: update … orderBy without limit is refused by SQLite alike', async (db) => {
  return outcome(
    db
      .transaction()
      .execute((trx) =>
        trx.updateTable('items').set({ qty: 1 }).where('category', '=', 'fruit').orderBy('id').execute(),
      ),
  )
})

differential('transaction: a failing statement after a caught one still rolls back on throw', async (db) => {
  const steps = await outcomes([
    db.transaction().execute(async (trx) => {
      await trx.insertInto('counters').values({ name: 'z', value: 1 }).execute()
      await outcome(trx.insertInto('counters').values({ name: 'z', value: 2 }).execute())
      throw new Error('give up')
    }),
  ])
  return { steps, counters: await rowsOf(db, 'counters') }
})
