// `db.startTransaction()` on t.db against bare Kysely: commit, rollback, use
// after the end, and savepoints, which Kysely's SqliteDriver runs as real SQL
// (`savepoint "a"`, `rollback to "a"`, `release "a"`).
import { differential, outcome, rowsOf } from './harness.js'

differential('controlled transaction: commit makes its writes durable', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'controlled' }).execute()
  await trx.updateTable('counters').set({ value: 5 }).where('name', '=', 'b').execute()
  await trx.commit().execute()
  return { log: await rowsOf(db, 'log'), counters: await rowsOf(db, 'counters') }
})

differential('controlled transaction: rollback discards its writes', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'discarded' }).execute()
  await trx.deleteFrom('tags').execute()
  await trx.rollback().execute()
  return { log: await rowsOf(db, 'log'), tags: await rowsOf(db, 'tags') }
})

differential('controlled transaction: reads inside see its own writes', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('items').values({ name: 'lime', qty: 2 }).execute()
  const inside = await trx.selectFrom('items').select('name').orderBy('id').execute()
  await trx.rollback().execute()
  return { inside, after: await db.selectFrom('items').select('name').orderBy('id').execute() }
})

differential('controlled transaction: isCommitted / isRolledBack follow commit and rollback', async (db) => {
  const a = await db.startTransaction().execute()
  const before = [a.isCommitted, a.isRolledBack]
  await a.commit().execute()
  const afterCommit = [a.isCommitted, a.isRolledBack]
  const b = await db.startTransaction().execute()
  await b.rollback().execute()
  return { before, afterCommit, afterRollback: [b.isCommitted, b.isRolledBack] }
})

differential('controlled transaction: a query after commit rejects (already committed)', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'then committed' }).execute()
  await trx.commit().execute()
  const late = await outcome(trx.insertInto('log').values({ message: 'too late' }).execute())
  return { late, log: await rowsOf(db, 'log') }
})

differential('controlled transaction: a query after rollback rejects (already rolled back)', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.rollback().execute()
  return outcome(trx.selectFrom('items').selectAll().execute())
})

differential('controlled transaction: commit twice rejects the second time', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.commit().execute()
  return outcome(trx.commit().execute())
})

differential('controlled transaction: rollback after commit rejects', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'kept' }).execute()
  await trx.commit().execute()
  const rollback = await outcome(trx.rollback().execute())
  return { rollback, log: await rowsOf(db, 'log') }
})

differential('controlled transaction: setAccessMode("read only") reads and commits', async (db) => {
  const trx = await db.startTransaction().setAccessMode('read only').execute()
  const rows = await trx.selectFrom('counters').selectAll().orderBy('name').execute()
  await trx.commit().execute()
  return rows
})

differential('controlled transaction: insert … returning, then commit', async (db) => {
  const trx = await db.startTransaction().execute()
  const row = await trx
    .insertInto('items')
    .values({ name: 'mango', qty: 4 })
    .returning(['id', 'name'])
    .executeTakeFirstOrThrow()
  await trx.commit().execute()
  return { row, items: await rowsOf(db, 'items') }
})

differential('controlled transaction: a caught constraint error, then commit keeps the other writes', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'first' }).execute()
  const failed = await outcome(trx.insertInto('items').values({ id: 1, name: 'dup id' }).execute())
  await trx.insertInto('log').values({ message: 'second' }).execute()
  await trx.commit().execute()
  return { failed, log: await rowsOf(db, 'log') }
})

differential('savepoint: rollbackToSavepoint discards only the writes after it', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'before savepoint' }).execute()
  const sp = await trx.savepoint('a').execute()
  await sp.insertInto('log').values({ message: 'after savepoint' }).execute()
  const back = await sp.rollbackToSavepoint('a').execute()
  await back.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: rows inside the transaction after rollbackToSavepoint', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  await sp.updateTable('items').set({ qty: 100 }).execute()
  await sp.deleteFrom('tags').execute()
  const back = await sp.rollbackToSavepoint('a').execute()
  const inside = {
    qty: await back.selectFrom('items').select('qty').orderBy('id').execute(),
    tags: await back.selectFrom('tags').select('id').orderBy('id').execute(),
  }
  await back.rollback().execute()
  return inside
})

