// Ordinary CRUD through the query builder on t.db against bare Kysely: the
// same rows back, the same rows written.
import { CompiledQuery, sql } from 'kysely'
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/sqlite'
import { differential, rowsOf } from './harness.js'

differential('query: selectAll with where, orderBy, limit and offset', async (db) => {
  return db.selectFrom('items').selectAll().where('qty', '>', 1).orderBy('qty', 'desc').limit(2).offset(1).execute()
})

differential('query: where with and/or/not, in, between, like, is null', async (db) => {
  return db
    .selectFrom('items')
    .select(['id', 'name'])
    .where((eb) =>
      eb.or([
        eb.and([eb('category', '=', 'fruit'), eb.between('qty', 1, 6)]),
        eb('category', 'is', null),
        eb('name', 'like', 'd%'),
        eb.not(eb('id', 'in', [1, 2, 3, 4, 5])),
      ]),
    )
    .orderBy('id')
    .execute()
})

differential('query: inner join and left join', async (db) => {
  const inner = await db
    .selectFrom('items')
    .innerJoin('tags', 'tags.item_id', 'items.id')
    .select(['items.name', 'tags.label'])
    .orderBy('tags.id')
    .execute()
  const left = await db
    .selectFrom('items')
    .leftJoin('tags', 'tags.item_id', 'items.id')
    .select(['items.name', 'tags.label'])
    .orderBy('items.id')
    .orderBy('tags.id')
    .execute()
  return { inner, left }
})

differential('query: self join with aliases', async (db) => {
  return db
    .selectFrom('items as a')
    .innerJoin('items as b', (join) => join.onRef('a.category', '=', 'b.category').onRef('a.id', '<', 'b.id'))
    .select(['a.name as first', 'b.name as second'])
    .orderBy('a.id')
    .execute()
})

differential('query: subqueries in where (in, exists) and in select', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      'name',
      eb
        .selectFrom('tags')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('tags.item_id', '=', 'items.id')
        .as('tag_count'),
    ])
    .where('id', 'in', (eb) => eb.selectFrom('tags').select('item_id'))
    .where((eb) =>
      eb.exists(
        eb.selectFrom('tags').select('id').whereRef('tags.item_id', '=', 'items.id').where('label', '=', 'sweet'),
      ),
    )
    .orderBy('id')
    .execute()
})

differential('query: select from a subquery', async (db) => {
  return db
    .selectFrom((eb) => eb.selectFrom('items').select(['category', 'qty']).where('qty', '>', 0).as('positive'))
    .select(['positive.category', (eb) => eb.fn.sum<number>('positive.qty').as('total')])
    .groupBy('positive.category')
    .orderBy('positive.category')
    .execute()
})

differential('query: a CTE', async (db) => {
  return db
    .with('fruity', (qb) => qb.selectFrom('items').select(['id', 'name']).where('category', '=', 'fruit'))
    .selectFrom('fruity')
    .innerJoin('tags', 'tags.item_id', 'fruity.id')
    .select(['fruity.name', 'tags.label'])
    .orderBy('tags.id')
    .execute()
})

differential('query: a recursive CTE', async (db) => {
  return db
    .withRecursive('seq(n)', (qb) =>
      qb
        .selectNoFrom(sql<number>`1`.as('n'))
        .unionAll((q) => q.selectFrom('seq').select(sql<number>`n + 1`.as('n')).where('n', '<', 5)),
    )
    .selectFrom('seq')
    .select('n')
    .execute()
})

differential('query: a CTE that inserts from a select (insert … select)', async (db) => {
  await db
    .insertInto('log')
    .columns(['message'])
    .expression((eb) =>
      eb
        .selectFrom('items')
        .select((e) => e.fn<string>('upper', ['name']).as('message'))
        .where('qty', '<', 5),
    )
    .execute()
  return rowsOf(db, 'log')
})

