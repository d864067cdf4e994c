// Synchronous reads of prepared queries: executeSync / executeTakeFirstSync.
import assert from 'node:assert/strict'
import { AsyncResource } from 'node:async_hooks'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  createShardines,
  InvalidOptionsError,
  NoTenantError,
  type Params,
  ShardinesClosedError,
  type ShardinesLogEvent,
  type StorageAdapter,
  StorageError,
  type StorageHandle,
  TenantScopeClosedError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { CamelCasePlugin, sql } from 'kysely'
import { latch, randomPause, seededRandom, sleep } from '../helpers/async-helpers.js'
import { type ApexDB, apexMigrations, makeShard, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { HAS_PROC_FD, mainFileOf, openPathsUnder } from '../helpers/open-files.js'
import { tempDir } from '../helpers/temp-dir.js'
import { seeded, withOwnerQuery } from './prepared-fixtures.js'

type Shard = Awaited<ReturnType<typeof makeShard>>['shard']
const JOURNAL_MODES = ['delete', 'wal'] as const
/** Far below the default busy_timeout (5000 ms): a read that waited for a lock would exceed it. */
const NO_WAIT_MS = 1000

class RolledBack extends Error {}

/**
 * Keeps a transaction open: `begin(inside)` starts one whose body inserts a
 * row, then awaits `inside()`, which resolves once the test decides; the
 * transaction then commits or (`rollback()`) throws and rolls back.
 */
async function hold(begin: (inside: () => Promise<void>) => Promise<unknown>) {
  let decide!: (commit: boolean) => void
  const decision = new Promise<boolean>((resolve) => {
    decide = resolve
  })
  const { promise: open, resolve: opened } = latch()
  const done = begin(async () => {
    opened()
    if (!(await decision)) throw new RolledBack()
  })
  await Promise.race([open, done])
  return {
    async commit() {
      decide(true)
      await done
    },
    async rollback() {
      decide(false)
      await assert.rejects(done, RolledBack)
    },
  }
}

/** A transaction in its own scope of tenant `id` that inserted one document and stays open. */
function holdTransaction(shard: Shard, id: string, values: { title: string; owner_id?: number }) {
  return hold((inside) =>
    shard.withTenant(id, (t) =>
      t.transaction(async (trx) => {
        await trx.db
          .insertInto('documents')
          .values({ status: 'open', ...values })
          .execute()
        await inside()
      }),
    ),
  )
}

/** The same on apex: a transaction through `shard.apex` that inserted one account and stays open. */
function holdApexTransaction(shard: Shard, email: string) {
  return hold((inside) =>
    shard.apex.transaction().execute(async (trx) => {
      await trx.insertInto('accounts').values({ email }).execute()
      await inside()
    }),
  )
}

/** Runs `fn` and returns its value and how long it took. */
function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now()
  const value = fn()
  return { value, ms: performance.now() - start }
}

/** What `fn` returned or threw. */
function outcome(fn: () => unknown): { value?: unknown; error?: unknown } {
  try {
    return { value: fn() }
  } catch (error) {
    return { error }
  }
}

/** The journal mode the tenant's file really uses. */
async function journalModeOf(shard: Shard, id: string): Promise<string> {
  const { rows } = await shard.withTenant(id, (t) => sql<{ journal_mode: string }>`pragma journal_mode`.execute(t.db))
  return rows[0]!.journal_mode
}

/** Descriptors this process holds on files under `dir` whose path (minus -wal/-shm/-journal) passes `accept`. */
function openDescriptors(dir: string, accept: (file: string) => boolean = () => true): string[] {
  return (openPathsUnder(dir) ?? []).filter((target) => accept(mainFileOf(target)))
}

const SKIP_WITHOUT_PROC_FD = HAS_PROC_FD ? false : 'needs Linux /proc/self/fd'

/**
 * A storage adapter that offers only the asynchronous interface: the SQLite
 * adapter behind handles that expose none of its synchronous members.
 */
function withoutSyncReads(storage: StorageAdapter): StorageAdapter {
  const wrappers = new WeakMap<StorageHandle, StorageHandle>()
  const wrap = (handle: StorageHandle): StorageHandle => {
    let wrapper = wrappers.get(handle)
    if (wrapper === undefined) {
      wrapper = {
        get name() {
          return handle.name
        },
        executeQuery: (query, guard) => handle.executeQuery(query, guard),
        get attached() {
          return handle.attached
        },
        attach: (schema, location) => handle.attach(schema, location),
        detach: (schema) => handle.detach(schema),
        clearStatementCache: () => handle.clearStatementCache(),
        get leftovers() {
          return handle.leftovers
        },
        resetConnection: () => handle.resetConnection(),
        get closed() {
          return handle.closed
        },
      }
      wrappers.set(handle, wrapper)
    }
    return wrapper
  }
  return {
    kind: storage.kind,
    // What this wrapper passes through: no synchronous reads, and none of the optional lifecycle.
    capabilities: {
      ...storage.capabilities,
      syncReads: false,
      workerMigrations: false,
      exportStream: false,
      rename: false,
      archive: false,
      doctor: false,
      layoutMigration: false,
    },
    maxAttached: storage.maxAttached,
    busyTimeout: storage.busyTimeout,
    apex: () => wrap(storage.apex()),
    acquire: async (id) => {
      const lease = await storage.acquire(id)
      return {
        handle: wrap(lease.handle),
        versionStampAtOpen: lease.versionStampAtOpen,
        release: () => lease.release(),
      }
    },
    exists: (id) => storage.exists(id),
    create: (id, build) => storage.create(id, (handle) => build(wrap(handle))),
    destroy: (id) => storage.destroy(id),
    list: () => storage.list(),
    backup: (name, dest, options) => storage.backup!(name, dest, options),
    fork: (from, to) => storage.fork(from, to),
    locate: (name) => storage.locate(name),
    openScratch: async () => {
      const scratch = await storage.openScratch()
      return Object.assign(wrap(scratch), { close: () => scratch.close() })
    },
    stats: () => storage.stats(),
    close: () => storage.close(),
  }
}