differential('savepoint: releaseSavepoint keeps the writes, commit makes them durable', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  await sp.insertInto('log').values({ message: 'released' }).execute()
  const released = await sp.releaseSavepoint('a').execute()
  await released.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: rollback of the whole transaction discards released savepoint writes', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  await sp.insertInto('log').values({ message: 'gone with the transaction' }).execute()
  const released = await sp.releaseSavepoint('a').execute()
  await released.rollback().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: nested a > b, rollback to b keeps the writes between a and b', async (db) => {
  const trx = await db.startTransaction().execute()
  const a = await trx.savepoint('a').execute()
  await a.insertInto('log').values({ message: 'in a' }).execute()
  const b = await a.savepoint('b').execute()
  await b.insertInto('log').values({ message: 'in b' }).execute()
  const backToB = await b.rollbackToSavepoint('b').execute()
  const releasedA = await backToB.releaseSavepoint('a').execute()
  await releasedA.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: nested a > b, rollback to a discards both', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'outside savepoints' }).execute()
  const a = await trx.savepoint('a').execute()
  await a.insertInto('log').values({ message: 'in a' }).execute()
  const b = await a.savepoint('b').execute()
  await b.insertInto('log').values({ message: 'in b' }).execute()
  const backToA = await (b as any).rollbackToSavepoint('a').execute()
  await backToA.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: rollback to the same savepoint twice (it stays open after a rollback to)', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  await sp.insertInto('log').values({ message: 'first try' }).execute()
  await sp.rollbackToSavepoint('a').execute()
  await sp.insertInto('log').values({ message: 'second try' }).execute()
  await sp.rollbackToSavepoint('a').execute()
  await sp.insertInto('log').values({ message: 'third try' }).execute()
  await sp.releaseSavepoint('a').execute()
  await trx.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: rolling back to an unknown savepoint rejects (no such savepoint)', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  const result = await outcome(
    (sp as any)
      .rollbackToSavepoint('nope')
      .execute()
      .then(() => 'resolved'),
  )
  await trx.rollback().execute()
  return result
})

differential('savepoint: releasing twice rejects the second time (no such savepoint)', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('a').execute()
  await sp.insertInto('log').values({ message: 'x' }).execute()
  await sp.releaseSavepoint('a').execute()
  const again = await outcome(
    (sp as any)
      .releaseSavepoint('a')
      .execute()
      .then(() => 'resolved'),
  )
  await trx.commit().execute()
  return { again, log: await rowsOf(db, 'log') }
})

differential('savepoint: a quoted name with spaces works', async (db) => {
  const trx = await db.startTransaction().execute()
  await trx.insertInto('log').values({ message: 'kept' }).execute()
  const sp = await trx.savepoint('my "odd" point').execute()
  await sp.insertInto('log').values({ message: 'undone' }).execute()
  await sp.rollbackToSavepoint('my "odd" point').execute()
  await trx.commit().execute()
  return rowsOf(db, 'log')
})

differential('savepoint: undoes a failed batch while the transaction goes on', async (db) => {
  const trx = await db.startTransaction().execute()
  const results: unknown[] = []
  for (const name of ['nectarine', 'apple', 'olive']) {
    const sp = await trx.savepoint('row').execute()
    await sp
      .insertInto('log')
      .values({ message: `trying ${name}` })
      .execute()
    const inserted = await outcome(sp.insertInto('items').values({ name }).execute())
    results.push(inserted)
    if ('error' in inserted) await sp.rollbackToSavepoint('row').execute()
    else await sp.releaseSavepoint('row').execute()
  }
  await trx.commit().execute()
  return { results, log: await rowsOf(db, 'log'), items: await rowsOf(db, 'items') }
})

differential('savepoint: a savepoint-rolled-back DDL statement leaves no table', async (db) => {
  const trx = await db.startTransaction().execute()
  const sp = await trx.savepoint('ddl').execute()
  await sp.schema.createTable('short_lived').addColumn('x', 'integer').execute()
  await sp.rollbackToSavepoint('ddl').execute()
  await trx.commit().execute()
  return (await db.introspection.getTables()).map((t) => t.name)
})
