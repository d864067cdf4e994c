import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  InvalidOptionsError,
  NoTenantError,
  type Params,
  ReadOnlyAttachmentError,
  type ShardinesLogEvent,
  TenantScopeClosedError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { CamelCasePlugin, InsertResult } from 'kysely'
import { latch } from '../helpers/async-helpers.js'
import { seeded, withOwnerQuery } from './prepared-fixtures.js'

describe('prepared queries', () => {
  test('compiles once and runs in whichever tenant is current', async () => {
    const { shard } = await seeded(['acme', 'globex'])
    const byId = shard.prepare((db, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select(['id', 'title']).where('id', '=', p('id')),
    )
    assert.equal(byId.sql, 'select "id", "title" from "documents" where "id" = ?')
    assert.deepEqual(await shard.withTenant('acme', () => byId.executeTakeFirst({ id: 2 })), {
      id: 2,
      title: 'acme doc 2',
    })
    assert.deepEqual(await shard.withTenant('globex', () => byId.execute({ id: 2 })), [
      { id: 2, title: 'globex doc 2' },
    ])
    assert.equal(await shard.withTenant('acme', () => byId.executeTakeFirst({ id: 99 })), undefined)
    await shard.close()
  })

  test('many tenants under concurrency each get their own rows (maxOpen below the tenant count)', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `t${i}`)
    const { shard } = await seeded(ids, 4, { storageOptions: { maxOpen: 5 } })
    const titles = shard.prepare((db, p: Params<{ min: number }>) =>
      db.selectFrom('documents').select('title').where('id', '>=', p('min')).orderBy('id'),
    )
    const runs = Array.from({ length: 600 }, (_, i) => {
      const id = ids[i % ids.length]!
      return shard.withTenant(id, async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
        const rows = await titles.execute({ min: 1 })
        await Promise.resolve()
        const again = await titles.execute({ min: 3 })
        return { id, rows, again }
      })
    })
    for (const { id, rows, again } of await Promise.all(runs)) {
      assert.deepEqual(
        rows.map((r) => r.title),
        [1, 2, 3, 4].map((n) => `${id} doc ${n}`),
      )
      assert.deepEqual(
        again.map((r) => r.title),
        [`${id} doc 3`, `${id} doc 4`],
      )
    }
    assert.ok(shard.stats().evictions > 0, 'the pool evicted and reopened handles meanwhile')
    await shard.close()
  })

  test('after a schema change made by another connection the cached statement is re-prepared, never stale', async () => {
    const { shard, dir } = await seeded(['acme'])
    const all = shard.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id'))
    const before = await shard.withTenant('acme', () => all.execute())
    assert.deepEqual(Object.keys(before[0]!), ['id', 'title', 'owner_id', 'status'])
    // Rebuild the table with other columns in another order, behind the library's back.
    const other = new Database(`${dir}/tenants/acme.sqlite3`)
    other.exec(`
      create table documents_new (status text not null, id integer primary key, title text not null, owner_id integer, priority integer default 7);
      insert into documents_new (status, id, title, owner_id) select 'moved', id, upper(title), owner_id from documents;
      drop table documents;
      alter table documents_new rename to documents;`)
    other.close()
    await shard.withTenant('acme', async () => {
      const after = await all.execute()
      assert.deepEqual(after[0], { status: 'moved', id: 1, title: 'ACME DOC 1', owner_id: 1, priority: 7 })
    })
    await shard.close()
  })

  test('a migration through the library clears the statement cache and the prepared query follows it', async () => {
    const { shard } = await seeded(['acme'])
    const titles = shard.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id').limit(1))
    await shard.withTenant('acme', async (t) => {
      assert.equal(Object.keys((await titles.executeTakeFirst())!).length, 4)
      await t.db.schema
        .alterTable('documents')
        .addColumn('archived', 'integer', (c) => c.defaultTo(0))
        .execute()
      assert.deepEqual(await titles.executeTakeFirst(), {
        id: 1,
        title: 'acme doc 1',
        owner_id: 1,
        status: 'open',
        archived: 0,
      })
    })
    await shard.close()
  })

  test('outside a scope: NoTenantError; after the scope ended: TenantScopeClosedError', async () => {
    const { shard } = await seeded(['acme'])
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    await assert.rejects(count.execute(), NoTenantError)
    let late: Promise<unknown> | undefined
    await shard.withTenant('acme', async () => {
      assert.deepEqual(await count.execute(), [{ n: 3 }])
      // Work scheduled inside the scope that runs after it ended still carries the (closed) scope.
      late = new Promise((resolve) => setTimeout(resolve, 20)).then(() => count.execute())
    })
    await assert.rejects(late!, TenantScopeClosedError)
    await shard.close()
  })

  test('apex tables: attachment is decided at prepare time, writes to apex are refused at prepare time', async () => {
    const { shard } = await seeded(['acme'])
    const withOwner = withOwnerQuery(shard)
    assert.match(withOwner.sql, /"apex"\."accounts"/)
    assert.deepEqual(await shard.withTenant('acme', () => withOwner.execute({ id: 2 })), [
      { title: 'acme doc 2', email: 'bob@apex.test' },
    ])
    assert.throws(
      () => shard.prepare((db) => db.insertInto('apex.accounts').values({ email: 'evil@x.test' } as never)),
      ReadOnlyAttachmentError,
    )
    assert.throws(() => shard.prepare((db) => db.deleteFrom('apex.accounts')), ReadOnlyAttachmentError)
    assert.equal((await shard.apex.selectFrom('accounts').selectAll().execute()).length, 2)
    await shard.close()
  })

  test('prepareApex runs anywhere, including inside a tenant scope', async () => {
    const { shard } = await seeded(['acme'])
    const email = shard.prepareApex((db, p: Params<{ id: number }>) =>
      db.selectFrom('accounts').select('email').where('id', '=', p('id')),
    )
    assert.deepEqual(await email.executeTakeFirst({ id: 1 }), { email: 'ada@apex.test' })
    assert.deepEqual(await shard.withTenant('acme', () => email.executeTakeFirst({ id: 2 })), {
      email: 'bob@apex.test',
    })
    const add = shard.prepareApex((db, p: Params<{ email: string }>) =>
      db
        .insertInto('accounts')
        .values({ email: p('email') })
        .returning('id'),
    )
    assert.deepEqual(await add.execute({ email: 'cy@apex.test' }), [{ id: 3 }])
    await shard.close()
  })

  test('transactions: a scope sees its own uncommitted rows; another scope waits for the commit', async () => {
    const { shard } = await seeded(['acme'])
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    const { promise: gate, resolve: release } = latch()
    const { promise: started, resolve: inside } = latch()
    const writer = shard.withTenant('acme', (t) =>
      t.transaction(async (trx) => {
        await trx.db.insertInto('documents').values({ title: 'uncommitted', status: 'open' }).execute()
        assert.deepEqual(await count.execute(), [{ n: 4 }], 'the owner sees its own write through the prepared query')
        inside()
        await gate
      }),
    )
    await started
    let readerDone = false
    const reader = shard.withTenant('acme', async () => {
      const rows = await count.execute()
      readerDone = true
      return rows
    })
    await new Promise((resolve) => setTimeout(resolve, 30))
    assert.equal(readerDone, false, 'the other scope waits while the transaction is open')
    release()
    await writer
    assert.deepEqual(await reader, [{ n: 4 }], 'and then reads the committed row')
    await shard.close()
  })

  test('a rolled-back transaction leaves nothing for prepared reads', async () => {
    const { shard } = await seeded(['acme'])
    const add = shard.prepare((db, p: Params<{ title: string }>) =>
      db.insertInto('documents').values({ title: p('title'), status: 'open' }),
    )
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    await shard.withTenant('acme', async (t) => {
      await assert.rejects(
        t.transaction(async () => {
          const [result] = await add.execute({ title: 'temp' })
          assert.ok(result instanceof InsertResult)
          assert.equal(result.numInsertedOrUpdatedRows, 1n)
          throw new Error('roll back')
        }),
        /roll back/,
      )
      assert.deepEqual(await count.execute(), [{ n: 3 }])
    })
    await shard.close()
  })

  test('missing parameters are refused at run time (for JavaScript callers)', async () => {
    const { shard } = await seeded(['acme'])
    const byId = shard.prepare((db, p: Params<{ id: number }>) =>
      db.selectFrom('documents').selectAll().where('id', '=', p('id')),
    )
    await shard.withTenant('acme', async () => {
      await assert.rejects((byId.execute as (args?: unknown) => Promise<unknown>)(), InvalidOptionsError)
      await assert.rejects((byId.execute as (args?: unknown) => Promise<unknown>)({ idd: 1 }), /parameter "id"/)
    })
    let executed: Promise<unknown> | undefined
    assert.throws(
      () =>
        shard.prepare((db) => {
          executed = db.selectFrom('documents').selectAll().execute()
          return executed as never
        }),
      InvalidOptionsError,
      'build must return a builder, not a promise',
    )
    await assert.rejects(executed!, /only builds the query/, 'the build-only db never runs anything')
    await shard.close()
  })

  test('parameters in any number and position, mixed with fixed values and repeated, bind where they stand', async () => {
    const { shard } = await seeded(['acme'], 6)
    type Args = { status: string; a: number; b: number; lo: number; hi: number; title: string }
    const q = shard.prepare((db, p: Params<Args>) =>
      db
        .selectFrom('documents')
        .select('id')
        .where('status', '=', p('status'))
        .where('id', 'in', [p('a'), 2, p('b')])
        .where('id', '>=', p('lo'))
        .where('id', '<=', p('hi'))
        .where('title', '!=', p('title'))
        .orderBy('id'),
    )
    assert.equal((q.sql.match(/\?/g) ?? []).length, 7, 'seven placeholders, one of them a fixed value')
    const ids = (rows: { id: number }[]) => rows.map((r) => r.id)
    await shard.withTenant('acme', async () => {
      const first = { status: 'open', a: 1, b: 5, lo: 1, hi: 5, title: 'acme doc 1' }
      assert.deepEqual(ids(await q.execute(first)), [2, 5])
      assert.deepEqual(ids(await q.execute({ status: 'open', a: 3, b: 6, lo: 2, hi: 6, title: 'x' })), [2, 3, 6])
      assert.deepEqual(ids(await q.execute({ ...first, status: 'closed' })), [])
      assert.deepEqual(await q.executeTakeFirst({ status: 'open', a: 4, b: 4, lo: 0, hi: 9, title: 'x' }), { id: 2 })
      // A missing argument in any position rejects (never throws synchronously) and runs nothing.
      const missing = (q.executeTakeFirst as (args: unknown) => Promise<unknown>)({ ...first, hi: undefined })
      assert.ok(missing instanceof Promise)
      await assert.rejects(
        missing,
        (error: Error) => error instanceof InvalidOptionsError && /"hi"/.test(error.message),
      )
    })
    const twice = shard.prepare((db, p: Params<{ n: number }>) =>
      db.selectFrom('documents').select('id').where('id', '<=', p('n')).where('owner_id', '<=', p('n')).orderBy('id'),
    )
    assert.deepEqual(await shard.withTenant('acme', () => twice.execute({ n: 1 })), [{ id: 1 }])
    assert.deepEqual(await shard.withTenant('acme', () => twice.execute({ n: 3 })), [{ id: 1 }, { id: 2 }, { id: 3 }])
    await shard.close()
  })

  test("with a query log, prepared queries are logged with their tenant and this call's parameters", async () => {
    const events: ShardinesLogEvent[] = []
    const { shard } = await seeded(['acme', 'globex'], 3, { log: (event) => events.push(event) })
    const byId = shard.prepare((db, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select('title').where('id', '=', p('id')),
    )
    const titles = shard.prepareApex((db, p: Params<{ email: string }>) =>
      db.selectFrom('accounts').select('id').where('email', '=', p('email')),
    )
    events.length = 0
    assert.deepEqual(await shard.withTenant('acme', () => byId.executeTakeFirst({ id: 2 })), { title: 'acme doc 2' })
    assert.deepEqual(await shard.withTenant('globex', () => byId.execute({ id: 3 })), [{ title: 'globex doc 3' }])
    assert.deepEqual(await titles.executeTakeFirst({ email: 'bob@apex.test' }), { id: 2 })
    const unbindable = { not: 'a value SQLite can bind' }
    await assert.rejects(
      shard.withTenant('acme', () => byId.execute({ id: unbindable as never })),
      TypeError, // as better-sqlite3 answers Kysely: an object is not a value SQLite can bind
    )
    const seen = events.map((e) => [e.level, e.tenantId, e.query.sql, e.query.parameters])
    assert.deepEqual(seen, [
      ['query', 'acme', byId.sql, [2]],
      ['query', 'globex', byId.sql, [3]],
      ['query', 'apex', titles.sql, ['bob@apex.test']],
      ['error', 'acme', byId.sql, [unbindable]],
    ])
    await shard.close()
  })

  test('result plugins (CamelCasePlugin) apply to prepared queries as to t.db', async () => {
    const { shard } = await seeded(['acme'], 3, { plugins: [new CamelCasePlugin()] })
    const q = shard.prepare((db: any, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select(['id', 'ownerId']).where('id', '=', p('id')),
    )
    assert.equal(q.sql, 'select "id", "owner_id" from "documents" where "id" = ?')
    assert.deepEqual(await shard.withTenant('acme', () => q.executeTakeFirst({ id: 1 })), { id: 1, ownerId: 1 })
    await shard.close()
  })
})