differential('query: group by with having, count, sum, avg, min, max', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      'category',
      eb.fn.countAll<number>().as('n'),
      eb.fn.sum<number>('qty').as('sum'),
      eb.fn.avg<number>('qty').as('avg'),
      eb.fn.min('qty').as('min'),
      eb.fn.max('qty').as('max'),
    ])
    .groupBy('category')
    .having((eb) => eb.fn.countAll(), '>=', 1)
    .orderBy('category')
    .execute()
})

differential('query: window functions', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      'name',
      'category',
      eb.fn
        .agg<number>('row_number')
        .over((ob) => ob.partitionBy('category').orderBy('qty', 'desc'))
        .as('rank'),
      eb.fn
        .sum<number>('qty')
        .over((ob) => ob.partitionBy('category'))
        .as('category_total'),
      sql<number>`lag(qty) over (order by id)`.as('previous_qty'),
    ])
    .orderBy('id')
    .execute()
})

differential('query: json functions (json_extract, ->>, json_array_length)', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      'name',
      eb.fn<string>('json_extract', ['meta', sql.lit('$.color')]).as('color'),
      sql<number>`meta ->> '$.sizes[0]'`.as('first_size'),
      eb.fn<number>('json_array_length', ['meta', sql.lit('$.sizes')]).as('n_sizes'),
    ])
    .where('meta', 'is not', null)
    .orderBy('id')
    .execute()
})

differential('query: json_each as a table-valued function', async (db) => {
  return db
    .selectFrom(['items', sql<{ value: number }>`json_each(items.meta, '$.sizes')`.as('s')])
    .select(['items.name', sql<number>`s.value`.as('size')])
    .orderBy('items.id')
    .orderBy(sql`s.value`)
    .execute()
})

differential('query: json_group_array / json_object built in sql', async (db) => {
  return db
    .selectFrom('tags')
    .select((eb) => ['item_id', eb.fn<string>('json_group_array', ['label']).as('labels')])
    .groupBy('item_id')
    .orderBy('item_id')
    .execute()
})

differential('query: jsonArrayFrom / jsonObjectFrom helpers', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      'items.name',
      jsonArrayFrom(
        eb.selectFrom('tags').select(['tags.label']).whereRef('tags.item_id', '=', 'items.id').orderBy('tags.id'),
      ).as('tags'),
      jsonObjectFrom(eb.selectFrom('counters').select(['counters.value']).where('counters.name', '=', 'a')).as(
        'counter',
      ),
    ])
    .orderBy('items.id')
    .execute()
})

differential('query: insert many, then returning', async (db) => {
  const inserted = await db
    .insertInto('items')
    .values([
      { name: 'pear', qty: 1, category: 'fruit' },
      { name: 'leek', qty: 2, category: 'vegetable' },
      { name: 'salt', qty: 3 },
    ])
    .returning(['id', 'name'])
    .execute()
  return { inserted, items: await rowsOf(db, 'items') }
})

differential('query: insert result has insertId and numInsertedOrUpdatedRows', async (db) => {
  const one = await db.insertInto('log').values({ message: 'a' }).executeTakeFirstOrThrow()
  const many = await db
    .insertInto('log')
    .values([{ message: 'b' }, { message: 'c' }])
    .executeTakeFirstOrThrow()
  return { one, many }
})

differential('query: update with a where, result counts', async (db) => {
  const result = await db
    .updateTable('items')
    .set((eb) => ({ qty: eb('qty', '+', 1), category: eb.fn.coalesce('category', sql.lit('misc')) }))
    .where('qty', '<', 5)
    .executeTakeFirstOrThrow()
  return { result, items: await rowsOf(db, 'items') }
})

differential('query: update … from (SQLite 3.33+)', async (db) => {
  await db
    .updateTable('items')
    .from('counters')
    .set((eb) => ({ qty: eb.ref('counters.value') }))
    .whereRef('counters.name', '=', sql.raw("'a'"))
    .where('items.category', '=', 'fruit')
    .execute()
  return rowsOf(db, 'items')
})

