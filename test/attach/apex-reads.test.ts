// Apex tables read from a tenant scope: each query's compiled SQL is asserted
// (what the ATTACH compiler makes of it), then it runs on real files.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type Kysely, sql } from 'kysely'
import { attachedNames, makeAttachShard, seedApex, seedTenant } from './attach-helpers.js'

async function setup() {
  const { shard, log } = await makeAttachShard()
  await seedApex(shard)
  await seedTenant(shard, 'acme')
  return { shard, log }
}

test('apex table in FROM', async () => {
  const { shard, log } = await setup()
  await shard.withTenant('acme', async (t) => {
    const query = t.db.selectFrom('apex.accounts').select(['id', 'email']).where('plan', '!=', 'free').orderBy('id')
    assert.equal(query.compile().sql, 'select "id", "email" from "apex"."accounts" where "plan" != ? order by "id"')
    assert.deepEqual(await query.execute(), [
      { id: 1, email: 'ann@x.test' },
      { id: 3, email: 'cy@x.test' },
    ])
  })
  assert.equal(log.attaches('acme'), 1)
  await shard.close()
})

test('apex table in inner and left JOIN, with aliases and qualified column references', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const inner = t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .orderBy('d.id')
    assert.equal(
      inner.compile().sql,
      'select "d"."title", "a"."email" from "documents" as "d" inner join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id" order by "d"."id"',
    )
    assert.deepEqual(await inner.execute(), [
      { title: 'Plan', email: 'ann@x.test' },
      { title: 'Spec', email: 'bob@x.test' },
    ])

    // Unaliased tables: column references keep the bare table name, which
    // SQLite resolves against "documents" (a table's name is its alias).
    const left = t.db
      .selectFrom('documents')
      .leftJoin('apex.accounts', 'apex.accounts.id', 'documents.owner_id')
      .leftJoin('apex.plans', 'apex.plans.id', 'apex.accounts.plan')
      .select(['documents.title', 'apex.accounts.email', 'apex.plans.name as plan'])
      .orderBy('documents.id')
    assert.equal(
      left.compile().sql,
      'select "documents"."title", "apex"."accounts"."email", "apex"."plans"."name" as "plan" from "documents" left join "apex"."accounts" on "apex"."accounts"."id" = "documents"."owner_id" left join "apex"."plans" on "apex"."plans"."id" = "apex"."accounts"."plan" order by "documents"."id"',
    )
    assert.deepEqual(await left.execute(), [
      { title: 'Plan', email: 'ann@x.test', plan: 'Pro' },
      { title: 'Spec', email: 'bob@x.test', plan: 'Free' },
      { title: 'Orphan', email: null, plan: null },
      { title: 'Ghost', email: null, plan: null },
    ])

    const all = t.db.selectFrom('documents as d').innerJoin('apex.accounts as a', 'a.id', 'd.owner_id').selectAll('d')
    assert.equal(
      all.compile().sql,
      'select "d".* from "documents" as "d" inner join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id"',
    )
    assert.deepEqual((await all.execute()).map((r) => r.title).sort(), ['Plan', 'Spec'])
  })
  await shard.close()
})

test('apex table in a WHERE subquery and in a FROM subquery', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const inList = t.db
      .selectFrom('documents')
      .select('title')
      .where('owner_id', 'in', t.db.selectFrom('apex.accounts').select('id').where('plan', '=', 'pro'))
    assert.equal(
      inList.compile().sql,
      'select "title" from "documents" where "owner_id" in (select "id" from "apex"."accounts" where "plan" = ?)',
    )
    assert.deepEqual(await inList.execute(), [{ title: 'Plan' }])

    const fromSub = t.db
      .selectFrom(t.db.selectFrom('apex.accounts').select(['id', 'plan']).as('s'))
      .innerJoin('documents as d', 'd.owner_id', 's.id')
      .select(['d.title', 's.plan'])
      .orderBy('d.title')
    assert.equal(
      fromSub.compile().sql,
      'select "d"."title", "s"."plan" from (select "id", "plan" from "apex"."accounts") as "s" inner join "documents" as "d" on "d"."owner_id" = "s"."id" order by "d"."title"',
    )
    assert.deepEqual(await fromSub.execute(), [
      { title: 'Plan', plan: 'pro' },
      { title: 'Spec', plan: 'free' },
    ])
  })
  await shard.close()
})

