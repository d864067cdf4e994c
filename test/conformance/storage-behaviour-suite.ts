/**
 * The storage behaviour suite: every lifecycle, scope and isolation behaviour
 * a `StorageAdapter` must show under Shardines, as one function (drizzle's
 * `tests()` pattern). An adapter's test file calls it with a factory:
 *
 * ```ts
 * storageBehaviourSuite('sqlite', sqliteFactory)
 * storageBehaviourSuite('libsql', libsqlFactory, { skip: ['backup taken while another scope keeps writing is a consistent copy'] })
 * ```
 *
 * Everything runs on real databases in fresh temp folders; nothing is mocked.
 * `skip` lists test titles (exactly as written here) the adapter cannot run.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import {
  createShardines,
  InvalidTenantIdError,
  type Migration,
  MigrationError,
  NoTenantError,
  ShardinesClosedError,
  type ShardinesLogEvent,
  TenantExistsError,
  TenantNotFoundError,
  TenantScopeClosedError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { caught, randomPause, runInLanes, seededRandom, sleep } from '../helpers/async-helpers.js'
import { makeShard, type StorageFactory, tenantMigrations } from '../helpers/fixtures.js'
import { mainFileOf, openPathsUnder } from '../helpers/open-files.js'
import { tempDir } from '../helpers/temp-dir.js'
import { filesMentioning, snapshotTree } from '../helpers/tree-snapshot.js'
import { hostileTenantIds, showId } from '../security/hostile-tenant-ids.js'

export interface StorageBehaviourSuiteOptions {
  /** Titles of tests this adapter skips (say why in the adapter's test file). */
  skip?: string[]
}

type Shard = Awaited<ReturnType<typeof makeShard>>['shard']

/** Resolves when called; for "this point was reached" signals between concurrent scopes. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void
  const promise = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { promise, fire }
}

async function titlesIn(shard: Shard, id: string): Promise<string[]> {
  const rows = await shard.withTenant(id, (t) => t.db.selectFrom('documents').select('title').orderBy('id').execute())
  return rows.map((r) => r.title)
}

async function listed(shard: { tenants: { list(): AsyncIterable<string> } }): Promise<string[]> {
  const ids: string[] = []
  for await (const id of shard.tenants.list()) ids.push(id)
  return ids
}

function assertError(error: unknown, kind: abstract new (...args: never[]) => Error, what: string): void {
  assert.ok(
    error instanceof kind,
    `${what}: expected ${kind.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  )
}

/** A tenant migration that waits before creating its table: keeps a create (or lazy migration) in progress. */
function slowMigration(ms: number, table: string, onRun?: () => void): Migration {
  return {
    async up(db) {
      onRun?.()
      await sleep(ms)
      await db.schema
        .createTable(table)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .execute()
    },
  }
}