describe('synchronous prepared reads (executeSync, executeTakeFirstSync)', () => {
  test('return what execute and executeTakeFirst return for the same arguments, in each tenant', async () => {
    const ids = ['acme', 'globex', 'initech']
    const { shard } = await seeded(ids, 5)
    await shard.withTenant('globex', (t) =>
      t.db.updateTable('documents').set({ status: 'closed' }).where('id', 'in', [2, 4]).execute(),
    )
    const byStatus = shard.prepare((db, p: Params<{ status: string; min: number }>) =>
      db
        .selectFrom('documents')
        .select(['id', 'title', 'owner_id'])
        .where('status', '=', p('status'))
        .where('id', '>=', p('min'))
        .orderBy('id'),
    )
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    const argsList = [
      { status: 'open', min: 1 },
      { status: 'open', min: 3 },
      { status: 'closed', min: 1 },
      { status: 'open', min: 99 },
    ]
    for (const id of ids) {
      await shard.withTenant(id, async () => {
        for (const args of argsList) {
          const rows = byStatus.executeSync(args)
          assert.ok(Array.isArray(rows), 'executeSync returns the rows themselves, not a promise')
          assert.deepEqual(rows, await byStatus.execute(args), `${id} ${JSON.stringify(args)}`)
          const first = byStatus.executeTakeFirstSync(args)
          assert.ok(!(first instanceof Promise))
          assert.deepEqual(first, await byStatus.executeTakeFirst(args), `${id} ${JSON.stringify(args)} (first)`)
        }
        assert.deepEqual(count.executeSync(), await count.execute())
        assert.deepEqual(count.executeTakeFirstSync(), { n: 5 })
        // Concrete values, so that both sides being wrong the same way cannot pass.
        const open = byStatus.executeSync({ status: 'open', min: 1 }).map((r) => r.title)
        const expected = id === 'globex' ? [1, 3, 5] : [1, 2, 3, 4, 5]
        assert.deepEqual(
          open,
          expected.map((n) => `${id} doc ${n}`),
        )
        assert.deepEqual(byStatus.executeTakeFirstSync({ status: 'open', min: 2 }), {
          id: id === 'globex' ? 3 : 2,
          title: `${id} doc ${id === 'globex' ? 3 : 2}`,
          owner_id: id === 'globex' ? 1 : 2,
        })
        assert.equal(byStatus.executeTakeFirstSync({ status: 'open', min: 99 }), undefined)
        assert.deepEqual(byStatus.executeSync({ status: 'open', min: 99 }), [])
      })
    }
    await shard.close()
  })

  test('errors are thrown, not returned: NoTenantError outside a scope, InvalidOptionsError for a missing parameter', async () => {
    const { shard } = await seeded(['acme'])
    const byId = shard.prepare((db, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select('title').where('id', '=', p('id')),
    )
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    assert.throws(() => byId.executeSync({ id: 1 }), NoTenantError)
    assert.throws(() => byId.executeTakeFirstSync({ id: 1 }), NoTenantError)
    assert.throws(() => count.executeSync(), NoTenantError)
    assert.throws(() => count.executeTakeFirstSync(), NoTenantError)
    await shard.withTenant('acme', () => {
      const untyped = byId as unknown as {
        executeSync(args?: unknown): unknown
        executeTakeFirstSync(args?: unknown): unknown
      }
      assert.throws(() => untyped.executeSync(), InvalidOptionsError)
      assert.throws(() => untyped.executeTakeFirstSync(), InvalidOptionsError)
      assert.throws(
        () => untyped.executeSync({ idd: 1 }),
        (error: Error) => error instanceof InvalidOptionsError && /parameter "id"/.test(error.message),
      )
      assert.throws(
        () => untyped.executeTakeFirstSync({ id: undefined }),
        (error: Error) => error instanceof InvalidOptionsError && /"id"/.test(error.message),
      )
      // The same query with its argument works: the refusals above were about the arguments.
      assert.deepEqual(byId.executeTakeFirstSync({ id: 1 }), { title: 'acme doc 1' })
    })
    await shard.close()
  })

  test('called after its scope ended (from a timer set inside it), a sync read throws TenantScopeClosedError', async () => {
    const { shard } = await seeded(['acme'])
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    const late = (): Promise<{ value?: unknown; error?: unknown }[]> =>
      new Promise((resolve) => {
        setTimeout(() => resolve([outcome(() => count.executeSync()), outcome(() => count.executeTakeFirstSync())]), 20)
      })
    let fired: Promise<{ value?: unknown; error?: unknown }[]> | undefined
    await shard.withTenant('acme', () => {
      assert.deepEqual(count.executeSync(), [{ n: 3 }])
      fired = late()
    })
    for (const { value, error } of await fired!) {
      assert.equal(value, undefined, 'the late call returned rows')
      assert.ok(error instanceof TenantScopeClosedError, `expected TenantScopeClosedError, got ${String(error)}`)
    }

    // Also when another scope's transaction is open on the tenant (the read would go to the separate connection).
    const holder = await holdTransaction(shard, 'acme', { title: 'held' })
    await shard.withTenant('acme', () => {
      assert.deepEqual(count.executeTakeFirstSync(), { n: 3 })
      fired = late()
    })
    const results = await fired!
    await holder.commit()
    for (const { value, error } of results) {
      assert.equal(value, undefined, 'the late call returned rows')
      assert.ok(error instanceof TenantScopeClosedError, `expected TenantScopeClosedError, got ${String(error)}`)
    }
    await shard.close()
  })

  test('writes are refused synchronously with InvalidOptionsError and write nothing: prepared insert/update/delete (with or without returning), raw SQL that writes', async () => {
    const { shard } = await seeded(['acme'])
    const writes = {
      insert: shard.prepare((db, p: Params<{ title: string }>) =>
        db.insertInto('documents').values({ title: p('title'), status: 'open' }),
      ),
      insertReturning: shard.prepare((db, p: Params<{ title: string }>) =>
        db
          .insertInto('documents')
          .values({ title: p('title'), status: 'open' })
          .returning(['id', 'title']),
      ),
      update: shard.prepare((db, p: Params<{ title: string }>) =>
        db.updateTable('documents').set({ title: p('title') }),
      ),
      updateReturning: shard.prepare((db, p: Params<{ title: string }>) =>
        db
          .updateTable('documents')
          .set({ title: p('title') })
          .returning('id'),
      ),
      delete: shard.prepare((db) => db.deleteFrom('documents')),
      deleteReturning: shard.prepare((db) => db.deleteFrom('documents').returning('title')),
      rawInsert: shard.prepare((db, p: Params<{ title: string }>) => ({
        compile: () => sql`insert into documents (title, status) values (${p('title')}, 'open')`.compile(db),
      })),
      rawInsertReturning: shard.prepare((db, p: Params<{ title: string }>) => ({
        compile: () =>
          sql<{
            id: number
          }>`insert into documents (title, status) values (${p('title')}, 'open') returning id`.compile(db),
      })),
      rawCteInsert: shard.prepare((db, p: Params<{ title: string }>) => ({
        compile: () =>
          sql`with t(title) as (values (${p('title')})) insert into documents (title, status) select title, 'open' from t`.compile(
            db,
          ),
      })),
      rawDelete: shard.prepare((db) => ({ compile: () => sql`delete from documents`.compile(db) })),
      rawDdl: shard.prepare((db) => ({ compile: () => sql`create table sneaky (x integer)`.compile(db) })),
    }
    const args = { title: 'written by a sync read' }
    const content = (t: { db: ReturnType<Shard['db']> }) =>
      t.db.selectFrom('documents').selectAll().orderBy('id').execute()
    const tables = (t: { db: ReturnType<Shard['db']> }) =>
      sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(t.db)
    const refuseAll = (where: string) => {
      for (const [name, query] of Object.entries(writes)) {
        const q = query as unknown as {
          executeSync(args?: unknown): unknown
          executeTakeFirstSync(args?: unknown): unknown
        }
        assert.throws(() => q.executeSync(args), InvalidOptionsError, `${name}.executeSync ${where}`)
        assert.throws(() => q.executeTakeFirstSync(args), InvalidOptionsError, `${name}.executeTakeFirstSync ${where}`)
      }
    }
    const { before, tablesBefore } = await shard.withTenant('acme', async (t) => ({
      before: await content(t),
      tablesBefore: (await tables(t)).rows,
    }))
    assert.equal(before.length, 3)

    await shard.withTenant('acme', async (t) => {
      refuseAll('in a scope')
      assert.deepEqual(await content(t), before)
      // Inside the scope's own transaction: nothing reaches the transaction either.
      await t.transaction(async () => {
        refuseAll('in its own transaction')
      })
      assert.deepEqual(await content(t), before)
      assert.deepEqual((await tables(t)).rows, tablesBefore)
    })

    // While another scope's transaction is open (a read there goes to the separate connection).
    const holder = await holdTransaction(shard, 'acme', { title: 'held' })
    await shard.withTenant('acme', () => refuseAll("during another scope's transaction"))
    await holder.commit()
    await shard.withTenant('acme', async (t) => {
      const after = await content(t)
      assert.deepEqual(after.slice(0, 3), before)
      assert.deepEqual(
        after.slice(3).map((r) => r.title),
        ['held'],
        'only the holder wrote',
      )
      assert.deepEqual((await tables(t)).rows, tablesBefore)
    })

    // Apex: prepared and raw writes are refused too.
    const apexWrites = [
      shard.prepareApex((db, p: Params<{ email: string }>) => db.insertInto('accounts').values({ email: p('email') })),
      shard.prepareApex((db, p: Params<{ email: string }>) =>
        db
          .insertInto('accounts')
          .values({ email: p('email') })
          .returning('id'),
      ),
      shard.prepareApex((db, p: Params<{ email: string }>) => db.updateTable('accounts').set({ email: p('email') })),
      shard.prepareApex((db, p: Params<{ email: string }>) => ({
        compile: () => sql`update accounts set email = ${p('email')}`.compile(db),
      })),
    ]
    for (const query of apexWrites) {
      assert.throws(() => query.executeSync({ email: 'evil@apex.test' }), InvalidOptionsError)
      assert.throws(() => query.executeTakeFirstSync({ email: 'evil@apex.test' }), InvalidOptionsError)
    }
    assert.deepEqual(
      (await shard.apex.selectFrom('accounts').select('email').orderBy('id').execute()).map((r) => r.email),
      ['ada@apex.test', 'bob@apex.test'],
    )
    await shard.close()
  })

  test('raw SQL that only reads runs synchronously', async () => {
    const { shard } = await seeded(['acme'])
    const titles = shard.prepare((db, p: Params<{ min: number }>) => ({
      compile: () =>
        sql<{ title: string }>`select title from documents where id >= ${p('min')} order by id`.compile(db),
    }))
    const cte = shard.prepare((db) => ({
      compile: () => sql<{ n: number }>`with c as (select count(*) as n from documents) select n from c`.compile(db),
    }))
    const values = shard.prepare((db) => ({ compile: () => sql<{ column1: number }>`values (7)`.compile(db) }))
    const apexRaw = shard.prepareApex((db) => ({
      compile: () => sql<{ email: string }>`select email from accounts order by id`.compile(db),
    }))
    await shard.withTenant('acme', () => {
      assert.deepEqual(titles.executeSync({ min: 2 }), [{ title: 'acme doc 2' }, { title: 'acme doc 3' }])
      assert.deepEqual(titles.executeTakeFirstSync({ min: 3 }), { title: 'acme doc 3' })
      assert.deepEqual(cte.executeTakeFirstSync(), { n: 3 })
      assert.deepEqual(values.executeSync(), [{ column1: 7 }])
    })
    assert.deepEqual(apexRaw.executeSync(), [{ email: 'ada@apex.test' }, { email: 'bob@apex.test' }])
    await shard.close()
  })

  test('result plugins that transform rows (CamelCasePlugin): InvalidOptionsError, while the async methods still work', async () => {
    const { shard } = await seeded(['acme'], 3, { plugins: [new CamelCasePlugin()] })
    const q = shard.prepare((db: any, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select(['id', 'ownerId']).where('id', '=', p('id')),
    )
    const apexQ = shard.prepareApex((db) => db.selectFrom('accounts').select('email'))
    await shard.withTenant('acme', async () => {
      assert.throws(() => q.executeSync({ id: 1 }), InvalidOptionsError)
      assert.throws(() => q.executeTakeFirstSync({ id: 1 }), InvalidOptionsError)
      assert.deepEqual(await q.executeTakeFirst({ id: 1 }), { id: 1, ownerId: 1 })
    })
    assert.throws(() => apexQ.executeSync(), InvalidOptionsError)
    assert.throws(() => apexQ.executeTakeFirstSync(), InvalidOptionsError)
    assert.equal((await apexQ.execute()).length, 2)
    await shard.close()
  })

  test('a storage adapter without synchronous reads: InvalidOptionsError, while the async methods still work', async () => {
    const { shard } = await makeShard({
      factory: (dir, options) => withoutSyncReads(sqliteStorage({ dir, ...options })),
    })
    await shard.apex.insertInto('accounts').values({ email: 'ada@apex.test' }).execute()
    await shard.tenants.create('acme')
    const titles = shard.prepare((db) => db.selectFrom('documents').select('title'))
    const emails = shard.prepareApex((db) => db.selectFrom('accounts').select('email'))
    await shard.withTenant('acme', async (t) => {
      await t.db.insertInto('documents').values({ title: 'only async' }).execute()
      assert.throws(() => titles.executeSync(), InvalidOptionsError)
      assert.throws(() => titles.executeTakeFirstSync(), InvalidOptionsError)
      assert.deepEqual(await titles.execute(), [{ title: 'only async' }])
    })
    assert.throws(() => emails.executeSync(), InvalidOptionsError)
    assert.throws(() => emails.executeTakeFirstSync(), InvalidOptionsError)
    assert.deepEqual(await emails.executeTakeFirst(), { email: 'ada@apex.test' })
    // And while another scope holds a transaction (where the separate connection would be needed).
    const holder = await holdTransaction(shard, 'acme', { title: 'held' })
    await shard.withTenant('acme', () => {
      assert.throws(() => titles.executeSync(), InvalidOptionsError)
    })
    await holder.commit()
    await shard.close()
  })

  for (const journalMode of JOURNAL_MODES) {
    describe(`tenant journal mode ${journalMode}`, () => {
      test("another scope's open transaction: a sync read does not wait and sees the committed state; after the commit it sees the row", async () => {
        const { shard } = await seeded(['acme'], 3, { storageOptions: { journalMode } })
        assert.equal(await journalModeOf(shard, 'acme'), journalMode)
        const titles = shard.prepare((db) => db.selectFrom('documents').select('title').orderBy('id'))
        const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
        const seededTitles = [1, 2, 3].map((n) => ({ title: `acme doc ${n}` }))

        const first = await holdTransaction(shard, 'acme', { title: 'uncommitted 1' })
        // Scope B runs while A's transaction is open: both reads return at once, with A's row absent.
        const duringFirst = await shard.withTenant('acme', async () => {
          const rows = timed(() => titles.executeSync())
          const n = timed(() => count.executeTakeFirstSync())
          assert.ok(rows.ms < NO_WAIT_MS && n.ms < NO_WAIT_MS, `a sync read took ${rows.ms} / ${n.ms} ms`)
          assert.deepEqual(rows.value, seededTitles, 'B must not see A’s uncommitted row')
          assert.deepEqual(n.value, { n: 3 })
          await first.commit()
          // B's next sync read, in the same scope, sees A's committed row.
          return { after: titles.executeSync(), n: count.executeTakeFirstSync() }
        })
        assert.deepEqual(duringFirst.after, [...seededTitles, { title: 'uncommitted 1' }])
        assert.deepEqual(duringFirst.n, { n: 4 })

        // A second transaction: the separate connection must see the first commit (no stale snapshot) but not this one.
        const second = await holdTransaction(shard, 'acme', { title: 'uncommitted 2' })
        await shard.withTenant('acme', () => {
          assert.deepEqual(titles.executeSync(), [...seededTitles, { title: 'uncommitted 1' }])
          assert.deepEqual(count.executeTakeFirstSync(), { n: 4 })
        })
        const rollbackStart = performance.now()
        await second.rollback()
        assert.ok(
          performance.now() - rollbackStart < NO_WAIT_MS,
          'the sync reader held no lock that slowed the rollback',
        )
        await shard.withTenant('acme', () => {
          assert.deepEqual(count.executeTakeFirstSync(), { n: 4 }, 'the rolled-back row never appears')
        })

        // A third: commit after reads on the separate connection; the writer is not blocked by the reader.
        const third = await holdTransaction(shard, 'acme', { title: 'uncommitted 3' })
        await shard.withTenant('acme', () => assert.deepEqual(count.executeTakeFirstSync(), { n: 4 }))
        const start = performance.now()
        await third.commit()
        assert.ok(performance.now() - start < NO_WAIT_MS, 'the commit did not wait for a lock held by the reader')
        await shard.withTenant('acme', () => {
          assert.deepEqual(titles.executeSync().at(-1), { title: 'uncommitted 3' })
        })
        await shard.close()
      })

      test('inside its own transaction a sync read sees the uncommitted rows; other scopes do not', async () => {
        const { shard } = await seeded(['acme'], 3, { storageOptions: { journalMode } })
        const titles = shard.prepare((db, p: Params<{ min: number }>) =>
          db.selectFrom('documents').select('title').where('id', '>=', p('min')).orderBy('id'),
        )
        const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
        const withOwner = withOwnerQuery(shard)
        const emails = shard.prepareApex((db) => db.selectFrom('accounts').select('email').orderBy('id'))
        // Bound to the test's own context, so that calling it inside the transaction opens a separate
        // scope rather than a nested one (a nested scope of the same tenant joins the transaction).
        const readElsewhere = AsyncResource.bind(() => shard.withTenant('acme', () => count.executeTakeFirstSync()))
        await shard.withTenant('acme', (t) =>
          t.transaction(async (trx) => {
            await trx.db.insertInto('documents').values({ title: 'mine' }).execute()
            assert.deepEqual(count.executeTakeFirstSync(), { n: 4 })
            assert.deepEqual(titles.executeSync({ min: 3 }), [{ title: 'acme doc 3' }, { title: 'mine' }])
            await sleep(5)
            await trx.db.insertInto('documents').values({ title: 'mine too', owner_id: 2 }).execute()
            assert.deepEqual(titles.executeTakeFirstSync({ min: 5 }), { title: 'mine too' })
            // A query joining apex, in the transaction (apex is attached after BEGIN): its own row included.
            assert.deepEqual(withOwner.executeTakeFirstSync({ id: 5 }), { title: 'mine too', email: 'bob@apex.test' })
            assert.deepEqual(withOwner.executeSync({ id: 4 }), [])
            // An apex prepared query works here too.
            assert.deepEqual(emails.executeSync(), [{ email: 'ada@apex.test' }, { email: 'bob@apex.test' }])
            // A scope of the same tenant nested in this one joins the transaction, as the async form does.
            await shard.withTenant('acme', async () => {
              assert.deepEqual(count.executeSync(), await count.execute())
              assert.deepEqual(count.executeTakeFirstSync(), { n: 5 })
            })
            // Another scope of the tenant, started from outside this one (not nested in it): committed rows only.
            assert.deepEqual(await readElsewhere(), { n: 3 }, 'another scope sees only committed rows')
          }),
        )
        await shard.withTenant('acme', async (t) => {
          assert.deepEqual(count.executeTakeFirstSync(), { n: 5 }, 'committed')
          await assert.rejects(
            t.transaction(async (trx) => {
              await trx.db.deleteFrom('documents').execute()
              assert.deepEqual(count.executeSync(), [{ n: 0 }], 'its own delete is visible inside')
              throw new RolledBack()
            }),
            RolledBack,
          )
          assert.deepEqual(count.executeSync(), [{ n: 5 }], 'and gone after the rollback')
        })
        await shard.close()
      })

      test('a tenant query that joins apex.accounts: in the scope and on the separate connection', async () => {
        const { shard } = await seeded(['acme'], 3, { storageOptions: { journalMode } })
        const withOwner = withOwnerQuery(shard)
        assert.match(withOwner.sql, /"apex"\."accounts"/)
        await shard.withTenant('acme', () => {
          assert.deepEqual(withOwner.executeSync({ id: 2 }), [{ title: 'acme doc 2', email: 'bob@apex.test' }])
          assert.deepEqual(withOwner.executeTakeFirstSync({ id: 1 }), { title: 'acme doc 1', email: 'ada@apex.test' })
        })
        const holder = await holdTransaction(shard, 'acme', { title: 'held', owner_id: 1 })
        await shard.withTenant('acme', () => {
          const rows = timed(() => withOwner.executeSync({ id: 2 }))
          assert.ok(rows.ms < NO_WAIT_MS)
          assert.deepEqual(rows.value, [{ title: 'acme doc 2', email: 'bob@apex.test' }])
          assert.deepEqual(withOwner.executeTakeFirstSync({ id: 3 }), { title: 'acme doc 3', email: 'ada@apex.test' })
          assert.equal(withOwner.executeTakeFirstSync({ id: 4 }), undefined, 'the uncommitted document is not visible')
        })
        // Apex changes committed meanwhile are seen by the separate connection's attachment too.
        await shard.apex.updateTable('accounts').set({ email: 'bob2@apex.test' }).where('id', '=', 2).execute()
        await shard.withTenant('acme', () => {
          assert.deepEqual(withOwner.executeSync({ id: 2 }), [{ title: 'acme doc 2', email: 'bob2@apex.test' }])
        })
        await holder.commit()
        await shard.withTenant('acme', () => {
          assert.deepEqual(withOwner.executeTakeFirstSync({ id: 4 }), { title: 'held', email: 'ada@apex.test' })
        })
        const again = await holdTransaction(shard, 'acme', { title: 'held again', owner_id: 2 })
        await shard.withTenant('acme', () => {
          assert.deepEqual(withOwner.executeTakeFirstSync({ id: 4 }), { title: 'held', email: 'ada@apex.test' })
          assert.equal(withOwner.executeTakeFirstSync({ id: 5 }), undefined)
        })
        await again.commit()
        await shard.close()
      })

      test('after a schema change (DDL in a scope, then a migration through the library) sync reads return the new shape', async () => {
        // DDL in a scope.
        const { shard } = await seeded(['acme'], 3, { storageOptions: { journalMode } })
        const first = shard.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id').limit(1))
        const all = shard.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id'))
        const separateRead = async (s: Shard, query: typeof all) => {
          const holder = await holdTransaction(s, 'acme', { title: 'held' })
          try {
            return await s.withTenant('acme', () => query.executeSync())
          } finally {
            await holder.rollback()
          }
        }
        await shard.withTenant('acme', () => {
          assert.deepEqual(Object.keys(first.executeTakeFirstSync()!), ['id', 'title', 'owner_id', 'status'])
        })
        assert.deepEqual(Object.keys((await separateRead(shard, all))[0]!), ['id', 'title', 'owner_id', 'status'])
        await shard.withTenant('acme', async (t) => {
          await t.db.schema
            .alterTable('documents')
            .addColumn('archived', 'integer', (c) => c.defaultTo(0))
            .execute()
          assert.deepEqual(first.executeTakeFirstSync(), {
            id: 1,
            title: 'acme doc 1',
            owner_id: 1,
            status: 'open',
            archived: 0,
          })
        })
        const afterDdl = await separateRead(shard, all)
        assert.equal(afterDdl.length, 3)
        assert.deepEqual(afterDdl[2], { id: 3, title: 'acme doc 3', owner_id: 1, status: 'open', archived: 0 })
        await shard.close()

        // A migration through the library (migrate.tenant), on an instance whose handles and statements are warm.
        const dir = tempDir()
        const v2 = createShardines<ApexDB, TenantDB>({
          storage: sqliteStorage({ dir, journalMode }),
          migrations: { apex: apexMigrations, tenant: tenantMigrations },
        })
        await v2.migrate.apex()
        await v2.tenants.create('acme')
        await v2.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'v2 doc' }).execute())
        await v2.close()
        const v3 = createShardines<ApexDB, TenantDB>({
          storage: sqliteStorage({ dir, journalMode }),
          migrations: {
            apex: apexMigrations,
            tenant: {
              ...tenantMigrations,
              '003_priority': {
                async up(db) {
                  await db.schema
                    .alterTable('documents')
                    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(5))
                    .execute()
                },
              },
            },
          },
          migrateOnOpen: 'off',
        })
        const rows = v3.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id'))
        await v3.withTenant('acme', () => {
          assert.deepEqual(rows.executeSync(), [{ id: 1, title: 'v2 doc', owner_id: null, status: 'open' }])
        })
        assert.deepEqual(await separateRead(v3, rows), [{ id: 1, title: 'v2 doc', owner_id: null, status: 'open' }])
        const migrated = await v3.migrate.tenant('acme')
        assert.equal(migrated.to, '003_priority')
        await v3.withTenant('acme', () => {
          assert.deepEqual(rows.executeSync(), [
            { id: 1, title: 'v2 doc', owner_id: null, status: 'open', priority: 5 },
          ])
          assert.deepEqual(rows.executeTakeFirstSync(), {
            id: 1,
            title: 'v2 doc',
            owner_id: null,
            status: 'open',
            priority: 5,
          })
        })
        assert.deepEqual(await separateRead(v3, rows), [
          { id: 1, title: 'v2 doc', owner_id: null, status: 'open', priority: 5 },
        ])
        await v3.close()
      })

      test('~30 tenants, interleaved scopes with transactions open, maxOpen 8: every sync read returns only its own tenant’s committed rows', async () => {
        const ids = Array.from({ length: 30 }, (_, i) => `t${String(i).padStart(2, '0')}`)
        const { shard } = await seeded(ids, 4, { storageOptions: { maxOpen: 8, journalMode } })
        const titles = shard.prepare((db, p: Params<{ min: number }>) =>
          db.selectFrom('documents').select('title').where('id', '>=', p('min')).orderBy('id'),
        )
        const byId = shard.prepare((db, p: Params<{ id: number }>) =>
          db.selectFrom('documents').select('title').where('id', '=', p('id')),
        )
        const random = seededRandom(20240611)
        let reads = 0
        let committed = 0
        const checkTitles = (id: string, rows: { title: string }[], own?: string) => {
          reads++
          for (const { title } of rows) {
            assert.ok(title.startsWith(`${id} `), `tenant ${id} read "${title}"`)
            assert.ok(!title.includes('rolled back'), `tenant ${id} read a rolled-back row "${title}"`)
            if (title.includes('pending') && title !== own) {
              // Another scope's row: visible only once its writer finished and is committing.
              assert.ok(committing.has(title), `tenant ${id} read "${title}" while its transaction was open`)
            }
          }
        }
        /** Rows whose writer's callback has returned (its commit follows): only these may be seen by others. */
        const committing = new Set<string>()
        const tasks = Array.from({ length: 450 }, (_, i) => {
          const id = ids[Math.floor(random() * ids.length)]!
          const kind = i % 9
          if (kind === 0) {
            // A writer: its own uncommitted row is visible to it, to nobody else; half commit, half roll back.
            const commit = i % 18 === 0
            const title = `${id} pending ${i}${commit ? '' : ' rolled back'}`
            return shard
              .withTenant(id, (t) =>
                t.transaction(async (trx) => {
                  await trx.db.insertInto('documents').values({ title }).execute()
                  await randomPause(random)
                  const rows = titles.executeSync({ min: 1 })
                  assert.ok(
                    rows.some((r) => r.title === title),
                    'a writer sees its own uncommitted row',
                  )
                  // Only the writer's own rolled-back row may show here.
                  checkTitles(
                    id,
                    rows.filter((r) => r.title !== title),
                    title,
                  )
                  await sleep(Math.floor(random() * 4))
                  if (!commit) throw new RolledBack()
                  committing.add(title)
                }),
              )
              .then(
                () => {
                  committed++
                },
                (error: unknown) => {
                  if (!(error instanceof RolledBack)) throw error
                },
              )
          }
          return shard.withTenant(id, async () => {
            await randomPause(random)
            const all = titles.executeSync({ min: 1 })
            checkTitles(id, all)
            assert.deepEqual(
              all.slice(0, 4).map((r) => r.title),
              [1, 2, 3, 4].map((n) => `${id} doc ${n}`),
            )
            await randomPause(random)
            const n = 1 + (i % 4)
            assert.deepEqual(byId.executeTakeFirstSync({ id: n }), { title: `${id} doc ${n}` })
            await sleep(Math.floor(random() * 3))
            const tail = titles.executeSync({ min: 3 })
            checkTitles(id, tail)
            assert.deepEqual(
              tail.slice(0, 2).map((r) => r.title),
              [`${id} doc 3`, `${id} doc 4`],
            )
            // The async path agrees with the sync one in the same scope.
            const asyncFirst = await byId.executeTakeFirst({ id: n })
            assert.deepEqual(asyncFirst, { title: `${id} doc ${n}` })
          })
        })
        await Promise.all(tasks)
        assert.ok(reads > 400, `only ${reads} reads ran`)
        assert.ok(committed > 0)
        assert.ok(shard.stats().evictions > 0, 'the pool evicted and reopened handles meanwhile')
        // Every committed row ended up in its own tenant, and no rolled-back row anywhere.
        for (const id of ids) {
          const rows = await shard.withTenant(id, () => titles.executeSync({ min: 1 }))
          const expected = [...committing].filter((title) => title.startsWith(`${id} `))
          assert.deepEqual(
            rows
              .slice(4)
              .map((r) => r.title)
              .sort(),
            expected.sort(),
          )
        }
        await shard.close()
      })

      test('after a separate-connection read, shard.close() leaves no descriptor open on the tenant’s file', {
        skip: SKIP_WITHOUT_PROC_FD,
      }, async () => {
        const { shard, dir } = await seeded(['acme'], 3, { storageOptions: { journalMode } })
        const acmeFile = fs.realpathSync(path.join(dir, 'tenants', 'acme.sqlite3'))
        const onAcme = (file: string) => file === acmeFile
        const withOwner = shard.prepare((db) =>
          db
            .selectFrom('documents as d')
            .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
            .select(['d.title', 'a.email']),
        )
        const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
        const emails = shard.prepareApex((db) => db.selectFrom('accounts').select('email'))
        const holder = await holdTransaction(shard, 'acme', { title: 'held' })
        await shard.withTenant('acme', () => {
          assert.deepEqual(count.executeTakeFirstSync(), { n: 3 })
          assert.equal(withOwner.executeSync().length, 3)
        })
        await holder.commit()
        // Apex's own separate connection too (an apex transaction is open during the read).
        const apexHolder = await holdApexTransaction(shard, 'cy@apex.test')
        assert.equal(emails.executeSync().length, 2)
        await apexHolder.commit()
        assert.ok(openDescriptors(dir, onAcme).length > 0, 'the tenant’s handle is open before close (the check works)')
        await shard.close()
        assert.deepEqual(openDescriptors(dir, onAcme), [], 'descriptors left on the tenant’s file')
        assert.deepEqual(openDescriptors(dir), [], 'descriptors left under the data folder')
      })

      test('a transaction large enough to spill to disk: WAL readers still read; under the rollback journal StorageError at once (never a wait, never its rows)', async () => {
        // A small page cache (better-sqlite3's default is 16 MB), so that ~8 MB of changes surely spill.
        const { shard, dir } = await seeded(['acme', 'globex'], 3, {
          storageOptions: { journalMode, pragmas: { cache_size: -512 } },
        })
        const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
        const firstTitle = shard.prepare((db) => db.selectFrom('documents').select('title').orderBy('id').limit(1))
        // acme's separate connection is opened and `count` prepared on it now; globex's stays unopened.
        const warmUp = await holdTransaction(shard, 'acme', { title: 'warm-up' })
        await shard.withTenant('acme', () => assert.deepEqual(count.executeTakeFirstSync(), { n: 3 }))
        await warmUp.rollback()

        const rows = 2000
        const body = 'x'.repeat(4096)
        /** A transaction on `id` that writes ~8 MB and stays open. */
        const spill = async (id: string) => {
          const { promise: gate, resolve: release } = latch()
          const { promise: full, resolve: filled } = latch()
          const writer = shard.withTenant(id, (t) =>
            t.transaction(async (trx) => {
              for (let i = 0; i < rows; i += 100) {
                await trx.db
                  .insertInto('documents')
                  .values(Array.from({ length: 100 }, (_, k) => ({ title: `${body}${i + k}` })))
                  .execute()
              }
              assert.deepEqual(count.executeTakeFirstSync(), { n: 3 + rows }, 'the writer sees its own rows')
              filled()
              await gate
            }),
          )
          await Promise.race([full, writer])
          // A control: a plain read-only connection to the file cannot read now under the rollback journal (the
          // writer spilled and holds the exclusive lock), and can under WAL.
          const control = new Database(path.join(dir, 'tenants', `${id}.sqlite3`), { readonly: true, timeout: 0 })
          const plain = outcome(() => control.prepare('select count(*) as n from documents').get())
          control.close()
          if (journalMode === 'wal') assert.deepEqual(plain.value, { n: 3 })
          else assert.equal((plain.error as { code?: string } | undefined)?.code, 'SQLITE_BUSY', String(plain.error))
          return {
            async commit() {
              release()
              await writer
            },
          }
        }
        const spilled = [await spill('acme'), await spill('globex')]
        const cases = [
          { id: 'acme', what: 'a statement already prepared on the separate connection', query: count },
          { id: 'acme', what: 'a statement new to the separate connection', query: firstTitle },
          { id: 'globex', what: 'the first read on a separate connection not opened before', query: firstTitle },
          { id: 'globex', what: 'the second read there', query: count },
        ]
        for (const { id, what, query } of cases) {
          const expected = query === count ? [{ n: 3 }] : [{ title: `${id} doc 1` }]
          await shard.withTenant(id, () => {
            const read = timed(() => outcome(() => (query as typeof count).executeSync()))
            assert.ok(read.ms < NO_WAIT_MS, `${id}, ${what}: the read took ${read.ms} ms`)
            if (journalMode === 'wal') {
              assert.equal(read.value.error, undefined, `${id}, ${what}: ${String(read.value.error)}`)
              assert.deepEqual(read.value.value, expected, `${id}, ${what}`)
            } else {
              assert.equal(read.value.value, undefined, `${id}, ${what}: returned rows while the writer held the lock`)
              assert.ok(
                read.value.error instanceof StorageError,
                `${id}, ${what}: expected StorageError (docs/prepared.md), got ${String(read.value.error)}`,
              )
            }
          })
        }
        for (const writer of spilled) await writer.commit()
        for (const id of ['acme', 'globex']) {
          await shard.withTenant(id, () => assert.deepEqual(count.executeTakeFirstSync(), { n: 3 + rows }))
        }
        await shard.close()
      })

      test('an evicted tenant’s separate connection is closed with its handle (maxOpen 1)', {
        skip: SKIP_WITHOUT_PROC_FD,
      }, async () => {
        const { shard, dir } = await seeded(['acme', 'globex', 'initech'], 3, {
          storageOptions: { journalMode, maxOpen: 1 },
        })
        const acmeFile = fs.realpathSync(path.join(dir, 'tenants', 'acme.sqlite3'))
        const onAcme = (file: string) => file === acmeFile
        const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
        const holder = await holdTransaction(shard, 'acme', { title: 'held' })
        await shard.withTenant('acme', () => assert.deepEqual(count.executeTakeFirstSync(), { n: 3 }))
        await holder.commit()
        assert.ok(openDescriptors(dir, onAcme).length > 0)
        for (const id of ['globex', 'initech']) {
          await shard.withTenant(id, () => assert.deepEqual(count.executeTakeFirstSync(), { n: 3 }))
        }
        assert.ok(shard.stats().evictions > 0)
        assert.deepEqual(openDescriptors(dir, onAcme), [], 'the evicted tenant’s file is still open')
        await shard.close()
      })
    })
  }

  test('prepareApex: sync reads run anywhere; with an apex transaction open they do not wait and see committed state only', async () => {
    const { shard } = await seeded(['acme'])
    const email = shard.prepareApex((db, p: Params<{ id: number }>) =>
      db.selectFrom('accounts').select('email').where('id', '=', p('id')),
    )
    const emails = shard.prepareApex((db) => db.selectFrom('accounts').select('email').orderBy('id'))
    const withOwner = shard.prepare((db, p: Params<{ id: number }>) =>
      db
        .selectFrom('documents as d')
        .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select(['d.title', 'a.email'])
        .where('d.id', '=', p('id')),
    )
    const two = [{ email: 'ada@apex.test' }, { email: 'bob@apex.test' }]
    assert.deepEqual(email.executeTakeFirstSync({ id: 1 }), { email: 'ada@apex.test' })
    assert.deepEqual(emails.executeSync(), two)
    assert.deepEqual(await shard.withTenant('acme', () => email.executeSync({ id: 2 })), [{ email: 'bob@apex.test' }])
    assert.equal(email.executeTakeFirstSync({ id: 3 }), undefined)

    const first = await holdApexTransaction(shard, 'cy@apex.test')
    const during = timed(() => emails.executeSync())
    assert.ok(during.ms < NO_WAIT_MS, `took ${during.ms} ms`)
    assert.deepEqual(during.value, two, 'the open apex transaction’s row is not visible')
    assert.equal(email.executeTakeFirstSync({ id: 3 }), undefined)
    await shard.withTenant('acme', () => {
      assert.deepEqual(emails.executeSync(), two)
      assert.deepEqual(withOwner.executeTakeFirstSync({ id: 2 }), { title: 'acme doc 2', email: 'bob@apex.test' })
    })
    await first.commit()
    const three = [...two, { email: 'cy@apex.test' }]
    assert.deepEqual(emails.executeSync(), three)

    // A second apex transaction: the committed row is seen (no stale snapshot), the new one is not.
    const second = await holdApexTransaction(shard, 'dee@apex.test')
    assert.deepEqual(emails.executeSync(), three)
    assert.deepEqual(email.executeTakeFirstSync({ id: 3 }), { email: 'cy@apex.test' })
    assert.equal(email.executeTakeFirstSync({ id: 4 }), undefined)
    await second.rollback()
    assert.deepEqual(emails.executeSync(), three)
    assert.deepEqual(await emails.execute(), three)
    await shard.close()
  })

  test('after shard.close(): sync reads throw ShardinesClosedError, also in a scope still running, and reopen no file', async () => {
    const { shard, dir } = await seeded(['acme'])
    const count = shard.prepare((db) => db.selectFrom('documents').select((eb) => eb.fn.countAll<number>().as('n')))
    const emails = shard.prepareApex((db) => db.selectFrom('accounts').select('email'))
    assert.equal(emails.executeSync().length, 2)
    const { promise: paused, resolve: resume } = latch()
    const running = shard.withTenant('acme', async () => {
      assert.deepEqual(count.executeTakeFirstSync(), { n: 3 })
      await paused
      return [outcome(() => count.executeSync()), outcome(() => count.executeTakeFirstSync())]
    })
    await sleep(5)
    await shard.close()
    resume()
    for (const { value, error } of await running) {
      assert.equal(value, undefined)
      assert.ok(error instanceof ShardinesClosedError, `expected ShardinesClosedError, got ${String(error)}`)
    }
    assert.throws(() => emails.executeSync(), ShardinesClosedError)
    assert.throws(() => emails.executeTakeFirstSync(), ShardinesClosedError)
    if (SKIP_WITHOUT_PROC_FD === false) assert.deepEqual(openDescriptors(dir), [])
  })

  test("with a query log, sync reads emit 'query' events with the tenant (or apex) and the call's parameters", async () => {
    const events: ShardinesLogEvent[] = []
    const { shard } = await seeded(['acme', 'globex'], 3, { log: (event) => events.push(event) })
    const byId = shard.prepare((db, p: Params<{ id: number }>) =>
      db.selectFrom('documents').select('title').where('id', '=', p('id')),
    )
    const account = shard.prepareApex((db, p: Params<{ email: string }>) =>
      db.selectFrom('accounts').select('id').where('email', '=', p('email')),
    )
    const ours = () =>
      events
        .filter((e) => e.query.sql === byId.sql || e.query.sql === account.sql)
        .map((e) => [e.level, e.tenantId, e.query.sql, e.query.parameters])
    events.length = 0
    await shard.withTenant('acme', () => {
      assert.deepEqual(byId.executeTakeFirstSync({ id: 2 }), { title: 'acme doc 2' })
      assert.deepEqual(ours(), [['query', 'acme', byId.sql, [2]]], 'logged by the time the call returns')
    })
    assert.deepEqual(await shard.withTenant('globex', () => byId.executeSync({ id: 3 })), [{ title: 'globex doc 3' }])
    assert.deepEqual(account.executeTakeFirstSync({ email: 'bob@apex.test' }), { id: 2 })
    const holder = await holdTransaction(shard, 'acme', { title: 'held' })
    assert.deepEqual(await shard.withTenant('acme', () => byId.executeSync({ id: 1 })), [{ title: 'acme doc 1' }])
    await holder.commit()
    assert.deepEqual(ours(), [
      ['query', 'acme', byId.sql, [2]],
      ['query', 'globex', byId.sql, [3]],
      ['query', 'apex', account.sql, ['bob@apex.test']],
      ['query', 'acme', byId.sql, [1]],
    ])
    for (const event of events) {
      assert.ok(Number.isFinite(event.queryDurationMillis) && event.queryDurationMillis >= 0)
    }
    await shard.close()
  })
})