differential('query: update with a correlated subquery', async (db) => {
  await db
    .updateTable('items')
    .set((eb) => ({
      qty: eb
        .selectFrom('tags')
        .select((e) => e.fn.countAll<number>().as('n'))
        .whereRef('tags.item_id', '=', 'items.id'),
    }))
    .execute()
  return rowsOf(db, 'items')
})

differential('query: delete with a subquery and returning', async (db) => {
  const deleted = await db
    .deleteFrom('tags')
    .where('item_id', 'in', (eb) => eb.selectFrom('items').select('id').where('category', '=', 'vegetable'))
    .returningAll()
    .execute()
  return { deleted, tags: await rowsOf(db, 'tags') }
})

differential('query: delete … limit (SQLITE_ENABLE_UPDATE_DELETE_LIMIT)', async (db) => {
  const result = await db.deleteFrom('tags').orderBy('id', 'desc').limit(2).executeTakeFirst()
  return { result, tags: await rowsOf(db, 'tags') }
})

differential('query: update … limit', async (db) => {
  await db.updateTable('items').set({ qty: -1 }).orderBy('qty').limit(2).execute()
  return rowsOf(db, 'items')
})

differential('query: onConflict with excluded and a where', async (db) => {
  await db
    .insertInto('items')
    .values([
      { name: 'apple', qty: 100 },
      { name: 'banana', qty: 1 },
      { name: 'nut', qty: 5 },
    ])
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet((eb) => ({ qty: eb.ref('excluded.qty') }))
        .where('excluded.qty', '>', 10),
    )
    .execute()
  return rowsOf(db, 'items')
})

differential('query: insert or ignore and replace into', async (db) => {
  await db
    .insertInto('items')
    .orIgnore()
    .values([{ name: 'apple' }, { name: 'olive' }])
    .execute()
  await db.replaceInto('counters').values({ name: 'a', value: 77 }).execute()
  return { items: await rowsOf(db, 'items'), counters: await rowsOf(db, 'counters') }
})

differential('query: union, union all, intersect and except', async (db) => {
  const names = (q: any) => q.execute()
  const a = db.selectFrom('items').select('name').where('qty', '>', 4)
  const b = db.selectFrom('items').select('name').where('category', '=', 'fruit')
  return {
    union: await names(a.union(b).orderBy('name')),
    unionAll: await names(a.unionAll(b).orderBy('name')),
    intersect: await names(a.intersect(b).orderBy('name')),
    except: await names(a.except(b).orderBy('name')),
  }
})

differential('query: distinct, orderBy nulls last, case when', async (db) => {
  const categories = await db
    .selectFrom('items')
    .select('category')
    .distinct()
    .orderBy('category', (ob) => ob.asc().nullsLast())
    .execute()
  const sizes = await db
    .selectFrom('items')
    .select((eb) => [
      'name',
      eb.case().when('qty', '>', 10).then('many').when('qty', '>', 0).then('some').else('none').end().as('amount'),
    ])
    .orderBy('id')
    .execute()
  return { categories, sizes }
})

differential('query: sql fragments, sql.ref, sql.table, sql.id, sql.lit, sql.join, sql.val', async (db) => {
  const ids = [1, 3, 5]
  const rows = await sql<{ name: string; label: string }>`
    select ${sql.ref('items.name')}, ${sql.lit('x')} as ${sql.id('label')}, ${sql.val(2)} * qty as double_qty
    from ${sql.table('items')}
    where id in (${sql.join(ids)})
    order by id`.execute(db)
  return rows.rows
})

differential('query: sql.raw selects', async (db) => {
  const direct = await sql.raw<{ n: number }>('select count(*) as n from items').execute(db)
  const inBuilder = await db
    .selectFrom('items')
    .select([sql.raw<string>('upper(name)').as('upper')])
    .orderBy(sql.raw('id desc'))
    .execute()
  return { direct: direct.rows, inBuilder }
})

