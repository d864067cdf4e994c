/**
 * The storage behaviour suite: every lifecycle, scope, isolation and guard
 * behaviour a `StorageAdapter` must show under Shardines, as one function of a
 * target (drizzle's `tests()` pattern). It imports no driver and knows no file
 * layout: it uses the public API, the adapter's declared `capabilities`, and
 * the target's small test-support interface (`StorageBehaviourTarget` /
 * `StorageTestSupport` from `@shardines/core`).
 *
 * Adding a target (e.g. a libSQL mode):
 * 1. `test/conformance/targets/<name>-target.ts` exports a `StorageBehaviourTarget`:
 *    `create(dir, options)` returns a fresh adapter over the storage that `dir`
 *    addresses (the same databases every time it is given that `dir`), honouring
 *    `maxOpen` / `unsynced` / its `variants` where it can; `support` reads that
 *    storage behind Shardines' back with the adapter's own driver
 *    (`rawRows`, `rowsOfCopy`, `corrupt`, `remove`; `openTenantDatabases` and
 *    `storedFiles` only where it can tell). See `targets/sqlite-target.ts`.
 * 2. `test/conformance/<name>.test.ts` calls `storageBehaviourSuite(target)` and
 *    holds the adapter's own checks (file names, pragmas, URLs).
 *
 * Tests that need a capability the adapter does not declare are skipped with
 * a message naming it (and the branches for adapters without `attach` run
 * instead). `skip` lists any other test titles (exactly as they appear,
 * variant suffix included) the target cannot run: say why next to it.
 *
 * Everything runs on real databases in fresh temp folders; nothing is mocked.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { after, describe, test } from 'node:test'
import {
  CrossDatabaseQueryError,
  createShardines,
  InvalidOptionsError,
  InvalidTenantIdError,
  type Migration,
  MigrationError,
  NoTenantError,
  ReadOnlyAttachmentError,
  ShardinesClosedError,
  type ShardinesError,
  type ShardinesLogEvent,
  type StatementRefusal,
  StatementRefusedError,
  type StorageBehaviourTarget,
  type StorageCapabilities,
  StorageError,
  TenantArchivedError,
  TenantExistsError,
  TenantNotFoundError,
  TenantScopeClosedError,
} from '@shardines/core'
import { type Kysely, sql } from 'kysely'
import { caught, latch, randomPause, runInLanes, seededRandom, sleep } from '../helpers/async-helpers.js'
import {
  makeTargetShard,
  type TargetShard,
  type TargetShardOptions,
  tenantMigrations,
} from '../helpers/target-shard.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { hostileTenantIds, showId } from '../security/hostile-tenant-ids.js'

export interface StorageBehaviourSuiteOptions {
  /** Titles of tests (exactly as they appear, variant suffix included) this target skips; say why in its test file. */
  skip?: readonly string[]
}

type Shard = TargetShard
type Scope = Parameters<Parameters<Shard['withTenant']>[1]>[0]
type Capability = keyof StorageCapabilities