test('apex table in a CTE: names stay as written (the CTE, the tenant tables), apex tables are apex.*', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const query = t.db
      .with('paying', (db) => db.selectFrom('apex.accounts').select('id').where('plan', '!=', 'free'))
      .selectFrom('documents as d')
      .innerJoin('paying', 'paying.id', 'd.owner_id')
      .select('d.title')
    assert.equal(
      query.compile().sql,
      'with "paying" as (select "id" from "apex"."accounts" where "plan" != ?) select "d"."title" from "documents" as "d" inner join "paying" on "paying"."id" = "d"."owner_id"',
    )
    assert.deepEqual(await query.execute(), [{ title: 'Plan' }])

    const fromCte = t.db
      .with('x', (db) => db.selectFrom('apex.plans').select('name'))
      .selectFrom('x')
      .selectAll()
    assert.equal(fromCte.compile().sql, 'with "x" as (select "name" from "apex"."plans") select * from "x"')
    assert.deepEqual((await fromCte.execute()).map((r) => r.name).sort(), ['Free', 'Pro'])

    // A CTE that shadows a tenant table's name is read as the CTE, as SQLite would.
    const shadow = (t.db as typeof t.db)
      .with('documents', (db) => db.selectFrom('apex.accounts').select('email as title'))
      .selectFrom('documents')
      .select('title')
      .orderBy('title')
    assert.equal(
      shadow.compile().sql,
      'with "documents" as (select "email" as "title" from "apex"."accounts") select "title" from "documents" order by "title"',
    )
    assert.deepEqual(
      (await shadow.execute()).map((r) => r.title),
      ['ann@x.test', 'bob@x.test', 'cy@x.test'],
    )
  })
  await shard.close()
})

test('apex table in EXISTS and NOT EXISTS', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const owned = (negate: boolean) =>
      t.db
        .selectFrom('documents as d')
        .select('d.title')
        .where(({ exists, not, selectFrom }) => {
          const sub = exists(selectFrom('apex.accounts as a').whereRef('a.id', '=', 'd.owner_id').select('a.id'))
          return negate ? not(sub) : sub
        })
        .orderBy('d.id')
    assert.equal(
      owned(false).compile().sql,
      'select "d"."title" from "documents" as "d" where exists (select "a"."id" from "apex"."accounts" as "a" where "a"."id" = "d"."owner_id") order by "d"."id"',
    )
    assert.deepEqual(await owned(false).execute(), [{ title: 'Plan' }, { title: 'Spec' }])
    assert.deepEqual(await owned(true).execute(), [{ title: 'Orphan' }, { title: 'Ghost' }])
  })
  await shard.close()
})

test('apex table in UNION / UNION ALL', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const query = t.db
      .selectFrom('documents')
      .select('title as label')
      .where('status', '=', 'closed')
      .unionAll(t.db.selectFrom('apex.plans').select('name as label'))
      .orderBy('label')
    assert.equal(
      query.compile().sql,
      'select "title" as "label" from "documents" where "status" = ? union all select "name" as "label" from "apex"."plans" order by "label"',
    )
    assert.deepEqual(await query.execute(), [{ label: 'Free' }, { label: 'Pro' }, { label: 'Spec' }])
  })
  await shard.close()
})

test('INSERT … SELECT from apex into a tenant table, also through a CTE', async () => {
  const { shard } = await setup()
  const apexBefore = await shard.apex.selectFrom('accounts').selectAll().orderBy('id').execute()
  await shard.withTenant('acme', async (t) => {
    const insert = t.db
      .insertInto('comments')
      .columns(['document_id', 'body'])
      .expression(
        t.db
          .selectFrom('documents as d')
          .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
          .select(['d.id', 'a.email']),
      )
    assert.equal(
      insert.compile().sql,
      'insert into "comments" ("document_id", "body") select "d"."id", "a"."email" from "documents" as "d" inner join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id"',
    )
    const [result] = await insert.execute()
    assert.equal(result?.numInsertedOrUpdatedRows, 2n)

    const viaCte = t.db
      .with('p', (db) => db.selectFrom('apex.plans').select('name'))
      .insertInto('documents')
      .columns(['title'])
      .expression((eb) => eb.selectFrom('p').select('name'))
    assert.equal(
      viaCte.compile().sql,
      'with "p" as (select "name" from "apex"."plans") insert into "documents" ("title") select "name" from "p"',
    )
    await viaCte.execute()

    assert.deepEqual(
      await t.db.selectFrom('comments').select(['document_id', 'body']).where('id', '>', 2).orderBy('id').execute(),
      [
        { document_id: 1, body: 'ann@x.test' },
        { document_id: 2, body: 'bob@x.test' },
      ],
    )
    assert.deepEqual(
      (await t.db.selectFrom('documents').select('title').where('id', '>', 4).execute()).map((r) => r.title).sort(),
      ['Free', 'Pro'],
    )
  })
  assert.deepEqual(await shard.apex.selectFrom('accounts').selectAll().orderBy('id').execute(), apexBefore)
  await shard.close()
})