differential('query: a raw sql write returns numAffectedRows and insertId', async (db) => {
  const result = await sql`update items set qty = qty * 10 where category = ${'vegetable'}`.execute(db)
  const insert = await sql`insert into log (message) values (${'raw'})`.execute(db)
  return { result, insert, items: await rowsOf(db, 'items') }
})

differential('query: executeTakeFirst, executeTakeFirstOrThrow', async (db) => {
  const first = await db.selectFrom('items').selectAll().orderBy('id').executeTakeFirst()
  const none = await db.selectFrom('items').selectAll().where('id', '=', -1).executeTakeFirst()
  const orThrow = await db.selectFrom('counters').select('value').where('name', '=', 'b').executeTakeFirstOrThrow()
  return { first, none: none === undefined, orThrow }
})

differential('query: $if and $call', async (db) => {
  const build = (withCategory: boolean, limit?: number) =>
    db
      .selectFrom('items')
      .select('name')
      .$if(withCategory, (qb) => qb.where('category', '=', 'fruit'))
      .$if(limit !== undefined, (qb) => qb.limit(limit as number))
      .$call((qb) => qb.orderBy('id'))
      .execute()
  return { a: await build(true), b: await build(false, 2) }
})

differential('query: selectNoFrom', async (db) => {
  return db
    .selectNoFrom((eb) => [
      eb.val(1).as('one'),
      sql<string>`sqlite_version() is not null`.as('has_version'),
      eb
        .selectFrom('items')
        .select((e) => e.fn.countAll<number>().as('n'))
        .as('n_items'),
    ])
    .execute()
})

differential('query: db.executeQuery(CompiledQuery.raw(...)) with parameters', async (db) => {
  const read = await db.executeQuery(CompiledQuery.raw('select name from items where qty > ? order by id', [4]))
  const write = await db.executeQuery(
    CompiledQuery.raw('update counters set value = value + ? where name = ?', [5, 'a']),
  )
  return { read, write, counters: await rowsOf(db, 'counters') }
})

differential('query: db.executeQuery of a compiled builder query', async (db) => {
  const compiled = db.selectFrom('tags').select(['label']).where('item_id', '=', 1).orderBy('id').compile()
  return db.executeQuery(compiled)
})

differential('query: introspection.getTables()', async (db) => {
  return db.introspection.getTables()
})

differential('query: introspection.getTables() after DDL', async (db) => {
  await db.schema
    .createTable('fresh')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('note', 'text', (c) => c.defaultTo('n/a'))
    .execute()
  await db.schema.dropView('fruit').execute()
  return (await db.introspection.getTables()).map((t) => ({ name: t.name, columns: t.columns }))
})

// getMetadata() is gone in Kysely 0.29 (deprecated in 0.28): getTables() is in both.
differential('query: introspection.getSchemas() and getTables()', async (db) => {
  const schemas = await db.introspection.getSchemas()
  const tables = await db.introspection.getTables()
  return { schemas, tables: tables.map((t) => t.name) }
})

differential('query: schema DDL: alter table add/rename column, rename table, indexes', async (db) => {
  await db.schema.alterTable('counters').addColumn('updated', 'text').execute()
  await db.schema.alterTable('counters').renameColumn('updated', 'touched').execute()
  await db.schema.createIndex('counters_value').on('counters').column('value').unique().execute()
  await db.schema.createTable('renamed_from').addColumn('x', 'integer').execute()
  await db.schema.alterTable('renamed_from').renameTo('renamed_to').execute()
  await db.schema.dropIndex('items_category').execute()
  await db
    .insertInto('renamed_to' as any)
    .values({ x: 7 })
    .execute()
  return {
    counters: await rowsOf(db, 'counters'),
    renamed: await db
      .selectFrom('renamed_to' as any)
      .selectAll()
      .execute(),
  }
})

differential('query: createView and select from it; the seeded view too', async (db) => {
  await db.schema
    .createView('stocked')
    .as(db.selectFrom('items').select(['name', 'qty']).where('qty', '>', 0))
    .execute()
  return {
    stocked: await db
      .selectFrom('stocked' as any)
      .selectAll()
      .orderBy('name')
      .execute(),
    fruit: await db
      .selectFrom('fruit' as any)
      .select('name')
      .orderBy('name')
      .execute(),
  }
})