export function storageBehaviourSuite(
  name: string,
  factory: StorageFactory,
  options: StorageBehaviourSuiteOptions = {},
) {
  const skip = new Set(options.skip ?? [])
  const it = (title: string, opts: { timeout?: number }, fn: () => Promise<void>) =>
    test(title, { ...opts, skip: skip.has(title) ? `skipped by the ${name} adapter` : false }, fn)
  const open = (opts: Parameters<typeof makeShard>[0] = {}) => makeShard({ factory, ...opts })

  describe(`storage behaviour suite: ${name}`, () => {
    describe('isolation', () => {
      it('thousands of interleaved concurrent scopes across many tenants never see or write another tenant’s rows', {
        timeout: 60_000,
      }, async () => {
        const TENANTS = 40
        const SCOPES = 3000
        const LANES = 48
        const MAX_OPEN = 6
        const random = seededRandom(20261123)
        const { shard } = await open({ storageOptions: { maxOpen: MAX_OPEN, synchronous: 'off' } })
        const ids = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(3, '0')}`)
        await runInLanes(ids.length, 8, (i) => shard.tenants.create(ids[i]!))
        const written = new Map<string, number>(ids.map((id) => [id, 0]))
        const byId = shard.prepare((db) => db.selectFrom('documents').select(['title']).orderBy('id'))
        const checkRows = (id: string, rows: { title: string }[]) => {
          for (const row of rows) {
            assert.ok(row.title.startsWith(`${id}:`), `scope ${id} saw row "${row.title}" of another tenant`)
          }
        }
        const hereIs = (id: string, where: string) =>
          assert.equal(shard.currentTenant(), id, `currentTenant() changed ${where}`)
        let nested = 0
        let transactions = 0

        await runInLanes(SCOPES, LANES, async (n) => {
          const id = ids[Math.floor(random() * TENANTS)]!
          const plan = random()
          await shard.withTenant(id, async (t) => {
            assert.equal(t.id, id)
            hereIs(id, 'at scope start')
            await randomPause(random)
            hereIs(id, 'after a pause')
            if (plan < 0.3) {
              // A transaction that spans awaits: other scopes of this tenant wait for it.
              transactions++
              await t.transaction(async (trx) => {
                await trx.db
                  .insertInto('documents')
                  .values({ title: `${id}:${n}:a` })
                  .execute()
                await randomPause(random)
                hereIs(id, 'inside a transaction')
                await trx.db
                  .insertInto('documents')
                  .values({ title: `${id}:${n}:b` })
                  .execute()
                checkRows(id, await trx.db.selectFrom('documents').select('title').execute())
              })
              written.set(id, written.get(id)! + 2)
            } else {
              const db = plan < 0.6 ? t.db : shard.db()
              await db
                .insertInto('documents')
                .values({ title: `${id}:${n}` })
                .execute()
              written.set(id, written.get(id)! + 1)
            }
            await randomPause(random)
            hereIs(id, 'after a write')
            checkRows(id, await shard.db().selectFrom('documents').select('title').execute())
            checkRows(id, await byId.execute())
            if (plan > 0.9) {
              // A nested scope of another tenant: the inner one wins, then this one is back.
              const other = ids[Math.floor(random() * TENANTS)]!
              nested++
              await shard.withTenant(other, async (inner) => {
                hereIs(other, 'in a nested scope')
                await randomPause(random)
                checkRows(other, await inner.db.selectFrom('documents').select('title').execute())
                checkRows(other, await shard.db().selectFrom('documents').select('title').execute())
              })
              hereIs(id, 'after a nested scope ended')
              checkRows(id, await t.db.selectFrom('documents').select('title').execute())
            }
          })
        })
        assert.ok(nested > 100 && transactions > 500, `too little variety: ${nested} nested, ${transactions} tx`)
        const stats = shard.stats()
        assert.ok(stats.evictions > 100, `maxOpen ${MAX_OPEN} should force evictions, got ${stats.evictions}`)
        assert.ok(stats.open <= MAX_OPEN, `open ${stats.open} after everything ended`)
        // Every write landed in its own tenant, and only there.
        for (const id of ids) {
          const titles = await titlesIn(shard, id)
          checkRows(
            id,
            titles.map((title) => ({ title })),
          )
          assert.equal(titles.length, written.get(id), `tenant ${id} row count`)
        }
        await shard.close()
      })
    })

    describe('scope', () => {
      it('NoTenantError outside a scope', {}, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        const prepared = shard.prepare((db) => db.selectFrom('documents').selectAll())
        assert.equal(shard.currentTenant(), undefined)
        assertError(await caught(() => shard.db()), NoTenantError, 'shard.db()')
        assertError(await caught(() => prepared.execute()), NoTenantError, 'prepared.execute()')
        await shard.withTenant('acme', async () => {
          assert.equal(shard.currentTenant(), 'acme')
        })
        // After a scope ended, and from a callback scheduled outside any scope.
        assert.equal(shard.currentTenant(), undefined)
        assertError(await caught(() => shard.db()), NoTenantError, 'shard.db() after a scope')
        const fromTimer = await new Promise<unknown>((resolve) =>
          setTimeout(() => resolve(caught(() => shard.db())), 1),
        )
        assertError(fromTimer, NoTenantError, 'shard.db() from a timer outside a scope')
        // withTenants binds no current tenant either.
        await shard.withTenants(['acme'], async () => {
          assertError(await caught(() => shard.db()), NoTenantError, 'shard.db() inside withTenants')
        })
        await shard.close()
      })

      it('nested scopes: the inner tenant wins and the outer is restored', {}, async () => {
        const { shard } = await open()
        for (const id of ['outer', 'inner', 'third']) await shard.tenants.create(id)
        await shard.withTenant('outer', (t) => t.db.insertInto('documents').values({ title: 'outer row' }).execute())
        await shard.withTenant('inner', (t) => t.db.insertInto('documents').values({ title: 'inner row' }).execute())
        const result = await shard.withTenant('outer', async (outer) => {
          const seen: string[] = []
          const value = await shard.withTenant('inner', async (inner) => {
            seen.push(shard.currentTenant()!)
            assert.equal(inner.id, 'inner')
            const rows = await shard.db().selectFrom('documents').select('title').execute()
            assert.deepEqual(rows, [{ title: 'inner row' }])
            // The outer scope's own db still reaches the outer tenant while the inner one is current.
            assert.deepEqual(await outer.db.selectFrom('documents').select('title').execute(), [{ title: 'outer row' }])
            await shard.withTenant('third', async () => seen.push(shard.currentTenant()!))
            seen.push(shard.currentTenant()!)
            return 42
          })
          assert.equal(value, 42)
          seen.push(shard.currentTenant()!)
          // An inner scope that throws restores the outer one too.
          await assert.rejects(
            shard.withTenant('inner', async () => {
              await sleep(1)
              throw new Error('boom')
            }),
            /boom/,
          )
          seen.push(shard.currentTenant()!)
          // Siblings running at once each see their own tenant.
          const siblings = await Promise.all(
            ['inner', 'third', 'inner'].map((id) =>
              shard.withTenant(id, async () => {
                await sleep(Math.random() * 3)
                return shard.currentTenant()
              }),
            ),
          )
          assert.deepEqual(siblings, ['inner', 'third', 'inner'])
          const rows = await shard.db().selectFrom('documents').select('title').execute()
          assert.deepEqual(rows, [{ title: 'outer row' }])
          return seen
        })
        assert.deepEqual(result, ['inner', 'third', 'inner', 'outer', 'outer'])
        assert.equal(shard.currentTenant(), undefined)
        await shard.close()
      })

      it('a nested scope of a tenant inside that tenant’s open transaction joins it instead of waiting forever', {
        timeout: 10_000,
      }, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        await shard.tenants.create('beta')
        const outcome = await shard
          .withTenant('acme', (t) =>
            t.transaction(async (trx) => {
              await trx.db.insertInto('documents').values({ title: 'in tx' }).execute()
              // The enclosing scope awaits the nested one: waiting for its transaction would never end.
              const seen = await shard.withTenant('acme', (inner) =>
                inner.db.selectFrom('documents').select('title').execute(),
              )
              assert.deepEqual(seen, [{ title: 'in tx' }])
              const deeper = await shard.withTenant('beta', () =>
                shard.withTenant('acme', async (inner) => {
                  await inner.db.insertInto('documents').values({ title: 'nested write' }).execute()
                  return inner.db.selectFrom('documents').select('title').orderBy('id').execute()
                }),
              )
              assert.deepEqual(deeper, [{ title: 'in tx' }, { title: 'nested write' }])
              // A transaction begun inside it nests as a savepoint instead of waiting for itself.
              const nested = await shard.withTenant('acme', (inner) =>
                inner.transaction(async (trx) => {
                  await trx.db.insertInto('documents').values({ title: 'savepoint' }).execute()
                  return 1
                }),
              )
              assert.equal(nested, 1)
              throw new Error('roll back')
            }),
          )
          .catch((error: Error) => error.message)
        assert.equal(outcome, 'roll back')
        // The nested write was part of the enclosing transaction, so it rolled back with it.
        assert.deepEqual(await titlesIn(shard, 'acme'), [])
        await shard.close()
      })

      it('TenantScopeClosedError when a scope’s objects are used after the scope ended', {}, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        let late: Promise<unknown> | undefined
        const kept = await shard.withTenant('acme', async (t) => {
          // Work left running after fn returns: it must not reach the file once the scope ended.
          late = sleep(20).then(() => caught(() => t.db.insertInto('documents').values({ title: 'late' }).execute()))
          return { t, db: shard.db() }
        })
        assertError(
          await caught(() => kept.t.db.selectFrom('documents').selectAll().execute()),
          TenantScopeClosedError,
          't.db',
        )
        assertError(
          await caught(() => kept.db.selectFrom('documents').selectAll().execute()),
          TenantScopeClosedError,
          'shard.db() kept',
        )
        assertError(
          await caught(() => kept.t.transaction(async () => undefined)),
          TenantScopeClosedError,
          't.transaction',
        )
        const error = await late
        assertError(error, TenantScopeClosedError, 'a write scheduled inside the scope and run after it')
        assert.equal((error as TenantScopeClosedError).tenantId, 'acme')
        assert.match((error as Error).message, /acme/)
        assert.deepEqual(await titlesIn(shard, 'acme'), [], 'the late write must not have landed')
        await shard.close()
      })

      it('scopes of a tenant that does not exist get TenantNotFoundError and create nothing', {}, async () => {
        const { shard, dir } = await open()
        const files = () => snapshotTree(dir).filter((p) => !p.endsWith('/'))
        const before = files()
        assertError(await caught(() => shard.withTenant('ghost', () => 1)), TenantNotFoundError, 'withTenant')
        assertError(await caught(() => shard.withTenants(['ghost'], () => 1)), TenantNotFoundError, 'withTenants')
        assertError(
          await caught(() => shard.tenants.backup('ghost', path.join(dir, 'b'))),
          TenantNotFoundError,
          'backup',
        )
        assertError(await caught(() => shard.tenants.fork('ghost', 'copy')), TenantNotFoundError, 'fork')
        assert.equal(await shard.tenants.exists('ghost'), false)
        assert.equal(await shard.tenants.destroy('ghost'), false)
        assert.deepEqual(files(), before)
        assert.equal(shard.stats().open, 0)
        await shard.close()
      })
    })

    describe('context propagation', () => {
      it('statements queued behind a transaction that a scope of another tenant ends resume in their own scope', {}, async () => {
        const { shard } = await open()
        for (const id of ['acme', 'beta', 'gamma']) await shard.tenants.create(id)
        const txOpen = signal()
        const gate = signal()
        const order: string[] = []
        // acme's transaction is begun and committed from inside a beta scope: the code that
        // ends it (and wakes every waiter) runs with beta as the current tenant.
        const holder = shard.withTenant('acme', (acme) =>
          shard.withTenant('beta', async () => {
            await acme.transaction(async (trx) => {
              await trx.db.insertInto('documents').values({ title: 'held' }).execute()
              txOpen.fire()
              await gate.promise
              assert.equal(shard.currentTenant(), 'beta')
              order.push('commit')
            })
            assert.equal(shard.currentTenant(), 'beta')
          }),
        )
        await txOpen.promise
        const byTitle = shard.prepare((db) => db.selectFrom('documents').select('title'))
        // Waiters of every kind, each queued by an acme scope nested in a gamma scope.
        const waiter = (
          kind: string,
          run: (t: Parameters<Parameters<Shard['withTenant']>[1]>[0]) => Promise<unknown>,
        ) =>
          shard.withTenant('gamma', async () => {
            const seen = await shard.withTenant('acme', async (t) => {
              const rows = await run(t)
              const here = shard.currentTenant()
              order.push(kind)
              // Still acme for later statements too.
              const again = await shard.db().selectFrom('documents').select('title').execute()
              return { here, rows, again, after: shard.currentTenant() }
            })
            return { ...seen, outer: shard.currentTenant() }
          })
        const waiters = {
          query: waiter('query', (t) => t.db.selectFrom('documents').select('title').execute()),
          prepared: waiter('prepared', () => byTitle.execute()),
          transaction: waiter('transaction', (t) =>
            t.transaction((trx) => trx.db.selectFrom('documents').select('title').execute()),
          ),
          stream: waiter('stream', async (t) => {
            const rows: unknown[] = []
            for await (const row of t.db.selectFrom('documents').select('title').stream()) rows.push(row)
            return rows
          }),
        }
        await sleep(20)
        assert.deepEqual(order, [], 'every waiter must still be queued behind the open transaction')
        gate.fire()
        await holder
        for (const [kind, pending] of Object.entries(waiters)) {
          const seen = await pending
          assert.equal(seen.here, 'acme', `${kind}: resumed as ${seen.here}, not as the acme scope that queued it`)
          assert.equal(seen.after, 'acme', kind)
          assert.equal(seen.outer, 'gamma', `${kind}: the enclosing gamma scope was not restored`)
          assert.deepEqual(seen.rows, [{ title: 'held' }], `${kind} must run after the commit`)
          assert.deepEqual(seen.again, [{ title: 'held' }], kind)
        }
        assert.equal(order[0], 'commit')
        assert.equal(shard.currentTenant(), undefined)
        await shard.close()
      })

      it('destroy waiting for a running scope resumes in its caller’s scope, not in the releaser’s', {}, async () => {
        const { shard } = await open()
        for (const id of ['victim', 'beta', 'gamma']) await shard.tenants.create(id)
        const entered = signal()
        const gate = signal()
        // The victim scope is ended from inside a beta scope: beta's code releases the destroy waiter.
        const running = shard.withTenant('beta', async () => {
          await shard.withTenant('victim', async (t) => {
            entered.fire()
            await gate.promise
            await t.db.insertInto('documents').values({ title: 'last' }).execute()
          })
          return shard.currentTenant()
        })
        await entered.promise
        const destroying = shard.withTenant('gamma', async () => {
          const existed = await shard.tenants.destroy('victim')
          return { existed, here: shard.currentTenant() }
        })
        await sleep(10)
        gate.fire()
        assert.equal(await running, 'beta')
        assert.deepEqual(await destroying, { existed: true, here: 'gamma' })
        assert.equal(shard.currentTenant(), undefined)
        await shard.close()
      })

      it('a scope waiting for another scope’s lazy migration resumes in its own context', {}, async () => {
        const dir = tempDir()
        // Version 1 of the app creates three tenants; version 2 adds a slow migration.
        const v1 = createShardines({ storage: factory(dir), migrations: { tenant: tenantMigrations } })
        for (const id of ['late', 'a', 'b']) await v1.tenants.create(id)
        await v1.close()
        let runs = 0
        const events: ShardinesLogEvent[] = []
        const v2 = createShardines<unknown, { extra: { id: number } }>({
          storage: factory(dir),
          migrations: { tenant: { ...tenantMigrations, '003_extra': slowMigration(40, 'extra', () => runs++) } },
          log: (event) => events.push(event),
        })
        const visit = (from: string | undefined) => {
          const inner = () =>
            v2.withTenant('late', async (t) => {
              const here = v2.currentTenant()
              const rows = await t.db.selectFrom('extra').selectAll().execute()
              return { here, rows }
            })
          if (from === undefined) return inner().then((seen) => ({ ...seen, after: v2.currentTenant() }))
          return v2.withTenant(from, async () => {
            const seen = await inner()
            return { ...seen, after: v2.currentTenant() }
          })
        }
        const [fromA, fromB, fromNone] = await Promise.all([visit('a'), visit('b'), visit(undefined)])
        assert.deepEqual(fromA, { here: 'late', rows: [], after: 'a' })
        assert.deepEqual(fromB, { here: 'late', rows: [], after: 'b' })
        assert.deepEqual(fromNone, { here: 'late', rows: [], after: undefined })
        // late, a and b each migrated exactly once: the concurrent openers of late shared one migration.
        assert.equal(runs, 3)
        const creates = events.filter((e) => /create table "extra"/.test(e.query.sql))
        assert.deepEqual(creates.map((e) => e.tenantId).sort(), ['a', 'b', 'late'])
        await v2.close()
      })
    })

    describe('statement cache', () => {
      for (const maxOpen of [1, 8]) {
        it(`the same SQL in two tenants never returns the other tenant’s rows (maxOpen ${maxOpen})`, {}, async () => {
          const { shard } = await open({ storageOptions: { maxOpen } })
          await shard.tenants.create('left')
          await shard.tenants.create('right')
          await shard.withTenant('left', (t) => t.db.insertInto('documents').values({ title: 'L' }).execute())
          await shard.withTenant('right', async (t) => {
            await t.db
              .insertInto('documents')
              .values([{ title: 'R1' }, { title: 'R2' }])
              .execute()
            // A schema change in one tenant only: its cached statements must not leak to the other.
            await sql`alter table documents add column extra text default 'x'`.execute(t.db)
          })
          const prepared = shard.prepare((db) => db.selectFrom('documents').selectAll().orderBy('id'))
          const expected = {
            left: [{ id: 1, title: 'L', owner_id: null, status: 'open' }],
            right: [
              { id: 1, title: 'R1', owner_id: null, status: 'open', extra: 'x' },
              { id: 2, title: 'R2', owner_id: null, status: 'open', extra: 'x' },
            ],
          }
          for (let round = 0; round < 100; round++) {
            for (const id of round % 2 ? (['left', 'right'] as const) : (['right', 'left'] as const)) {
              await shard.withTenant(id, async (t) => {
                assert.deepEqual(await t.db.selectFrom('documents').selectAll().orderBy('id').execute(), expected[id])
                assert.deepEqual(await prepared.execute(), expected[id])
                assert.deepEqual((await sql`select * from documents order by id`.execute(t.db)).rows, expected[id])
              })
            }
          }
          // Interleaved: the outer tenant's statement runs again after the inner ran the same SQL.
          await shard.withTenant('left', async (left) => {
            await Promise.all([
              shard.withTenant('right', async () => assert.deepEqual(await prepared.execute(), expected.right)),
              prepared.execute().then((rows) => assert.deepEqual(rows, expected.left)),
              left.db
                .selectFrom('documents')
                .selectAll()
                .orderBy('id')
                .execute()
                .then((rows) => assert.deepEqual(rows, expected.left)),
            ])
          })
          await shard.close()
        })
      }
    })

    describe('hostile tenant ids', () => {
      it('each hostile id is refused with InvalidTenantIdError by every entry point, and nothing is created on disk', {
        timeout: 30_000,
      }, async () => {
        const { shard, dir } = await open()
        await shard.tenants.create('good')
        const hostile = hostileTenantIds(dir)
        assert.ok(hostile.length >= 100, `only ${hostile.length} hostile ids`)
        const before = snapshotTree(dir, { sizes: true })
        const statsBefore = shard.stats()
        const backupDir = tempDir()
        const entryPoints: Record<string, (id: unknown) => unknown> = {
          withTenant: (id) => shard.withTenant(id as string, () => 'ran'),
          'tenants.create': (id) => shard.tenants.create(id as string),
          'tenants.exists': (id) => shard.tenants.exists(id as string),
          'tenants.destroy': (id) => shard.tenants.destroy(id as string),
          'tenants.backup': (id) => shard.tenants.backup(id as string, path.join(backupDir, 'copy.sqlite3')),
          'tenants.fork (from)': (id) => shard.tenants.fork(id as string, 'fork-target'),
          'tenants.fork (to)': (id) => shard.tenants.fork('good', id as string),
          'migrate.tenant': (id) => shard.migrate.tenant(id as string),
          withTenants: (id) => shard.withTenants([id as string], () => 'ran'),
          'withTenants (after a good id)': (id) => shard.withTenants(['good', id as string], () => 'ran'),
        }
        const failures: string[] = []
        for (const [entry, call] of Object.entries(entryPoints)) {
          for (const { label, id } of hostile) {
            // backup('apex') is the documented way to back up the apex database.
            if (entry === 'tenants.backup' && id === 'apex') continue
            let error: unknown
            try {
              error = await caught(() => call(id))
            } catch (succeeded) {
              failures.push(`${entry}(${showId(id)}) [${label}]: ${(succeeded as Error).message}`)
              continue
            }
            if (!(error instanceof InvalidTenantIdError) || error.code !== 'INVALID_TENANT_ID') {
              failures.push(`${entry}(${showId(id)}) [${label}]: ${String(error)}`)
            }
          }
        }
        assert.deepEqual(failures, [])
        assert.deepEqual(snapshotTree(dir, { sizes: true }), before, 'a hostile id changed the data folder')
        assert.deepEqual(snapshotTree(backupDir), [], 'a hostile backup wrote a file')
        assert.equal(fs.existsSync('/tmp/evil.sqlite3') || fs.existsSync('/tmp/evil'), false)
        assert.deepEqual(shard.stats(), statsBefore, 'a hostile id reached the handle pool')
        assert.deepEqual(await listed(shard), ['good'])
        await shard.close()
      })
    })

    describe('handle pool', () => {
      it('pinning: maxOpen 2, many concurrent long transactions across 10 tenants all succeed; open stays within maxOpen + pinned', {
        timeout: 30_000,
      }, async () => {
        const MAX_OPEN = 2
        const { shard, dir } = await open({ storageOptions: { maxOpen: MAX_OPEN, synchronous: 'off' } })
        const ids = Array.from({ length: 10 }, (_, i) => `pin${i}`)
        for (const id of ids) await shard.tenants.create(id)
        const samples: { open: number; pinned: number; files: number }[] = []
        const tenantFiles = (): number => openFilesUnder(path.join(dir), (f) => !/apex/.test(path.basename(f)))
        const sample = () => {
          const { open, pinned } = shard.stats()
          samples.push({ open, pinned, files: samples.length % 5 === 0 ? tenantFiles() : -1 })
        }
        const timer = setInterval(sample, 1)
        const PER_TENANT = 4
        try {
          await Promise.all(
            ids.flatMap((id) =>
              Array.from({ length: PER_TENANT }, (_, k) =>
                shard.withTenant(id, (t) =>
                  t.transaction(async (trx) => {
                    await trx.db
                      .insertInto('documents')
                      .values({ title: `${id}-${k}-a` })
                      .execute()
                    sample()
                    await sleep(5 + ((k * 7) % 11))
                    sample()
                    await trx.db
                      .insertInto('documents')
                      .values({ title: `${id}-${k}-b` })
                      .execute()
                  }),
                ),
              ),
            ),
          )
        } finally {
          clearInterval(timer)
        }
        sample()
        const worst = samples.reduce((m, s) => Math.max(m, s.open - s.pinned - MAX_OPEN), Number.NEGATIVE_INFINITY)
        assert.ok(worst <= 0, `open exceeded maxOpen + pinned by ${worst}`)
        const maxPinned = Math.max(...samples.map((s) => s.pinned))
        assert.ok(maxPinned > MAX_OPEN, `pinning never went past maxOpen (max pinned ${maxPinned}): test too weak`)
        for (const s of samples) {
          // What the process really holds open agrees with the pool (Linux only).
          if (s.files >= 0)
            assert.ok(s.files <= MAX_OPEN + s.pinned, `${s.files} tenant files open, pinned ${s.pinned}`)
        }
        const end = shard.stats()
        assert.ok(end.open <= MAX_OPEN && end.pinned === 0, `after the work: ${JSON.stringify(end)}`)
        if (fs.existsSync('/proc/self/fd')) assert.ok(tenantFiles() <= MAX_OPEN)
        for (const id of ids) assert.equal((await titlesIn(shard, id)).length, PER_TENANT * 2, id)
        await shard.close()
      })

      it('stats(): hits, misses and evictions follow the LRU', {}, async () => {
        const { shard } = await open({ storageOptions: { maxOpen: 2 } })
        for (const id of ['a', 'b', 'c']) await shard.tenants.create(id)
        const base = shard.stats()
        assert.deepEqual(base, { open: 0, pinned: 0, hits: 0, misses: 0, evictions: 0 })
        const visit = (id: string) => shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().execute())
        const delta = () => {
          const s = shard.stats()
          return { open: s.open, pinned: s.pinned, hits: s.hits, misses: s.misses, evictions: s.evictions }
        }
        await visit('a')
        assert.deepEqual(delta(), { open: 1, pinned: 0, hits: 0, misses: 1, evictions: 0 })
        await visit('a')
        assert.deepEqual(delta(), { open: 1, pinned: 0, hits: 1, misses: 1, evictions: 0 })
        await visit('b')
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 1, misses: 2, evictions: 0 })
        await visit('a') // a is now the most recent; b the least
        await visit('c') // evicts b
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 2, misses: 3, evictions: 1 })
        await visit('a')
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 3, misses: 3, evictions: 1 })
        await visit('b') // evicts c
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 3, misses: 4, evictions: 2 })
        // LRU order is now a, b. Nested scopes pin: only unpinned handles are evicted.
        await shard.withTenant('c', async () => {
          assert.deepEqual(delta(), { open: 2, pinned: 1, hits: 3, misses: 5, evictions: 3 }, 'c evicts a')
          await shard.withTenant('a', async () => {
            assert.deepEqual(delta(), { open: 2, pinned: 2, hits: 3, misses: 6, evictions: 4 }, 'a evicts b')
            await shard.withTenant('b', async () => {
              // Everything is pinned: the pool goes above maxOpen rather than close a handle in use.
              assert.deepEqual(delta(), { open: 3, pinned: 3, hits: 3, misses: 7, evictions: 4 }, 'all pinned')
            })
            // Released, b is the only unpinned handle beyond maxOpen: it closes.
            assert.deepEqual(delta(), { open: 2, pinned: 2, hits: 3, misses: 7, evictions: 5 }, 'b released')
          })
        })
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 3, misses: 7, evictions: 5 })
        // Apex work is not counted.
        await shard.apex.selectFrom('accounts').selectAll().execute()
        assert.deepEqual(delta(), { open: 2, pinned: 0, hits: 3, misses: 7, evictions: 5 })
        await shard.close()
      })
    })

    describe('lifecycle', () => {
      it('create: a new tenant is migrated and empty; creating it again gives TenantExistsError', {}, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        assert.equal(await shard.tenants.exists('acme'), true)
        assert.deepEqual(await titlesIn(shard, 'acme'), [])
        const comments = await shard.withTenant('acme', (t) => t.db.selectFrom('comments').selectAll().execute())
        assert.deepEqual(comments, [])
        await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'kept' }).execute())
        const again = await caught(() => shard.tenants.create('acme'))
        assertError(again, TenantExistsError, 'second create')
        assert.equal((again as TenantExistsError).tenantId, 'acme')
        assert.deepEqual(await titlesIn(shard, 'acme'), ['kept'], 'a refused create must not touch the tenant')
        // Two creates racing in one process: exactly one wins.
        const results = await Promise.allSettled([shard.tenants.create('race'), shard.tenants.create('race')])
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
        assertError(lost.reason, TenantExistsError, 'the losing create')
        await shard.close()
      })

      it('create is atomic: a failing tenant migration leaves no file and no temporary file', {}, async () => {
        const dir = tempDir()
        const broken = createShardines({
          storage: factory(dir),
          migrations: {
            tenant: {
              ...tenantMigrations,
              '003_broken': {
                async up(db) {
                  await db.schema.createTable('half').addColumn('id', 'integer').execute()
                  await sleep(5)
                  throw new Error('migration exploded')
                },
              },
            },
          },
        })
        await broken.tenants.create('first').then(
          () => assert.fail('create with a failing migration succeeded'),
          (error: unknown) => {
            assertError(error, MigrationError, 'create with a failing migration')
            assert.equal((error as MigrationError).tenantId, 'first')
            assert.equal((error as MigrationError).migration, '003_broken')
          },
        )
        assert.deepEqual(filesMentioning(dir, 'first'), [], 'the failed create left files behind')
        const before = snapshotTree(dir)
        assertError(await caught(() => broken.tenants.create('second')), MigrationError, 'second failing create')
        assert.deepEqual(snapshotTree(dir), before, 'a failed create changed the data folder')
        assert.equal(await broken.tenants.exists('first'), false)
        assert.deepEqual(await listed(broken), [])
        assertError(await caught(() => broken.withTenant('first', () => 1)), TenantNotFoundError, 'scope after failure')
        await broken.close()
        // The same id can be created once the migrations are fixed.
        const fixed = createShardines({ storage: factory(dir), migrations: { tenant: tenantMigrations } })
        await fixed.tenants.create('first')
        assert.deepEqual(await listed(fixed), ['first'])
        await fixed.close()
      })

      it('list() is sorted, streams every tenant, and never shows a tenant still being built', {}, async () => {
        const dir = tempDir()
        const building = signal()
        const shard = createShardines({
          storage: factory(dir),
          migrations: {
            tenant: { ...tenantMigrations, '003_slow': slowMigration(60, 'slow_table', () => building.fire()) },
          },
        }) as unknown as Shard
        const ids = ['m-2', 'a1', 'zz', '0', 'm_1', 'b', 'm-10', '9z', 'a']
        for (const id of ids) await shard.tenants.create(id)
        assert.deepEqual(await listed(shard), [...ids].sort())
        const pending = shard.tenants.create('hidden')
        const forking = building.promise.then(() => shard.tenants.fork('a', 'forked'))
        await building.promise
        // While 'hidden' is being built (its slow migration is running), it is not visible.
        assert.deepEqual(await listed(shard), [...ids].sort())
        assert.equal(await shard.tenants.exists('hidden'), false)
        await Promise.all([pending, forking])
        assert.deepEqual(await listed(shard), [...ids, 'hidden', 'forked'].sort())
        // list() is an async iterable that can be stopped early.
        for await (const id of shard.tenants.list()) {
          assert.equal(id, '0')
          break
        }
        await shard.close()
      })

      for (const journalMode of ['delete', 'wal'] as const) {
        it(`destroy (${journalMode} journal): the files go, later scopes get TenantNotFoundError, and destroy waits for a running scope`, {}, async () => {
          const { shard, dir } = await open({ storageOptions: { journalMode } })
          await shard.tenants.create('victim')
          await shard.tenants.create('bystander')
          await shard.withTenant('victim', (t) => t.db.insertInto('documents').values({ title: 'x' }).execute())
          const order: string[] = []
          const entered = signal()
          const running = shard.withTenant('victim', async (t) => {
            await t.transaction(async (trx) => {
              await trx.db.insertInto('documents').values({ title: 'in flight' }).execute()
              entered.fire()
              await sleep(60)
              await trx.db.insertInto('documents').values({ title: 'still in flight' }).execute()
            })
            order.push('scope ended')
          })
          await entered.promise
          assert.ok(filesMentioning(dir, 'victim').length > 0)
          const destroying = shard.tenants.destroy('victim').then((existed) => {
            order.push('destroyed')
            return existed
          })
          // New scopes are refused at once, while the running one still works.
          assertError(await caught(() => shard.withTenant('victim', () => 1)), TenantNotFoundError, 'new scope')
          assert.equal(await shard.tenants.exists('victim'), false)
          assert.deepEqual(await listed(shard), ['bystander'])
          assert.deepEqual(order, [])
          await running
          assert.equal(await destroying, true)
          assert.deepEqual(order, ['scope ended', 'destroyed'])
          assert.deepEqual(filesMentioning(dir, 'victim'), [], 'destroy left files (or -wal/-shm/-journal) behind')
          assertError(await caught(() => shard.withTenant('victim', () => 1)), TenantNotFoundError, 'later scope')
          assert.equal(await shard.tenants.destroy('victim'), false)
          // The neighbour is untouched; the id can be reused and starts empty.
          assert.equal(await shard.tenants.exists('bystander'), true)
          await shard.tenants.create('victim')
          assert.deepEqual(await titlesIn(shard, 'victim'), [])
          await shard.close()
        })
      }

      it('backup taken while another scope keeps writing is a consistent copy', { timeout: 30_000 }, async () => {
        const { shard } = await open({ storageOptions: { synchronous: 'off' } })
        await shard.tenants.create('src')
        const out = tempDir()
        const countIn = (file: string): number => {
          const copy = new Database(file, { readonly: true })
          try {
            assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok', file)
            return (copy.prepare('select count(*) as n from documents').get() as { n: number }).n
          } finally {
            copy.close()
          }
        }
        // 1. A scope holds an open transaction with an uncommitted row: the copy has only committed rows.
        await shard.withTenant('src', (t) => t.db.insertInto('documents').values({ title: 'committed' }).execute())
        await holdingOpenTransaction(shard, 'src', () => shard.tenants.backup('src', path.join(out, 'held.sqlite3')))
        assert.equal(countIn(path.join(out, 'held.sqlite3')), 1, 'the backup saw an uncommitted row')
        await shard.withTenant('src', (t) => t.db.deleteFrom('documents').execute())
        // 2. Copies taken while batches keep committing each hold one committed state.
        const writer = await startBatchWriter(shard, 'src')
        const during: number[] = []
        for (let i = 0; i < 5; i++) {
          const startedAt = writer.batches()
          await shard.tenants.backup('src', path.join(out, 'nested', `copy-${i}.sqlite3`))
          during.push(writer.batches() - startedAt)
        }
        const committed = await writer.stop()
        assert.ok(
          during.some((n) => n > 0),
          'no batch committed while any backup ran: the test proves nothing',
        )
        for (let i = 0; i < 5; i++) {
          const count = countIn(path.join(out, 'nested', `copy-${i}.sqlite3`))
          assert.ok(committed.has(count), `backup ${i} has ${count} rows: not a committed state (torn or uncommitted)`)
          assert.ok(count > writer.initial, 'the backup should include batches committed before it ran')
        }
        // 3. Apex backs up the same way, also while an apex transaction is open.
        await shard.apex.insertInto('accounts').values({ email: 'x@y.z' }).execute()
        const apexCopy = path.join(out, 'apex-backup.sqlite3')
        const release = signal()
        const inTx = signal()
        const apexTx = shard.apex.transaction().execute(async (trx) => {
          await trx.insertInto('accounts').values({ email: 'uncommitted@y.z' }).execute()
          inTx.fire()
          await release.promise
        })
        await inTx.promise
        await shard.tenants.backup('apex', apexCopy)
        release.fire()
        await apexTx
        const apex = new Database(apexCopy, { readonly: true })
        assert.deepEqual(apex.prepare('select email from accounts').all(), [{ email: 'x@y.z' }])
        apex.close()
        await shard.close()
      })

      it('fork taken while another scope keeps writing is a consistent copy', { timeout: 30_000 }, async () => {
        const { shard } = await open({ storageOptions: { synchronous: 'off' } })
        await shard.tenants.create('src')
        await shard.tenants.create('taken')
        const countIn = (id: string) =>
          shard.withTenant(id, async (t) => {
            const check = (await sql<{ integrity_check: string }>`pragma integrity_check`.execute(t.db)).rows
            assert.deepEqual(check, [{ integrity_check: 'ok' }], id)
            const { n } = await t.db
              .selectFrom('documents')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .executeTakeFirstOrThrow()
            return n
          })
        // 1. A scope holds an open transaction with an uncommitted row: the fork has only committed rows.
        await shard.withTenant('src', (t) => t.db.insertInto('documents').values({ title: 'committed' }).execute())
        await holdingOpenTransaction(shard, 'src', () => shard.tenants.fork('src', 'held'))
        assert.equal(await countIn('held'), 1, 'the fork saw an uncommitted row')
        await shard.withTenant('src', (t) => t.db.deleteFrom('documents').execute())
        // 2. Forks taken while batches keep committing each hold one committed state.
        const writer = await startBatchWriter(shard, 'src')
        const during: number[] = []
        for (let i = 0; i < 3; i++) {
          const startedAt = writer.batches()
          await shard.tenants.fork('src', `copy${i}`)
          during.push(writer.batches() - startedAt)
        }
        assertError(await caught(() => shard.tenants.fork('src', 'taken')), TenantExistsError, 'fork onto a tenant')
        const committed = await writer.stop()
        assert.ok(
          during.some((n) => n > 0),
          'no batch committed while any fork ran: the test proves nothing',
        )
        for (let i = 0; i < 3; i++) {
          const count = await countIn(`copy${i}`)
          assert.ok(committed.has(count), `fork ${i} has ${count} rows: not a committed state`)
        }
        // A fork is independent of its source.
        await shard.withTenant('copy0', (t) => t.db.deleteFrom('documents').execute())
        assert.ok((await countIn('src')) > writer.initial)
        assert.deepEqual(await titlesIn(shard, 'taken'), [])
        await shard.close()
      })
    })

    describe('observability and shutdown', () => {
      it('log events carry the tenant id, or apex', {}, async () => {
        const events: ShardinesLogEvent[] = []
        const { shard } = await open({ log: (event) => events.push(event) })
        for (const id of ['a', 'b', 'c']) await shard.tenants.create(id)
        const creates = events.filter((e) => /create table "documents"/.test(e.query.sql))
        assert.deepEqual(creates.map((e) => e.tenantId).sort(), ['a', 'b', 'c'])
        events.length = 0
        await Promise.all(
          Array.from({ length: 60 }, (_, i) => {
            const id = ['a', 'b', 'c'][i % 3]!
            return shard.withTenant(id, async (t) => {
              await sleep(i % 4)
              await sql`select ${id} as who`.execute(t.db)
              await t.transaction((trx) => sql`select ${id} as who`.execute(trx.db))
              await shard.apex.selectFrom('accounts').select(sql<string>`${'apex'}`.as('who')).execute()
              await caught(() => sql`select * from ${sql.raw(`missing_${id}`)}`.execute(t.db))
            })
          }),
        )
        const queries = events.filter((e) => e.level === 'query')
        const errors = events.filter((e) => e.level === 'error')
        assert.equal(errors.length, 60)
        for (const event of errors) assert.equal(event.query.sql, `select * from missing_${event.tenantId}`)
        let tagged = 0
        for (const event of queries) {
          assert.equal(typeof event.queryDurationMillis, 'number')
          const who = event.query.parameters[0]
          if (typeof who === 'string') {
            tagged++
            assert.equal(event.tenantId, who, `"${event.query.sql}" logged as ${event.tenantId}`)
          } else {
            // begin / commit of the transactions
            assert.ok(['a', 'b', 'c'].includes(event.tenantId), `${event.query.sql} logged as ${event.tenantId}`)
          }
        }
        assert.equal(tagged, 180)
        await shard.close()
      })

      it('close(): afterwards every call rejects with ShardinesClosedError', {}, async () => {
        const { shard, dir } = await open()
        await shard.tenants.create('acme')
        await shard.apex.selectFrom('accounts').selectAll().execute() // the apex handle is open
        await shard.withTenant('acme', (t) => t.db.selectFrom('documents').selectAll().execute())
        await shard.close()
        await shard.close() // twice is fine
        const calls: Record<string, () => unknown> = {
          withTenant: () => shard.withTenant('acme', () => 1),
          withTenants: () => shard.withTenants(['acme'], () => 1),
          mapTenants: () => shard.mapTenants(() => 1),
          'tenants.create': () => shard.tenants.create('new'),
          'tenants.exists': () => shard.tenants.exists('acme'),
          'tenants.list': () => shard.tenants.list(),
          'tenants.destroy': () => shard.tenants.destroy('acme'),
          'tenants.backup': () => shard.tenants.backup('acme', path.join(dir, 'b.sqlite3')),
          'tenants.fork': () => shard.tenants.fork('acme', 'copy'),
          'migrate.apex': () => shard.migrate.apex(),
          'migrate.tenant': () => shard.migrate.tenant('acme'),
          'apex query': () => shard.apex.selectFrom('accounts').selectAll().execute(),
          prepare: () => shard.prepare((db) => db.selectFrom('documents').selectAll()),
        }
        const wrong: string[] = []
        for (const [what, call] of Object.entries(calls)) {
          const error = await caught(call).catch((e: Error) => e)
          if (!(error instanceof ShardinesClosedError)) wrong.push(`${what}: ${String(error)}`)
        }
        assert.deepEqual(wrong, [])
        assert.deepEqual(filesMentioning(dir, 'new'), [])
        assert.deepEqual(filesMentioning(dir, 'copy'), [])
      })

      it('close() while a scope runs: the scope’s later statements get ShardinesClosedError', {}, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        const prepared = shard.prepare((db) => db.selectFrom('documents').selectAll())
        const errors = await shard.withTenant('acme', async (t) => {
          await t.db.selectFrom('documents').selectAll().execute()
          await shard.close()
          return {
            't.db': await caught(() => t.db.selectFrom('documents').selectAll().execute()),
            'shard.db()': await caught(() => shard.db().selectFrom('documents').selectAll().execute()),
            transaction: await caught(() => t.transaction(async () => 1)),
            prepared: await caught(() => prepared.execute()),
            'nested withTenant': await caught(() => shard.withTenant('acme', () => 1)),
          }
        })
        const wrong = Object.entries(errors)
          .filter(([, error]) => !(error instanceof ShardinesClosedError))
          .map(([what, error]) => `${what}: ${String(error)}`)
        assert.deepEqual(wrong, [])
        const { open: openHandles, pinned } = shard.stats()
        assert.deepEqual({ open: openHandles, pinned }, { open: 0, pinned: 0 }, 'handles or pins left after close')
      })
    })
  })
}

/**
 * Runs `copy` while a scope of `id` holds an open transaction with one
 * uncommitted row on the tenant's (shared) handle, then rolls it back.
 */
async function holdingOpenTransaction(shard: Shard, id: string, copy: () => Promise<unknown>): Promise<void> {
  const inTx = signal()
  const done = signal()
  const holder = shard.withTenant(id, (t) =>
    t
      .transaction(async (trx) => {
        await trx.db.insertInto('documents').values({ title: 'uncommitted' }).execute()
        inTx.fire()
        await done.promise
        throw new Error('roll back')
      })
      .catch((error: Error) => assert.equal(error.message, 'roll back')),
  )
  await inTx.promise
  try {
    await copy()
  } finally {
    done.fire()
    await holder
  }
}

/**
 * Keeps committing batches of BATCH rows to `id` (each transaction awaits a
 * timer halfway, so a copy taken meanwhile meets a half-written transaction)
 * and records the row count after every commit: a consistent copy has one of
 * those counts.
 */
async function startBatchWriter(shard: Shard, id: string) {
  const BATCH = 10
  const body = 'x'.repeat(1000)
  // Enough data (~3 MB) that a copy takes many steps (an online backup copies ~100 pages per step).
  await shard.withTenant(id, async (t) => {
    for (let i = 0; i < 30; i++) {
      await t.db
        .insertInto('documents')
        .values(Array.from({ length: 100 }, (_, k) => ({ title: `seed-${i}-${k}-${body}` })))
        .execute()
    }
  })
  const initial = 3000
  const committed = new Set<number>([initial])
  let stopping = false
  let batches = 0
  const done = shard.withTenant(id, async (t) => {
    while (!stopping || batches < 5) {
      const count = await t.transaction(async (trx) => {
        const half = Array.from({ length: BATCH / 2 }, (_, k) => ({ title: `batch-${batches}-${k}-${body}` }))
        await trx.db.insertInto('documents').values(half).execute()
        await new Promise<void>((resolve) => setImmediate(resolve))
        await trx.db.insertInto('documents').values(half).execute()
        const { n } = await trx.db
          .selectFrom('documents')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
        return n
      })
      committed.add(count)
      batches++
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  })
  // Let a few batches commit first.
  while (batches < 3) await sleep(1)
  return {
    initial,
    /** Batches committed so far. */
    batches: () => batches,
    async stop(): Promise<Set<number>> {
      stopping = true
      await done
      return committed
    },
  }
}

/** How many distinct files under `dir` this process holds open (Linux `/proc/self/fd`; -1 elsewhere). */
function openFilesUnder(dir: string, accept: (file: string) => boolean): number {
  const paths = openPathsUnder(dir)
  if (paths === undefined) return -1
  return new Set(paths.map(mainFileOf).filter(accept)).size
}