/** Resolves when called; for "this point was reached" signals between concurrent scopes. */
function signal(): { promise: Promise<void>; fire: () => void } {
  const { promise, resolve: fire } = latch()
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

export function storageBehaviourSuite(target: StorageBehaviourTarget, options: StorageBehaviourSuiteOptions = {}) {
  const { name, support } = target
  const skip = new Set(options.skip ?? [])
  // What the adapter declares it can do, read from one made for the purpose (it opens nothing).
  const probe = target.create(tempDir('shardines-probe-'))
  const capabilities = probe.capabilities
  const kind = probe.kind
  after(() => probe.close())
  const variants: readonly (string | undefined)[] =
    target.variants !== undefined && target.variants.length > 0 ? target.variants : [undefined]
  const titled = (title: string, variant: string | undefined) =>
    variant === undefined ? title : `${title} [${variant}]`
  const variantOptions = (variant: string | undefined) => (variant === undefined ? {} : { variant })

  interface TestOptions {
    timeout?: number
    /** Capabilities the test needs: skipped (naming them) when the adapter lacks one. */
    needs?: readonly Capability[]
    /** Capabilities whose absence the test is about: skipped when the adapter has one. */
    lacks?: readonly Capability[]
    /** Skipped with this reason (a condition the test itself computes). */
    skipBecause?: string | false
  }
  const it = (title: string, opts: TestOptions, fn: () => Promise<void>) => {
    const missing = (opts.needs ?? []).filter((c) => !capabilities[c])
    const present = (opts.lacks ?? []).filter((c) => capabilities[c])
    const reason = skip.has(title)
      ? `skipped by the ${name} target`
      : missing.length > 0
        ? `the ${name} adapter does not declare the ${missing.join(' and ')} capability`
        : present.length > 0
          ? `for adapters without the ${present.join(' and ')} capability; the ${name} adapter declares it`
          : (opts.skipBecause ?? false)
    test(title, { ...(opts.timeout === undefined ? {} : { timeout: opts.timeout }), skip: reason }, fn)
  }
  const open = (opts: TargetShardOptions = {}) => makeTargetShard(target, opts)

  /**
   * What the adapter keeps under `dir` as sorted lines (folders end in `/`;
   * with `sizes`, each file's size follows its path), or undefined when the
   * target cannot tell (then the suite relies on list() and exists()).
   */
  const storedTree = (dir: string, opts: { sizes?: boolean; folders?: boolean } = {}): string[] | undefined => {
    const files = support.storedFiles?.(dir)
    if (files === undefined) return undefined
    return files
      .filter((f) => opts.folders !== false || !f.path.endsWith('/'))
      .map((f) => (opts.sizes && f.size !== undefined ? `${f.path} ${f.size}` : f.path))
      .sort()
  }
  /** Stored files whose name contains `needle` (a tenant id and its side files), or undefined when the target cannot tell. */
  const storedMentioning = (dir: string, needle: string): string[] | undefined =>
    support
      .storedFiles?.(dir)
      ?.filter((f) => !f.path.endsWith('/') && path.posix.basename(f.path).includes(needle))
      .map((f) => f.path)

  /** Rows of a copy written by backup() or export(), read with the adapter's driver: its integrity checked, its documents counted. */
  const countInCopy = async (file: string): Promise<number> => {
    assert.deepEqual(await support.rowsOfCopy(file, 'pragma integrity_check'), [{ integrity_check: 'ok' }], file)
    const [row] = await support.rowsOfCopy(file, 'select count(*) as n from documents')
    return Number(row?.n)
  }

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
        const { shard } = await open({ storage: { maxOpen: MAX_OPEN, unsynced: true } })
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
        if (capabilities.attach) {
          await shard.withTenants(['acme'], async () => {
            assertError(await caught(() => shard.db()), NoTenantError, 'shard.db() inside withTenants')
          })
        }
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
        const files = () => storedTree(dir, { folders: false })
        const before = files()
        assertError(await caught(() => shard.withTenant('ghost', () => 1)), TenantNotFoundError, 'withTenant')
        if (capabilities.attach) {
          assertError(await caught(() => shard.withTenants(['ghost'], () => 1)), TenantNotFoundError, 'withTenants')
        }
        if (capabilities.backupToPath) {
          assertError(
            await caught(() => shard.tenants.backup('ghost', path.join(dir, 'b'))),
            TenantNotFoundError,
            'backup',
          )
        }
        if (capabilities.exportStream) {
          assertError(await caught(() => shard.tenants.export('ghost')), TenantNotFoundError, 'export')
        }
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
        const v1 = createShardines({ storage: target.create(dir), migrations: { tenant: tenantMigrations } })
        for (const id of ['late', 'a', 'b']) await v1.tenants.create(id)
        await v1.close()
        let runs = 0
        const events: ShardinesLogEvent[] = []
        const v2 = createShardines<unknown, { extra: { id: number } }>({
          storage: target.create(dir),
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
          const { shard } = await open({ storage: { maxOpen } })
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
        const before = storedTree(dir, { sizes: true })
        const statsBefore = shard.stats()
        const backupDir = tempDir()
        const entryPoints: Record<string, (id: unknown) => unknown> = {
          withTenant: (id) => shard.withTenant(id as string, () => 'ran'),
          'tenants.create': (id) => shard.tenants.create(id as string),
          'tenants.exists': (id) => shard.tenants.exists(id as string),
          'tenants.destroy': (id) => shard.tenants.destroy(id as string),
          'tenants.backup': (id) => shard.tenants.backup(id as string, path.join(backupDir, 'copy.sqlite3')),
          'tenants.export': (id) => shard.tenants.export(id as string),
          'tenants.fork (from)': (id) => shard.tenants.fork(id as string, 'fork-target'),
          'tenants.fork (to)': (id) => shard.tenants.fork('good', id as string),
          'migrate.tenant': (id) => shard.migrate.tenant(id as string),
          withTenants: (id) => shard.withTenants([id as string], () => 'ran'),
          'withTenants (after a good id)': (id) => shard.withTenants(['good', id as string], () => 'ran'),
          'tenants.rename (from)': (id) => shard.tenants.rename(id as string, 'rename-target'),
          'tenants.rename (to)': (id) => shard.tenants.rename('good', id as string),
          'tenants.archive': (id) => shard.tenants.archive(id as string),
          'tenants.restore': (id) => shard.tenants.restore(id as string),
        }
        const failures: string[] = []
        for (const [entry, call] of Object.entries(entryPoints)) {
          for (const { label, id } of hostile) {
            // backup('apex') and export('apex') are the documented way to copy the apex database.
            if ((entry === 'tenants.backup' || entry === 'tenants.export') && id === 'apex') continue
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
        assert.deepEqual(storedTree(dir, { sizes: true }), before, 'a hostile id changed the data folder')
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
        const { shard, dir } = await open({ storage: { maxOpen: MAX_OPEN, unsynced: true } })
        const ids = Array.from({ length: 10 }, (_, i) => `pin${i}`)
        for (const id of ids) await shard.tenants.create(id)
        const samples: { open: number; pinned: number; files: number }[] = []
        // What the process really holds open, where the target can tell (-1: not sampled or cannot tell).
        const tenantFiles = (): number => support.openTenantDatabases?.(dir) ?? -1
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
          // What the process really holds open agrees with the pool (where the target can tell).
          if (s.files >= 0)
            assert.ok(s.files <= MAX_OPEN + s.pinned, `${s.files} tenant files open, pinned ${s.pinned}`)
        }
        const end = shard.stats()
        assert.ok(end.open <= MAX_OPEN && end.pinned === 0, `after the work: ${JSON.stringify(end)}`)
        const openAtEnd = tenantFiles()
        if (openAtEnd >= 0) assert.ok(openAtEnd <= MAX_OPEN, `${openAtEnd} tenant databases open after the work`)
        for (const id of ids) assert.equal((await titlesIn(shard, id)).length, PER_TENANT * 2, id)
        await shard.close()
      })

      it('stats(): hits, misses and evictions follow the LRU', {}, async () => {
        const { shard } = await open({ storage: { maxOpen: 2 } })
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
          storage: target.create(dir),
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
        assert.deepEqual(storedMentioning(dir, 'first') ?? [], [], 'the failed create left files behind')
        const before = storedTree(dir)
        assertError(await caught(() => broken.tenants.create('second')), MigrationError, 'second failing create')
        assert.deepEqual(storedTree(dir), before, 'a failed create changed the data folder')
        assert.equal(await broken.tenants.exists('first'), false)
        assert.deepEqual(await listed(broken), [])
        assertError(await caught(() => broken.withTenant('first', () => 1)), TenantNotFoundError, 'scope after failure')
        await broken.close()
        // The same id can be created once the migrations are fixed.
        const fixed = createShardines({ storage: target.create(dir), migrations: { tenant: tenantMigrations } })
        await fixed.tenants.create('first')
        assert.deepEqual(await listed(fixed), ['first'])
        await fixed.close()
      })

      it('list() is sorted, streams every tenant, and never shows a tenant still being built', {}, async () => {
        const dir = tempDir()
        const building = signal()
        const shard = createShardines({
          storage: target.create(dir),
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

      for (const variant of variants) {
        it(titled(
          'destroy: the files go, later scopes get TenantNotFoundError, and destroy waits for a running scope',
          variant,
        ), {}, async () => {
          const { shard, dir } = await open({ storage: variantOptions(variant) })
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
          const whileRunning = storedMentioning(dir, 'victim')
          if (whileRunning !== undefined) assert.ok(whileRunning.length > 0, 'no stored file names the victim')
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
          assert.deepEqual(
            storedMentioning(dir, 'victim') ?? [],
            [],
            'destroy left files (or -wal/-shm/-journal) behind',
          )
          assertError(await caught(() => shard.withTenant('victim', () => 1)), TenantNotFoundError, 'later scope')
          assert.equal(await shard.tenants.destroy('victim'), false)
          // The neighbour is untouched; the id can be reused and starts empty.
          assert.equal(await shard.tenants.exists('bystander'), true)
          await shard.tenants.create('victim')
          assert.deepEqual(await titlesIn(shard, 'victim'), [])
          await shard.close()
        })
      }

      for (const variant of variants) {
        it(titled('backup taken while another scope keeps writing is a consistent copy', variant), {
          timeout: 30_000,
          needs: ['backupToPath'],
        }, async () => {
          const { shard } = await open({ storage: { unsynced: true, ...variantOptions(variant) } })
          await shard.tenants.create('src')
          const out = tempDir()
          // 1. A scope holds an open transaction with an uncommitted row: the copy has only committed rows.
          await shard.withTenant('src', (t) => t.db.insertInto('documents').values({ title: 'committed' }).execute())
          await holdingOpenTransaction(shard, 'src', () => shard.tenants.backup('src', path.join(out, 'held.sqlite3')))
          assert.equal(await countInCopy(path.join(out, 'held.sqlite3')), 1, 'the backup saw an uncommitted row')
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
            const count = await countInCopy(path.join(out, 'nested', `copy-${i}.sqlite3`))
            assert.ok(
              committed.has(count),
              `backup ${i} has ${count} rows: not a committed state (torn or uncommitted)`,
            )
            assert.ok(count > writer.initial, 'the backup should include batches committed before it ran')
          }
          // 3. Apex backs up the same way, also while an apex transaction is open.
          await shard.apex.insertInto('accounts').values({ email: 'x@y.z' }).execute()
          const apexCopy = path.join(out, 'apex-backup.sqlite3')
          await holdingOpenApexTransaction(shard, () => shard.tenants.backup('apex', apexCopy))
          assert.deepEqual(await support.rowsOfCopy(apexCopy, 'select email from accounts'), [{ email: 'x@y.z' }])
          await shard.close()
        })
      }

      for (const variant of variants) {
        it(titled(
          'export streams a consistent copy while another scope keeps writing, and leaves nothing behind',
          variant,
        ), {
          timeout: 30_000,
          needs: ['exportStream'],
        }, async () => {
          const { shard, dir } = await open({ storage: { unsynced: true, ...variantOptions(variant) } })
          await shard.tenants.create('src')
          await shard.tenants.create('other')
          const out = tempDir()
          const exportTo = async (id: string, file: string) => {
            await pipeline(shard.tenants.export(id), fs.createWriteStream(file))
            return file
          }
          // 1. A quiet tenant: the copy holds exactly the rows (and the related rows) Shardines reads.
          await shard.withTenant('src', async (t) => {
            const docs = await t.db
              .insertInto('documents')
              .values([
                { title: 'one', owner_id: null, status: 'open' },
                { title: 'two', owner_id: 7, status: 'open' },
                { title: 'three', owner_id: null, status: 'closed' },
              ])
              .returning('id')
              .execute()
            await t.db
              .insertInto('comments')
              .values(docs.map((d, i) => ({ document_id: d.id, body: `comment ${i}` })))
              .execute()
          })
          await shard.withTenant('other', (t) => t.db.insertInto('documents').values({ title: 'not src' }).execute())
          const filesBefore = storedTree(dir, { folders: false })
          const quiet = await exportTo('src', path.join(out, 'quiet.sqlite3'))
          const live = await shard.withTenant('src', async (t) => ({
            documents: await t.db.selectFrom('documents').selectAll().orderBy('id').execute(),
            comments: await t.db.selectFrom('comments').selectAll().orderBy('id').execute(),
          }))
          assert.equal(await countInCopy(quiet), 3)
          assert.deepEqual(
            {
              documents: await support.rowsOfCopy(quiet, 'select * from documents order by id'),
              comments: await support.rowsOfCopy(quiet, 'select * from comments order by id'),
            },
            live,
          )
          assert.deepEqual(storedTree(dir, { folders: false }), filesBefore, 'export left files in the storage')
          // An export abandoned after its first chunk stops and leaves nothing behind either.
          for await (const chunk of shard.tenants.export('src')) {
            assert.ok(chunk.byteLength > 0)
            break
          }
          assert.deepEqual(storedTree(dir, { folders: false }), filesBefore, 'an abandoned export left files behind')
          await shard.withTenant('src', (t) => t.db.deleteFrom('comments').execute())
          await shard.withTenant('src', (t) => t.db.deleteFrom('documents').execute())
          // 2. A scope holds an open transaction with an uncommitted row: the copy has only committed rows.
          await shard.withTenant('src', (t) => t.db.insertInto('documents').values({ title: 'committed' }).execute())
          await holdingOpenTransaction(shard, 'src', () => exportTo('src', path.join(out, 'held.sqlite3')))
          assert.equal(await countInCopy(path.join(out, 'held.sqlite3')), 1, 'the export saw an uncommitted row')
          await shard.withTenant('src', (t) => t.db.deleteFrom('documents').execute())
          // 3. Copies streamed while batches keep committing each hold one committed state.
          const writer = await startBatchWriter(shard, 'src')
          const during: number[] = []
          for (let i = 0; i < 3; i++) {
            const startedAt = writer.batches()
            await exportTo('src', path.join(out, `copy-${i}.sqlite3`))
            during.push(writer.batches() - startedAt)
          }
          const committed = await writer.stop()
          assert.ok(
            during.some((n) => n > 0),
            'no batch committed while any export ran: the test proves nothing',
          )
          for (let i = 0; i < 3; i++) {
            const count = await countInCopy(path.join(out, `copy-${i}.sqlite3`))
            assert.ok(
              committed.has(count),
              `export ${i} has ${count} rows: not a committed state (torn or uncommitted)`,
            )
            assert.ok(count > writer.initial, 'the export should include batches committed before it began')
          }
          // 4. Apex exports the same way, also while an apex transaction is open.
          await shard.apex.insertInto('accounts').values({ email: 'x@y.z' }).execute()
          const apexCopy = path.join(out, 'apex.sqlite3')
          await holdingOpenApexTransaction(shard, () => exportTo('apex', apexCopy))
          assert.deepEqual(await support.rowsOfCopy(apexCopy, 'select email from accounts'), [{ email: 'x@y.z' }])
          // 5. A tenant that does not exist (or no longer does): TenantNotFoundError, nothing streamed.
          assertError(
            await caught(() => shard.tenants.export('ghost')),
            TenantNotFoundError,
            'export of a missing tenant',
          )
          assert.equal(await shard.tenants.destroy('other'), true)
          assertError(
            await caught(() => shard.tenants.export('other')),
            TenantNotFoundError,
            'export of a destroyed tenant',
          )
          await shard.close()
        })
      }

      it('fork taken while another scope keeps writing is a consistent copy', { timeout: 30_000 }, async () => {
        const { shard } = await open({ storage: { unsynced: true } })
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

    describe('lifecycle capabilities', () => {
      it('rename: the rows move to the new id at once, the old id is gone, and a taken id gives TenantExistsError', {
        needs: ['rename'],
      }, async () => {
        const { shard, dir } = await open()
        await shard.tenants.create('before-name')
        await shard.tenants.create('taken')
        await shard.withTenant('before-name', (t) => t.db.insertInto('documents').values({ title: 'kept' }).execute())
        await shard.tenants.rename('before-name', 'after-name')
        assert.equal(await shard.tenants.exists('before-name'), false)
        assert.equal(await shard.tenants.exists('after-name'), true)
        assert.deepEqual(await titlesIn(shard, 'after-name'), ['kept'])
        assertError(await caught(() => shard.withTenant('before-name', () => 1)), TenantNotFoundError, 'old id')
        assert.deepEqual(await listed(shard), ['after-name', 'taken'])
        assert.deepEqual(storedMentioning(dir, 'before-name') ?? [], [], 'rename left files under the old id')
        const taken = await caught(() => shard.tenants.rename('after-name', 'taken'))
        assertError(taken, TenantExistsError, 'rename onto a taken id')
        assert.deepEqual(await titlesIn(shard, 'after-name'), ['kept'])
        assert.deepEqual(await titlesIn(shard, 'taken'), [])
        assertError(
          await caught(() => shard.tenants.rename('ghost', 'x')),
          TenantNotFoundError,
          'rename of a missing tenant',
        )
        await shard.close()
      })

      it('archive and restore: scopes get TenantArchivedError until restore brings the rows back', {
        needs: ['archive'],
      }, async () => {
        const { shard } = await open()
        await shard.tenants.create('shelved')
        await shard.tenants.create('active')
        await shard.withTenant('shelved', (t) => t.db.insertInto('documents').values({ title: 'kept' }).execute())
        const archived = await shard.tenants.archive('shelved')
        assert.equal(archived.id, 'shelved')
        assert.equal(archived.version, Object.keys(tenantMigrations).at(-1))
        assertError(
          await caught(() => shard.withTenant('shelved', () => 1)),
          TenantArchivedError,
          'scope of an archived tenant',
        )
        assert.deepEqual(await listed(shard), ['active'])
        const shelf: string[] = []
        for await (const entry of shard.tenants.archived()) shelf.push(entry.id)
        assert.deepEqual(shelf, ['shelved'])
        await shard.tenants.restore('shelved')
        assert.deepEqual(await titlesIn(shard, 'shelved'), ['kept'])
        assert.deepEqual(await listed(shard), ['active', 'shelved'])
        for await (const entry of shard.tenants.archived()) assert.fail(`still archived: ${entry.id}`)
        await shard.close()
      })

      const LIFECYCLE: readonly (readonly [Capability, string, (shard: Shard) => unknown])[] = [
        [
          'backupToPath',
          'tenants.backup',
          (shard) => shard.tenants.backup('acme', path.join(tempDir(), 'copy.sqlite3')),
        ],
        ['exportStream', 'tenants.export', (shard) => shard.tenants.export('acme')],
        ['rename', 'tenants.rename', (shard) => shard.tenants.rename('acme', 'renamed')],
        ['archive', 'tenants.archive', (shard) => shard.tenants.archive('acme')],
        ['archive', 'tenants.restore', (shard) => shard.tenants.restore('acme')],
        ['archive', 'tenants.archived', (shard) => shard.tenants.archived()],
        ['doctor', 'tenants.doctor', (shard) => shard.tenants.doctor()],
        ['layoutMigration', 'tenants.migrateLayout', (shard) => shard.tenants.migrateLayout()],
      ]
      const lacking = LIFECYCLE.filter(([capability]) => !capabilities[capability])
      it('lifecycle calls of capabilities the adapter lacks are refused with InvalidOptionsError naming the capability, changing nothing', {
        skipBecause: lacking.length === 0 && `the ${name} adapter declares every lifecycle capability`,
      }, async () => {
        const { shard, dir } = await open()
        await shard.tenants.create('acme')
        await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'kept' }).execute())
        const before = storedTree(dir)
        const wrong: string[] = []
        for (const [capability, what, call] of lacking) {
          const error = await caught(() => call(shard)).catch((e: Error) => e)
          if (!(error instanceof InvalidOptionsError) || !error.message.includes(capability)) {
            wrong.push(`${what}: ${String(error)}`)
          }
        }
        assert.deepEqual(wrong, [])
        assert.deepEqual(storedTree(dir), before)
        assert.deepEqual(await titlesIn(shard, 'acme'), ['kept'])
        assert.deepEqual(await listed(shard), ['acme'])
        await shard.close()
      })
    })

    describe('storage changed behind the adapter’s back', () => {
      it('a damaged tenant database gives StorageError naming the tenant; the other tenants keep working', {}, async () => {
        const { shard, dir } = await open()
        for (const id of ['fine', 'broken']) {
          await shard.tenants.create(id)
          await shard.withTenant(id, (t) =>
            t.db
              .insertInto('documents')
              .values({ title: `${id} doc` })
              .execute(),
          )
        }
        await shard.close()
        await support.corrupt(dir, 'broken')
        const { shard: reopened } = await open({ dir })
        for (let i = 0; i < 2; i++) {
          const error = await caught(() =>
            reopened.withTenant('broken', (t) => t.db.selectFrom('documents').selectAll().execute()),
          )
          assertError(error, StorageError, `scope of a damaged tenant (attempt ${i + 1})`)
          assert.equal((error as StorageError).code, 'STORAGE_FAILED')
          assert.equal((error as StorageError).tenantId, 'broken')
          assert.match((error as Error).message, /broken/)
        }
        assert.deepEqual(await titlesIn(reopened, 'fine'), ['fine doc'])
        assert.equal(reopened.stats().pinned, 0)
        await reopened.close()
      })

      it('a tenant removed behind the adapter’s back is gone: not listed, scopes get TenantNotFoundError, the id can be created again', {}, async () => {
        const { shard, dir } = await open()
        for (const id of ['stays', 'vanished']) {
          await shard.tenants.create(id)
          await shard.withTenant(id, (t) =>
            t.db
              .insertInto('documents')
              .values({ title: `${id} doc` })
              .execute(),
          )
        }
        await shard.close()
        await support.remove(dir, 'vanished')
        const { shard: reopened } = await open({ dir })
        assert.equal(await reopened.tenants.exists('vanished'), false)
        assert.deepEqual(await listed(reopened), ['stays'])
        assertError(await caught(() => reopened.withTenant('vanished', () => 1)), TenantNotFoundError, 'scope')
        assert.equal(await reopened.tenants.destroy('vanished'), false)
        await reopened.tenants.create('vanished')
        assert.deepEqual(await titlesIn(reopened, 'vanished'), [])
        assert.deepEqual(await titlesIn(reopened, 'stays'), ['stays doc'])
        await reopened.close()
      })
    })

    describe('synchronous prepared reads', () => {
      it('executeSync reads the current tenant’s rows, its own transaction’s, and (beside another scope’s open transaction) the committed ones', {
        needs: ['syncReads'],
      }, async () => {
        const { shard } = await open()
        for (const id of ['left', 'right']) {
          await shard.tenants.create(id)
          await shard.withTenant(id, (t) =>
            t.db
              .insertInto('documents')
              .values({ title: `${id} row` })
              .execute(),
          )
        }
        const titles = shard.prepare((db) => db.selectFrom('documents').select('title').orderBy('id'))
        assertError(await caught(() => titles.executeSync()), NoTenantError, 'executeSync outside a scope')
        for (const id of ['left', 'right']) {
          await shard.withTenant(id, async () => {
            assert.deepEqual(titles.executeSync(), [{ title: `${id} row` }])
            assert.deepEqual(titles.executeTakeFirstSync(), { title: `${id} row` })
          })
        }
        await shard.withTenant('left', async () => {
          await shard.withTenant('right', async () => assert.deepEqual(titles.executeSync(), [{ title: 'right row' }]))
          assert.deepEqual(titles.executeSync(), [{ title: 'left row' }])
        })
        // Inside its own transaction it sees the uncommitted row; another scope reads the committed state without waiting.
        await holdingOpenTransaction(shard, 'left', async () => {
          const seen = await shard.withTenant('left', async () => titles.executeSync())
          assert.deepEqual(seen, [{ title: 'left row' }])
          assert.deepEqual(await shard.withTenant('right', async () => titles.executeSync()), [{ title: 'right row' }])
        })
        await shard.withTenant('left', (t) =>
          t.transaction(async (trx) => {
            await trx.db.insertInto('documents').values({ title: 'left tx' }).execute()
            assert.deepEqual(titles.executeSync(), [{ title: 'left row' }, { title: 'left tx' }])
          }),
        )
        assert.deepEqual(await titlesIn(shard, 'left'), ['left row', 'left tx'])
        await shard.close()
      })

      it('executeSync without synchronous reads is refused with InvalidOptionsError', {
        lacks: ['syncReads'],
      }, async () => {
        const { shard } = await open()
        await shard.tenants.create('acme')
        const titles = shard.prepare((db) => db.selectFrom('documents').select('title'))
        await shard.withTenant('acme', async () => {
          assertError(await caught(() => titles.executeSync()), InvalidOptionsError, 'executeSync')
          assert.deepEqual(await titles.execute(), [])
        })
        await shard.close()
      })
    })

    describe('statement guard', () => {
      /** A shard with apex seeded (three accounts, two plans) and tenants acme and beta, each with four documents and two comments. */
      const guardWorld = async (opts: TargetShardOptions = {}) => {
        const { shard, dir } = await open({ ...opts, storage: { unsynced: true } })
        await shard.apex.insertInto('accounts').values(APEX_ACCOUNTS).execute()
        await shard.apex.insertInto('plans').values(APEX_PLANS).execute()
        for (const id of ['acme', 'beta']) {
          await shard.tenants.create(id)
          await shard.withTenant(id, async (t) => {
            await t.db.insertInto('documents').values(seededDocuments(id)).execute()
            await t.db
              .insertInto('comments')
              .values([
                { id: 1, document_id: 1, body: `${id} first` },
                { id: 2, document_id: 2, body: `${id} second` },
              ])
              .execute()
          })
        }
        const outside = tempDir('shardines-guard-outside-')
        /** What a refused statement must leave as it was, read behind Shardines' back. */
        const stored = async () => {
          const out: Record<string, unknown> = {}
          for (const db of ['apex', 'acme', 'beta']) {
            out[`${db} schema`] = await support.rawRows(
              dir,
              db,
              'select type, name, tbl_name, sql from sqlite_master order by type, name',
            )
            out[`${db} user_version`] = await support.rawRows(dir, db, 'pragma user_version')
          }
          out.accounts = await support.rawRows(dir, 'apex', 'select * from accounts order by id')
          out.plans = await support.rawRows(dir, 'apex', 'select * from plans order by id')
          for (const id of ['acme', 'beta']) {
            out[`${id} documents`] = await support.rawRows(dir, id, 'select * from documents order by id')
            out[`${id} comments`] = await support.rawRows(dir, id, 'select * from comments order by id')
          }
          return out
        }
        const seeded = await stored()
        assert.deepEqual(seeded.accounts, APEX_ACCOUNTS, 'rawRows reads what shard.apex wrote')
        assert.deepEqual(seeded['acme documents'], seededDocuments('acme'), 'rawRows reads what the acme scope wrote')
        /** Runs `fn` in acme's scope, with apex attached where the adapter can attach. */
        const inAcme = (fn: (t: Scope) => Promise<unknown>) => () =>
          shard.withTenant('acme', async (t) => {
            if (capabilities.attach) await t.attach('apex')
            return fn(t)
          })
        return { shard, dir, outside, stored, seeded, inAcme }
      }
      const roa: Refusal = { error: ReadOnlyAttachmentError, schema: 'apex', tenantId: 'acme' }
      /** `NO_TENANT`: the error names no tenant (shard.apex, withTenants). */
      const refused = (refusal: StatementRefusal, tenantId: string | typeof NO_TENANT = 'acme'): Refusal => ({
        error: StatementRefusedError,
        kind: refusal,
        tenantId: tenantId === NO_TENANT ? undefined : tenantId,
      })

      it('writes and DDL aimed at apex from a tenant scope (raw SQL, sql templates, builder targets, shard.db(), a transaction) are refused and change nothing', {
        needs: ['attach'],
      }, async () => {
        const w = await guardWorld()
        const raw = (text: string) => w.inAcme((t) => sql.raw(text).execute(t.db))
        const failures = await attempts([
          ['sql.raw insert into apex', raw("insert into apex.accounts (email) values ('evil@x.test')"), roa],
          [
            'sql.raw upsert into apex',
            raw(
              "insert into apex.accounts (id, email) values (1, 'evil@x.test') on conflict (id) do update set email = excluded.email",
            ),
            roa,
          ],
          ['sql.raw update apex', raw("update apex.accounts set plan = 'enterprise'"), roa],
          [
            'sql.raw delete from apex driven by tenant rows',
            raw('delete from apex.accounts where id in (select owner_id from main.documents)'),
            roa,
          ],
          [
            'sql.raw insert … select into apex',
            raw('insert into apex.plans (id, name) select title, status from main.documents'),
            roa,
          ],
          ['sql.raw quoted "apex"."accounts"', raw(`update "apex"."accounts" set "plan" = 'x'`), roa],
          ['sql.raw bracket-quoted, mixed case', raw('DELETE FROM [APEX].Accounts'), roa],
          ['sql.raw create table in apex', raw('create table apex.evil (x)'), roa],
          ['sql.raw drop table in apex', raw('drop table apex.plans'), roa],
          ['sql.raw alter table in apex', raw('alter table apex.accounts add column evil text'), roa],
          [
            'sql template with a bound parameter',
            w.inAcme((t) => sql`insert into apex.accounts (email) values (${'evil@x.test'})`.execute(t.db)),
            roa,
          ],
          [
            'builder insertInto("apex.accounts")',
            w.inAcme((t) =>
              (t.db as Kysely<any>).insertInto('apex.accounts').values({ email: 'evil@x.test' }).execute(),
            ),
            roa,
          ],
          [
            'builder deleteFrom(sql.table("apex.accounts"))',
            w.inAcme((t) => (t.db as Kysely<any>).deleteFrom(sql.table('apex.accounts') as never).execute()),
            roa,
          ],
          ['shard.db() delete from apex', w.inAcme(() => sql`delete from apex.accounts`.execute(w.shard.db())), roa],
          [
            'builder update of apex inside t.transaction',
            w.inAcme((t) =>
              t.transaction((trx) =>
                (trx.db as Kysely<any>).updateTable('apex.plans').set({ name: 'Hacked' }).execute(),
              ),
            ),
            roa,
          ],
        ])
        assert.deepEqual(failures, [])
        assert.deepEqual(await w.stored(), w.seeded, 'a refused statement changed what is stored')
        // Apex is still readable from the tenant, and writable through shard.apex.
        const seen = await w.shard.withTenant('acme', (t) =>
          t.db.selectFrom('apex.accounts').selectAll().orderBy('id').execute(),
        )
        assert.deepEqual(seen, APEX_ACCOUNTS)
        await w.shard.close()
      })

      it('ATTACH, DETACH and VACUUM INTO are refused in tenant scopes and on shard.apex, and write no file', {}, async () => {
        const w = await guardWorld()
        const file = (n: string) => path.join(w.outside, n)
        const databases = () =>
          w.shard.withTenant('acme', async (t) =>
            (await sql<{ name: string }>`pragma database_list`.execute(t.db)).rows.map((r) => r.name).sort(),
          )
        // The canonical state: apex attached on acme's connection where the adapter attaches.
        await w.inAcme(async () => undefined)()
        const databasesBefore = await databases()
        const failures = await attempts([
          [
            'attach a new file (bound path)',
            w.inAcme((t) => sql`attach database ${file('evil.sqlite3')} as evil`.execute(t.db)),
            refused('attach'),
          ],
          [
            'ATTACH with comments, upper case and a literal path',
            w.inAcme((t) =>
              sql.raw(`/* hi */ ATTACH DATABASE '${file('literal.sqlite3')}' AS "x" -- bye`).execute(t.db),
            ),
            refused('attach'),
          ],
          [
            'attach an in-memory database',
            w.inAcme((t) => sql`attach database ':memory:' as mem`.execute(t.db)),
            refused('attach'),
          ],
          [
            'attach as main',
            w.inAcme((t) => sql`attach database ${file('main.sqlite3')} as main`.execute(t.db)),
            refused('attach'),
          ],
          [
            'attach through shard.db()',
            w.inAcme(() => sql`attach database ${file('db.sqlite3')} as evil`.execute(w.shard.db())),
            refused('attach'),
          ],
          [
            'attach inside t.transaction',
            w.inAcme((t) =>
              t.transaction((trx) => sql`attach database ${file('trx.sqlite3')} as evil`.execute(trx.db)),
            ),
            refused('attach'),
          ],
          ['detach apex', w.inAcme((t) => sql.raw('detach apex').execute(t.db)), refused('detach')],
          [
            'DETACH DATABASE "apex"',
            w.inAcme((t) => sql.raw('DETACH DATABASE "apex"').execute(t.db)),
            refused('detach'),
          ],
          [
            'vacuum into a file',
            w.inAcme((t) => sql`vacuum into ${file('vacuum.sqlite3')}`.execute(t.db)),
            refused('vacuum-into'),
          ],
          [
            'vacuum main into a literal path',
            w.inAcme((t) => sql.raw(`vacuum main into '${file('vacuum-main.sqlite3')}'`).execute(t.db)),
            refused('vacuum-into'),
          ],
          [
            'shard.apex: attach a file',
            () => sql`attach database ${file('apex-attach.sqlite3')} as a`.execute(w.shard.apex),
            refused('attach', NO_TENANT),
          ],
          [
            'shard.apex: vacuum into a file',
            () => sql`vacuum into ${file('apex-copy.sqlite3')}`.execute(w.shard.apex),
            refused('vacuum-into', NO_TENANT),
          ],
        ])
        assert.deepEqual(failures, [])
        assert.deepEqual(snapshotTree(w.outside), [], 'a refused statement wrote a file')
        assert.deepEqual(await w.stored(), w.seeded, 'a refused statement changed what is stored')
        assert.deepEqual(await databases(), databasesBefore, 'a fresh scope sees other databases than before')
        if (capabilities.attach) {
          // apex is still attached and readable where it was (the detach was refused, not run).
          const seen = await w.inAcme((t) => t.db.selectFrom('apex.accounts').selectAll().orderBy('id').execute())()
          assert.deepEqual(seen, APEX_ACCOUNTS)
        }
        await w.shard.close()
      })

      it('a temp trigger that would write apex is refused when an innocent statement fires it, and is gone for the next scope', {
        needs: ['attach'],
      }, async () => {
        const w = await guardWorld()
        // Some engines (libSQL's SQLite 3.45) refuse qualified table names in a trigger's body
        // when the trigger is created: the attack cannot even be set up there. Then the create
        // itself must fail with the engine's refusal, and nothing stored may change.
        const engineRefusesQualifiedTriggers = await w
          .inAcme(async (t) => {
            await sql`create temp trigger probe after insert on main.documents begin delete from main.comments where 0; end`.execute(
              t.db,
            )
          })()
          .then(
            () => false,
            (error: unknown) => /qualified table names are not allowed/.test(String((error as Error).message)),
          )
        if (engineRefusesQualifiedTriggers) {
          for (const text of [
            "create temp trigger copy_out after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end",
            'create temp trigger wipe after update on main.documents begin delete from apex.accounts; end',
          ]) {
            await assert.rejects(
              w.inAcme((t) => sql.raw(text).execute(t.db))(),
              /qualified table names are not allowed/,
              text,
            )
          }
          assert.deepEqual(await w.stored(), w.seeded, 'a refused statement changed what is stored')
          await w.shard.close()
          return
        }
        const failures = await attempts([
          [
            'builder insert after a temp trigger copying titles into apex.plans',
            w.inAcme(async (t) => {
              await sql`create temp trigger copy_out after insert on main.documents begin insert into apex.plans (id, name) values (new.title, 'stolen'); end`.execute(
                t.db,
              )
              await t.db.insertInto('documents').values({ title: 'innocent' }).execute()
            }),
            roa,
          ],
          [
            'model update after a temp trigger wiping apex.accounts',
            w.inAcme(async (t) => {
              await sql`create temp trigger wipe after update on main.documents begin delete from apex.accounts; end`.execute(
                t.db,
              )
              await t.models.Document.update(1, { title: 'innocent' })
            }),
            roa,
          ],
        ])
        assert.deepEqual(failures, [])
        assert.deepEqual(await w.stored(), w.seeded, 'a refused statement changed what is stored')
        // The next scope starts clean: its innocent writes succeed and apex is untouched.
        await w.inAcme(async (t) => {
          const row = await t.db
            .insertInto('documents')
            .values({ title: 'next scope' })
            .returning('id')
            .executeTakeFirstOrThrow()
          await t.models.Document.update(row.id, { title: 'next scope, updated' })
          await t.db.deleteFrom('documents').where('id', '=', row.id).execute()
        })()
        assert.deepEqual(await w.stored(), w.seeded)
        await w.shard.close()
      })

      it('pragmas that change a connection are refused (tenant scopes, shard.db(), transactions, shard.apex) and change nothing', {}, async () => {
        const w = await guardWorld()
        const raw = (text: string) => w.inAcme((t) => sql.raw(text).execute(t.db))
        const failures = await attempts([
          ['pragma query_only = 1', raw('pragma query_only = 1'), refused('pragma')],
          ['pragma foreign_keys = off', raw('pragma foreign_keys = off'), refused('pragma')],
          ['pragma busy_timeout = 0', raw('pragma busy_timeout = 0'), refused('pragma')],
          ['pragma user_version = 99', raw('pragma user_version = 99'), refused('pragma')],
          ['pragma case_sensitive_like = 1', raw('pragma case_sensitive_like = 1'), refused('pragma')],
          ['pragma writable_schema = on', raw('pragma writable_schema = on'), refused('pragma')],
          ['pragma locking_mode = exclusive', raw('pragma locking_mode = exclusive'), refused('pragma')],
          ['pragma journal_mode = wal', raw('pragma journal_mode = wal'), refused('pragma')],
          ['/* c */ PRAGMA "query_only" = 1', raw('/* c */ PRAGMA "query_only" = 1'), refused('pragma')],
          ['pragma query_only(1)', raw('pragma query_only(1)'), refused('pragma')],
          [
            'shard.db(): pragma foreign_keys = off',
            w.inAcme(() => sql`pragma foreign_keys = off`.execute(w.shard.db())),
            refused('pragma'),
          ],
          [
            'inside t.transaction: pragma defer_foreign_keys = on',
            w.inAcme((t) => t.transaction((trx) => sql`pragma defer_foreign_keys = on`.execute(trx.db))),
            refused('pragma'),
          ],
          [
            'shard.apex: pragma journal_mode = delete',
            () => sql`pragma journal_mode = delete`.execute(w.shard.apex),
            refused('pragma', NO_TENANT),
          ],
          [
            'shard.apex: pragma query_only = 1',
            () => sql`pragma query_only = 1`.execute(w.shard.apex),
            refused('pragma', NO_TENANT),
          ],
        ])
        assert.deepEqual(failures, [])
        assert.deepEqual(await w.stored(), w.seeded, 'a refused pragma changed what is stored')
        // A fresh scope's connection is as it was: writable, foreign keys on, LIKE case-insensitive.
        await w.shard.withTenant('acme', async (t) => {
          assert.deepEqual((await sql`pragma query_only`.execute(t.db)).rows, [{ query_only: 0 }])
          assert.deepEqual((await sql`pragma foreign_keys`.execute(t.db)).rows, [{ foreign_keys: 1 }])
          assert.deepEqual((await sql`select 'a' like 'A' as ci`.execute(t.db)).rows, [{ ci: 1 }])
          const row = await t.db
            .insertInto('documents')
            .values({ title: 'after' })
            .returning('id')
            .executeTakeFirstOrThrow()
          await t.db.deleteFrom('documents').where('id', '=', row.id).execute()
        })
        await w.shard.apex.insertInto('plans').values({ id: 'team', name: 'Team' }).execute()
        await w.shard.apex.deleteFrom('plans').where('id', '=', 'team').execute()
        assert.deepEqual(await w.stored(), w.seeded)
        await w.shard.close()
      })

      it('two tenants never see each other’s rows: 200 concurrent scopes across 10 tenants through every entry point, with random awaits; what is stored agrees', {
        timeout: 60_000,
      }, async () => {
        const { shard, dir } = await open({ storage: { maxOpen: 4, unsynced: true } })
        const random = seededRandom(20260417)
        const ids = Array.from({ length: 10 }, (_, i) => `iso${i}`)
        for (const id of ids) await shard.tenants.create(id)
        const owner = await shard.models.Account.create({ email: 'owner@x.test' })
        const written = new Map<string, string[]>(ids.map((id) => [id, []]))
        const prepared = shard.prepare((db) => db.selectFrom('documents').select('title').orderBy('id'))
        const writers: readonly (readonly [string, (t: Scope, title: string) => Promise<unknown>])[] = [
          ['builder', (t, title) => t.db.insertInto('documents').values({ title, owner_id: owner.id }).execute()],
          [
            'sql template',
            (t, title) => sql`insert into documents (title, owner_id) values (${title}, ${owner.id})`.execute(t.db),
          ],
          ['model', (t, title) => t.models.Document.create({ title, owner_id: owner.id })],
          [
            'shard.db()',
            (_t, title) => shard.db().insertInto('documents').values({ title, owner_id: owner.id }).execute(),
          ],
          [
            'transaction',
            (t, title) =>
              t.transaction(async (trx) => {
                await trx.db.insertInto('documents').values({ title, owner_id: owner.id }).execute()
                await randomPause(random)
              }),
          ],
        ]
        const readers: (readonly [string, (t: Scope) => Promise<string[]>])[] = [
          ['builder', async (t) => (await t.db.selectFrom('documents').select('title').execute()).map((r) => r.title)],
          [
            'sql.raw',
            async (t) =>
              (await sql.raw<{ title: string }>('select title from documents').execute(t.db)).rows.map((r) => r.title),
          ],
          ['model', async (t) => (await t.models.Document.all()).map((r) => r.title)],
          ['prepared', async () => (await prepared.execute()).map((r) => r.title)],
          [
            'shard.db()',
            async () => (await shard.db().selectFrom('documents').select('title').execute()).map((r) => r.title),
          ],
          [
            'stream',
            async (t) => {
              const titles: string[] = []
              for await (const row of t.db.selectFrom('documents').select('title').stream()) titles.push(row.title)
              return titles
            },
          ],
          [
            'model include of the apex owner',
            async (t) =>
              (await t.models.Document.include('owner').all()).map((r) => {
                assert.equal(r.owner?.email, 'owner@x.test', `${r.title}: owner`)
                return r.title
              }),
          ],
        ]
        if (capabilities.attach) {
          readers.push([
            'builder join with apex',
            async (t) =>
              (
                await t.db
                  .selectFrom('documents as d')
                  .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
                  .select(['d.title', 'a.email'])
                  .execute()
              ).map((r) => r.title),
          ])
        }
        if (capabilities.syncReads)
          readers.push(['prepared executeSync', async () => prepared.executeSync().map((r) => r.title)])
        await runInLanes(200, 40, async (n) => {
          const id = ids[Math.floor(random() * ids.length)]!
          const [how, write] = writers[n % writers.length]!
          await shard.withTenant(id, async (t) => {
            await randomPause(random)
            const title = `${id}:${n}:${how}`
            await write(t, title)
            written.get(id)!.push(title)
            for (const [what, read] of readers) {
              await randomPause(random)
              assert.equal(shard.currentTenant(), id, `currentTenant() before the ${what} read`)
              const titles = await read(t)
              for (const seen of titles) assert.ok(seen.startsWith(`${id}:`), `${what}: scope ${id} saw "${seen}"`)
              assert.ok(titles.includes(title), `${what}: scope ${id} does not see its own row ${title}`)
            }
          })
        })
        for (const id of ids) {
          const stored = await support.rawRows(dir, id, 'select title from documents')
          assert.deepEqual(stored.map((r) => r.title).sort(), [...written.get(id)!].sort(), `what ${id} stores`)
        }
        assert.deepEqual(await support.rawRows(dir, 'apex', 'select email from accounts'), [{ email: 'owner@x.test' }])
        await shard.close()
      })

      it('a model include from a tenanted model to an apex model returns the apex rows (one statement through ATTACH, separate apex reads without it)', {}, async () => {
        const events: ShardinesLogEvent[] = []
        const w = await guardWorld({ log: (event) => (event.level === 'query' ? events.push(event) : undefined) })
        const owners = (rows: readonly { id: number; owner: unknown }[]) => rows.map((r) => [r.id, r.owner])
        const expected = [
          [1, APEX_ACCOUNTS[0]],
          [2, APEX_ACCOUNTS[1]],
          [3, null],
          [4, null],
        ]
        await w.shard.withTenant('acme', async (t) => {
          events.length = 0
          assert.deepEqual(owners(await t.models.Document.orderBy('id').include('owner').all()), expected)
          const onTenant = events.filter((e) => e.tenantId === 'acme').map((e) => e.query.sql)
          if (capabilities.attach) {
            assert.equal(onTenant.length, 1, onTenant.join('\n'))
            assert.match(onTenant[0]!, /"apex"\."accounts"/)
          } else {
            assert.deepEqual(
              onTenant.filter((s) => /apex/i.test(s)),
              [],
              'a tenant statement names apex',
            )
            assert.ok(
              events.some((e) => e.tenantId === 'apex' && /"accounts"/.test(e.query.sql)),
              'the owners were not read from apex',
            )
          }
          const spec = await t.models.Document.where('title', '=', 'acme spec').include('owner', 'comments').first()
          assert.deepEqual(spec?.owner, APEX_ACCOUNTS[1])
          assert.deepEqual(
            spec?.comments.map((c) => c.body),
            ['acme second'],
          )
          const ghost = await t.models.Document.where('title', '=', 'acme ghost').include('owner').first()
          assert.equal(ghost?.owner, null)
        })
        // Inside a transaction of another tenant, nested in acme's scope: that tenant's rows, the same apex owners.
        await w.shard.withTenant('acme', () =>
          w.shard.withTenant('beta', (t) =>
            t.transaction(async (trx) => {
              const rows = await trx.models.Document.orderBy('id').include('owner').all()
              assert.deepEqual(owners(rows), expected)
              assert.deepEqual(
                rows.map((r) => r.title),
                seededDocuments('beta').map((d) => d.title),
              )
            }),
          ),
        )
        await w.shard.close()
      })

      it('without attach: apex.<table> in a tenant scope, t.attach and withTenants get CrossDatabaseQueryError, and apex stays reachable through shard.apex', {
        lacks: ['attach'],
      }, async () => {
        const w = await guardWorld()
        const joined = w.shard.prepare((db) =>
          db
            .selectFrom('documents as d')
            .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
            .select(['d.title', 'a.email']),
        )
        const cross = (tenantId: string | typeof NO_TENANT = 'acme'): Refusal => ({
          error: CrossDatabaseQueryError,
          tenantId: tenantId === NO_TENANT ? undefined : tenantId,
        })
        const inAcme = (fn: (t: Scope) => Promise<unknown>) => () => w.shard.withTenant('acme', fn)
        const failures = await attempts([
          [
            'builder selectFrom("apex.accounts")',
            inAcme((t) => t.db.selectFrom('apex.accounts').selectAll().execute()),
            cross(),
          ],
          [
            'builder join with apex.accounts',
            inAcme((t) =>
              t.db
                .selectFrom('documents as d')
                .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
                .select(['d.title', 'a.email'])
                .execute(),
            ),
            cross(),
          ],
          [
            'builder subquery of apex.accounts',
            inAcme((t) =>
              t.db
                .selectFrom('documents')
                .select('title')
                .where('owner_id', 'in', (eb) => eb.selectFrom('apex.accounts').select('id'))
                .execute(),
            ),
            cross(),
          ],
          [
            'shard.db() naming apex.plans',
            inAcme(() => w.shard.db().selectFrom('apex.plans').selectAll().execute()),
            cross(),
          ],
          ['a prepared query joining apex', inAcme(() => joined.execute()), cross()],
          ['t.attach("apex")', inAcme((t) => t.attach('apex')), cross()],
          ['withTenants', () => w.shard.withTenants(['acme', 'beta'], () => 'ran'), cross(NO_TENANT)],
        ])
        assert.deepEqual(failures, [])
        const error = await caught(inAcme((t) => t.db.selectFrom('apex.accounts').selectAll().execute()))
        assert.equal((error as CrossDatabaseQueryError).code, 'CROSS_DATABASE_QUERY')
        assert.equal((error as CrossDatabaseQueryError).storageKind, kind)
        assert.deepEqual(await w.shard.apex.selectFrom('accounts').selectAll().orderBy('id').execute(), APEX_ACCOUNTS)
        assert.deepEqual(
          await w.shard.withTenant('acme', () => w.shard.models.Plan.query().selectAll().orderBy('id').execute()),
          APEX_PLANS,
        )
        assert.deepEqual(await w.stored(), w.seeded)
        await w.shard.close()
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
          'tenants.export': () => shard.tenants.export('acme'),
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
        assert.deepEqual(storedMentioning(dir, 'new') ?? [], [])
        assert.deepEqual(storedMentioning(dir, 'copy') ?? [], [])
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

/**
 * Runs `copy` while an apex transaction holds one uncommitted account, then
 * lets that transaction commit.
 */
async function holdingOpenApexTransaction(shard: Shard, copy: () => Promise<unknown>): Promise<void> {
  const release = signal()
  const inTx = signal()
  const apexTx = shard.apex.transaction().execute(async (trx) => {
    await trx.insertInto('accounts').values({ email: 'uncommitted@y.z' }).execute()
    inTx.fire()
    await release.promise
  })
  await inTx.promise
  try {
    await copy()
  } finally {
    release.fire()
    await apexTx
  }
}

/** Where a refusal names no tenant (a default parameter would turn `undefined` into its default). */
const NO_TENANT = null

/** The guard world's apex accounts, as `shard.apex` returns them. */
const APEX_ACCOUNTS = [
  { id: 1, email: 'ann@x.test', plan: 'pro' },
  { id: 2, email: 'bob@x.test', plan: 'free' },
  { id: 3, email: 'cy@x.test', plan: 'team' },
]

const APEX_PLANS = [
  { id: 'free', name: 'Free' },
  { id: 'pro', name: 'Pro' },
]

/** The four documents each guard-world tenant starts with (one owned by a missing account). */
function seededDocuments(id: string) {
  return [
    { id: 1, title: `${id} plan`, owner_id: 1, status: 'open' },
    { id: 2, title: `${id} spec`, owner_id: 2, status: 'closed' },
    { id: 3, title: `${id} orphan`, owner_id: null, status: 'open' },
    { id: 4, title: `${id} ghost`, owner_id: 9, status: 'open' },
  ]
}

/** A typed refusal a hostile statement must get. */
interface Refusal {
  readonly error: abstract new (...args: never[]) => ShardinesError
  /** For StatementRefusedError. */
  readonly kind?: StatementRefusal
  /** For ReadOnlyAttachmentError: the attached schema written. */
  readonly schema?: string
  /** The tenant the error names (undefined outside a withTenant scope). */
  readonly tenantId: string | undefined
}

/**
 * Runs each attempt and returns what went wrong: an attempt that ran instead
 * of being refused, or was refused with another error than expected.
 */
async function attempts(
  cases: readonly (readonly [label: string, attempt: () => unknown, expected: Refusal])[],
): Promise<string[]> {
  const failures: string[] = []
  for (const [label, attempt, expected] of cases) {
    let error: unknown
    try {
      error = await caught(attempt)
    } catch {
      failures.push(`${label}: ran instead of being refused`)
      continue
    }
    const shown = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)
    if (!(error instanceof expected.error)) {
      failures.push(`${label}: expected ${expected.error.name}, got ${shown}`)
    } else if (error.tenantId !== expected.tenantId) {
      failures.push(`${label}: names tenant ${String(error.tenantId)}, not ${String(expected.tenantId)}`)
    } else if (error instanceof StatementRefusedError && error.kind !== expected.kind) {
      failures.push(`${label}: refused as ${error.kind}, not ${expected.kind} (${error.message})`)
    } else if (error instanceof ReadOnlyAttachmentError && error.schema !== expected.schema) {
      failures.push(`${label}: names schema ${error.schema}, not ${expected.schema}`)
    }
  }
  return failures
}