differential('query: a trigger that writes another table', async (db) => {
  await sql`create trigger log_items after insert on items begin insert into log (message) values ('added ' || new.name); end`.execute(
    db,
  )
  await db.insertInto('items').values({ name: 'walnut' }).execute()
  return rowsOf(db, 'log')
})

differential('query: modifyEnd and clearSelect / clearWhere', async (db) => {
  const q = db.selectFrom('items').select(['id', 'name']).where('id', '>', 3)
  const cleared = await q.clearSelect().select('qty').clearWhere().orderBy('id').modifyEnd(sql`limit 2`).execute()
  return cleared
})

differential('query: eb.fn functions and sql operators', async (db) => {
  return db
    .selectFrom('items')
    .select((eb) => [
      eb.fn<string>('substr', ['name', sql.lit(1), sql.lit(3)]).as('prefix'),
      eb.fn<number>('length', ['name']).as('len'),
      eb('qty', '%', 2).as('odd'),
      eb.fn<string>('ifnull', ['category', sql.lit('none')]).as('category'),
      sql<string>`name || '!'`.as('shout'),
      eb.fn<string>('printf', [sql.lit('%05d'), 'qty']).as('padded'),
    ])
    .orderBy('id')
    .execute()
})

differential('query: numbers: integers, reals, large integers and blobs round-trip', async (db) => {
  await db.schema
    .createTable('numbers')
    .addColumn('i', 'integer')
    .addColumn('r', 'real')
    .addColumn('b', 'blob')
    .execute()
  await db
    .insertInto('numbers' as any)
    .values([
      { i: 9007199254740991, r: 1.5, b: Buffer.from([1, 2, 3]) },
      { i: -1, r: 0.1 + 0.2, b: null },
    ])
    .execute()
  return db
    .selectFrom('numbers' as any)
    .selectAll()
    .execute()
})

differential('query: withPlugin (CamelCasePlugin) on the same db', async (db) => {
  const { CamelCasePlugin } = await import('kysely')
  const camel = db.withPlugin(new CamelCasePlugin())
  return (camel as any).selectFrom('tags').select(['itemId', 'label']).orderBy('id').execute()
})

differential('query: withTables and a mistyped table name', async (db) => {
  const wider = db.withTables<{ extra: { id: number } }>()
  await wider.schema.createTable('extra').addColumn('id', 'integer').execute()
  await wider.insertInto('extra').values({ id: 1 }).execute()
  return wider.selectFrom('extra').selectAll().execute()
})

differential('query: many sequential inserts and a count', async (db) => {
  for (let i = 0; i < 50; i++)
    await db
      .insertInto('log')
      .values({ message: `m${i}` })
      .execute()
  return db
    .selectFrom('log')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst()
})

differential('query: a generated always-stored column via sql', async (db) => {
  await sql`create table boxes (w integer, h integer, area integer generated always as (w * h) stored)`.execute(db)
  await db
    .insertInto('boxes' as any)
    .values({ w: 2, h: 3 })
    .execute()
  return db
    .selectFrom('boxes' as any)
    .selectAll()
    .execute()
})

differential('query: a strict table and without rowid table', async (db) => {
  await sql`create table strict_t (id integer primary key, v text not null) strict`.execute(db)
  await sql`create table kv (k text primary key, v integer) without rowid`.execute(db)
  await db
    .insertInto('strict_t' as any)
    .values({ v: 'x' })
    .execute()
  await db
    .insertInto('kv' as any)
    .values([
      { k: 'b', v: 2 },
      { k: 'a', v: 1 },
    ])
    .execute()
  return {
    strict: await db
      .selectFrom('strict_t' as any)
      .selectAll()
      .execute(),
    kv: await db
      .selectFrom('kv' as any)
      .selectAll()
      .orderBy('k')
      .execute(),
  }
})