test('withSchema("apex") reads apex; sql.table("apex.x") inside a builder attaches too', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    // withSchema is not typed for apex (the DB type knows 'apex.plans', not 'plans'): cast.
    const viaSchema = (t.db as unknown as Kysely<any>)
      .withSchema('apex')
      .selectFrom('plans')
      .select('name')
      .orderBy('name')
    assert.equal(viaSchema.compile().sql, 'select "name" from "apex"."plans" order by "name"')
    assert.deepEqual(await viaSchema.execute(), [{ name: 'Free' }, { name: 'Pro' }])
  })
  await shard.withTenant('acme', async (t) => {
    // A table reference inside a raw fragment is still an operation node: it is walked.
    const viaRawTable = t.db
      .selectFrom('documents as d')
      .select('d.title')
      .where('d.owner_id', 'in', sql<number>`(select id from ${sql.table('apex.accounts')})`)
      .orderBy('d.id')
    assert.equal(
      viaRawTable.compile().sql,
      'select "d"."title" from "documents" as "d" where "d"."owner_id" in (select id from "apex"."accounts") order by "d"."id"',
    )
    assert.deepEqual(await viaRawTable.execute(), [{ title: 'Plan' }, { title: 'Spec' }])
  })
  await shard.close()
})

test('raw sql names apex only after t.attach("apex"); the attachment is visible in pragma database_list', async () => {
  const { shard, log } = await setup()
  await shard.withTenant('acme', async (t) => {
    assert.deepEqual(await attachedNames(t.db), [])
    const raw = sql<{ title: string; email: string }>`
      select d.title, a.email from documents d join apex.accounts a on a.id = d.owner_id order by d.id`
    await assert.rejects(raw.execute(t.db), /no such table: apex\.accounts/)
    await t.attach('apex')
    assert.deepEqual(await attachedNames(t.db), ['apex'])
    const { rows } = await raw.execute(t.db)
    assert.deepEqual(rows, [
      { title: 'Plan', email: 'ann@x.test' },
      { title: 'Spec', email: 'bob@x.test' },
    ])
    await t.attach('apex') // idempotent: no second ATTACH
    await assert.rejects(
      t.attach('beta' as 'apex'),
      (e: Error) => e.name === 'InvalidOptionsError' && /withTenants/.test(e.message),
    )
  })
  assert.equal(log.attaches('acme'), 1)
  await shard.close()
})

test('a CTE referenced in another letter case is still the CTE (SQLite names ignore case)', async () => {
  const { shard } = await setup()
  await shard.withTenant('acme', async (t) => {
    const db = t.db as unknown as Kysely<any>
    const query = db
      .with('Paying', (q) => q.selectFrom('apex.accounts').select('id').where('plan', '=', 'pro'))
      .selectFrom('documents as d')
      .where('d.owner_id', 'in', db.selectFrom('PAYING').select('id'))
      .select('d.title')
    assert.equal(
      query.compile().sql,
      'with "Paying" as (select "id" from "apex"."accounts" where "plan" = ?) select "d"."title" from "documents" as "d" where "d"."owner_id" in (select "id" from "PAYING")',
    )
    assert.deepEqual(await query.execute(), [{ title: 'Plan' }])
  })
  await shard.close()
})

test('stream() of a query over apex attaches first', async () => {
  const { shard, log } = await setup()
  await shard.withTenant('acme', async (t) => {
    const titles: string[] = []
    const stream = t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .orderBy('d.id')
      .stream()
    for await (const row of stream) titles.push(`${row.title}:${row.email}`)
    assert.deepEqual(titles, ['Plan:ann@x.test', 'Spec:bob@x.test'])
  })
  assert.equal(log.attaches('acme'), 1)
  await shard.close()
})
