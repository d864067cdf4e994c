// Another process holds one tenant's file locked for 2 s. Statements that find
// it locked wait off the event loop, so queries on other tenants keep their
// latency and the event loop keeps turning; the locked tenant's own statements
// succeed once the lock goes (busyTimeout 5000) or reject with TenantBusyError
// after about busyTimeout (300).
//
// Latencies are wall-clock times, and on a small machine another test file's
// processes can take the CPU away from this one. So each measured window also
// reads how long the main thread sat runnable but not running (Linux
// schedstat): a window that misses the 50 ms bound while the machine was
// contended is measured again (up to four windows); one that misses it without
// contention fails at once.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { test } from 'node:test'
import { NATIVE_BUSY_WAIT_MS } from '@shardines/adapter-sqlite'
import { createShardines, ShardinesError, TenantBusyError } from '@shardines/core'
import { sleep } from '../helpers/async-helpers.js'
import { spawnTsChild } from '../helpers/child-process.js'
import { type ApexDB, makeShard, sqliteFactory, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'

const LOCKED = 'locked'
const OTHERS = ['free-1', 'free-2', 'free-3']
const HOLD_MS = 2000
const LATENCY_LIMIT_MS = 50
/** Lock windows to try when other processes took the CPU during one (see the top of the file). */
const WINDOWS = 4
const CHILD = new URL('./children/lock-holder-child.ts', import.meta.url)

type Shard = Awaited<ReturnType<typeof makeShard>>['shard']

/** What a promise did, and when (ms after `since`). */
type Settled<T> = { ok: true; value: T; at: number } | { ok: false; error: unknown; at: number }
function track<T>(promise: Promise<T>, since: number): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value, at: performance.now() - since }),
    (error: unknown) => ({ ok: false, error, at: performance.now() - since }),
  )
}

/** Nanoseconds the main thread has waited on a run queue (runnable, not running); 0 off Linux. */
function runQueueWaitNs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1])
  } catch {
    return 0
  }
}

/** Timings of the other tenants' scopes and of the event loop while a window lasted. */
interface Measured {
  scopes: number
  maxLatency: number
  /** The largest latency less the time other processes had the CPU during it (informative). */
  maxOwnLatency: number
  loopP99: number
  loopMax: number
  /** How long this thread could have run but another process had the CPU, in ms. */
  contendedMs: number
  windowMs: number
}

/**
 * Spawns the lock holder on `file`, and while it holds the lock runs `duringLock` (given the
 * moment the lock was reported) beside four lanes of write+read scopes on other tenants,
 * each timed, with the event loop delay recorded; returns when the lock is gone and
 * `duringLock` has settled.
 */
async function lockWindow<T>(
  shard: Shard,
  file: string,
  lockMode: 'exclusive' | 'immediate',
  holdMs: number,
  childTitle: string,
  duringLock: (lockedAt: number) => Promise<T>,
): Promise<{ result: T; measured: Measured }> {
  const child = spawnTsChild(CHILD, [file, lockMode, String(holdMs), childTitle])
  let released = false
  void child
    .waitForLine((line) => line === 'released', 30_000)
    .then(
      () => {
        released = true
      },
      () => {},
    )
  try {
    await child.waitForLine((line) => line === 'locked', 20_000)
    const lockedAt = performance.now()
    const queuedBefore = runQueueWaitNs()
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    const latencies: number[] = []
    /** Each latency less the time the thread sat on a run queue meanwhile. */
    const ownLatencies: number[] = []
    const lanes = Array.from({ length: 4 }, async (_, lane) => {
      for (let i = 0; !released && performance.now() - lockedAt < holdMs + 5000; i++) {
        const id = OTHERS[(lane + i) % OTHERS.length]!
        const started = performance.now()
        const queuedAtStart = runQueueWaitNs()
        await shard.withTenant(id, async (t) => {
          const title = `lane ${lane} #${i}`
          if (i % 3 === 0) {
            await t.transaction((trx) => trx.db.insertInto('documents').values({ title }).execute())
          } else {
            await t.db.insertInto('documents').values({ title }).execute()
          }
          return t.db
            .selectFrom('documents')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        })
        const latency = performance.now() - started
        latencies.push(latency)
        ownLatencies.push(latency - (runQueueWaitNs() - queuedAtStart) / 1e6)
        await sleep(1)
      }
    })
    const result = await duringLock(lockedAt)
    await Promise.all(lanes)
    loop.disable()
    const measured: Measured = {
      scopes: latencies.length,
      maxLatency: Math.max(...latencies),
      maxOwnLatency: Math.max(...ownLatencies),
      loopP99: loop.percentile(99) / 1e6,
      loopMax: loop.max / 1e6,
      contendedMs: (runQueueWaitNs() - queuedBefore) / 1e6,
      windowMs: performance.now() - lockedAt,
    }
    const { code } = await child.exited
    assert.equal(code, 0, `the lock holder failed:\n${child.stderr()}`)
    return { result, measured }
  } finally {
    child.process.kill('SIGKILL')
  }
}

/** Whether a window's timings meet the bound; throws when they miss it on an uncontended machine. */
function withinBound(measured: Measured, label: string, attempt: number, lastAttempt: boolean): boolean {
  const ok = measured.maxLatency < LATENCY_LIMIT_MS && measured.loopP99 < LATENCY_LIMIT_MS
  console.log(
    `# ${label} (window ${attempt}): ${measured.scopes} other-tenant scopes, max latency ${measured.maxLatency.toFixed(2)} ms ` +
      `(${measured.maxOwnLatency.toFixed(2)} ms less CPU taken by others); ` +
      `event loop delay p99 ${measured.loopP99.toFixed(2)} ms, max ${measured.loopMax.toFixed(2)} ms; ` +
      `CPU taken by other processes ${measured.contendedMs.toFixed(0)} of ${measured.windowMs.toFixed(0)} ms`,
  )
  if (ok) return true
  const contended = measured.contendedMs > measured.windowMs * 0.05
  if (contended && !lastAttempt) return false
  assert.ok(measured.scopes >= 100, `${label}: only ${measured.scopes} other-tenant scopes ran during the lock`)
  if (contended) {
    // Every window shared the CPU with other processes (CI runs two test files at once): wall-clock
    // latency and loop delay then measure the machine. The latency less the CPU others took still
    // tells whether this process waited for the lock on its event loop (that would be ~2000 ms).
    assert.ok(
      measured.maxOwnLatency < LATENCY_LIMIT_MS,
      `${label}: an other-tenant scope took ${measured.maxOwnLatency} ms (less CPU taken by others) while the lock was held (${JSON.stringify(measured)})`,
    )
    return true
  }
  assert.ok(
    measured.maxLatency < LATENCY_LIMIT_MS,
    `${label}: an other-tenant scope took ${measured.maxLatency} ms while the lock was held (${JSON.stringify(measured)})`,
  )
  assert.ok(
    measured.loopP99 < LATENCY_LIMIT_MS,
    `${label}: event loop delay p99 ${measured.loopP99} ms while the lock was held (${JSON.stringify(measured)})`,
  )
  return true
}

/** A shard with the locked tenant and the others created, every handle opened and the paths warmed up. */
async function setUp(journalMode: 'delete' | 'wal') {
  const { shard, dir } = await makeShard({ storageOptions: { journalMode, synchronous: 'off', busyTimeout: 5000 } })
  for (const id of [LOCKED, ...OTHERS]) await shard.tenants.create(id)
  // A second instance on the same folder whose statements give up after 300 ms.
  const impatient = createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { journalMode, synchronous: 'off', busyTimeout: 300 }),
    migrations: { tenant: tenantMigrations },
  })
  // Open every handle before the lock (opening a file that another process holds
  // exclusively has its own test below), and warm up the code paths measured.
  for (const id of [LOCKED, ...OTHERS]) {
    for (const instance of [shard, impatient]) {
      await instance.withTenant(id, async (t) => {
        await t.db.insertInto('documents').values({ title: 'warm-up' }).execute()
        return t.db.selectFrom('documents').selectAll().execute()
      })
    }
  }
  return { shard, impatient, file: path.join(dir, 'tenants', `${LOCKED}.sqlite3`) }
}

for (const journalMode of ['delete', 'wal'] as const) {
  // Under the rollback journal an exclusive lock blocks readers as well; under WAL readers
  // never wait for a writer, so the locked tenant's waiting statements are writes.
  const lockMode = journalMode === 'delete' ? 'exclusive' : 'immediate'

  test(`another process holds a tenant's ${lockMode} lock for ${HOLD_MS} ms (${journalMode} journal): other tenants stay under ${LATENCY_LIMIT_MS} ms, the locked one waits off the event loop`, {
    timeout: 40_000,
  }, async () => {
    const { shard, impatient, file } = await setUp(journalMode)
    try {
      for (let attempt = 1; attempt <= WINDOWS; attempt++) {
        const childTitle = `from-child-${attempt}`
        const { result, measured } = await lockWindow(shard, file, lockMode, HOLD_MS, childTitle, async (lockedAt) => {
          // Under WAL the locked tenant's readers do not wait at all and see only committed
          // rows. (Read before the transaction below queues: this process's statements on
          // the tenant wait for that one, as on one Kysely connection.)
          let walRead: { latency: number; titles: string[] } | undefined
          if (journalMode === 'wal') {
            const started = performance.now()
            const titles = await shard.withTenant(LOCKED, async (t) =>
              (await t.db.selectFrom('documents').select('title').execute()).map((r) => r.title),
            )
            walRead = { latency: performance.now() - started, titles }
          }
          // The locked tenant, from both instances, while the lock is held.
          const lockedStatement = (instance: Shard) =>
            instance.withTenant(LOCKED, async (t) => {
              if (journalMode === 'wal') await t.db.insertInto('documents').values({ title: 'from-parent' }).execute()
              return (await t.db.selectFrom('documents').select('title').orderBy('id').execute()).map((r) => r.title)
            })
          const patient = track(lockedStatement(shard), lockedAt)
          const gaveUp = track(lockedStatement(impatient), lockedAt)
          // A write transaction: its BEGIN IMMEDIATE waits for the lock like any statement.
          const transaction = track(
            shard.withTenant(LOCKED, (t) =>
              t.transaction(async (trx) => {
                await trx.db.insertInto('documents').values({ title: 'from-transaction' }).execute()
                return 'committed'
              }),
            ),
            lockedAt,
          )
          return { walRead, short: await gaveUp, long: await patient, trx: await transaction }
        })
        const { walRead, short, long, trx } = result

        // The impatient instance gave up after about its busyTimeout, with a typed error naming the tenant.
        assert.equal(
          short.ok,
          false,
          `a statement on the locked tenant with busyTimeout 300 succeeded at ${short.at} ms`,
        )
        const busy = (short as { error: unknown }).error
        assert.ok(busy instanceof TenantBusyError, `expected TenantBusyError, got ${String(busy)}`)
        assert.ok(busy instanceof ShardinesError)
        assert.equal(busy.code, 'TENANT_BUSY')
        assert.equal(busy.tenantId, LOCKED)
        assert.match(busy.message, /"locked"/)
        assert.ok(busy.waitedMs >= 250 && busy.waitedMs < 1500, `waitedMs ${busy.waitedMs}`)
        assert.ok(short.at >= 250 && short.at < 1500, `TenantBusyError after ${short.at} ms`)

        // The patient one ran once the lock was gone, and saw the other process's committed row.
        assert.ok(long.ok, `the locked tenant's statement failed: ${String((long as { error: unknown }).error)}`)
        const titles = (long as { value: string[] }).value
        assert.ok(titles.includes(childTitle), `the child's committed row is missing: ${JSON.stringify(titles)}`)
        if (journalMode === 'wal') assert.ok(titles.includes('from-parent'))
        assert.ok(long.at >= HOLD_MS - 200, `the locked tenant answered after ${long.at} ms, before the lock went`)
        assert.ok(long.at < HOLD_MS + 1500, `the locked tenant answered ${long.at} ms after the lock was taken`)
        assert.ok(
          trx.ok && trx.value === 'committed',
          `the transaction failed: ${String((trx as { error: unknown }).error)}`,
        )
        assert.ok(trx.at >= HOLD_MS - 200, `the transaction committed after ${trx.at} ms, before the lock went`)
        if (walRead !== undefined) {
          // Not blocked by the writer (that would be the whole hold); a loaded machine may add tens of ms.
          assert.ok(walRead.latency < HOLD_MS / 4, `a WAL read of the locked tenant took ${walRead.latency} ms`)
          assert.ok(!walRead.titles.includes(childTitle), 'a reader saw the other process uncommitted row')
        }
        console.log(
          `# ${journalMode}: busyTimeout 300 gave up after ${short.at.toFixed(0)} ms (waitedMs ${busy.waitedMs.toFixed(0)}); ` +
            `busyTimeout 5000 answered ${long.at.toFixed(0)} ms after the lock was taken (native busy wait ${NATIVE_BUSY_WAIT_MS} ms)`,
        )
        // Other tenants never waited for the lock, and neither did the event loop.
        if (withinBound(measured, journalMode, attempt, attempt === WINDOWS)) break
      }
      // Nothing is left wedged: both instances write to the tenant at once.
      for (const instance of [shard, impatient]) {
        await instance.withTenant(LOCKED, (t) => t.db.insertInto('documents').values({ title: 'after' }).execute())
      }
    } finally {
      await impatient.close()
      await shard.close()
    }
  })
}

test('a statement inside an explicit transaction that finds the file locked rejects at once with TenantBusyError, and the tenant is not wedged', {
  timeout: 30_000,
}, async () => {
  const { shard, dir } = await makeShard({ storageOptions: { synchronous: 'off', busyTimeout: 5000 } })
  await shard.tenants.create(LOCKED)
  await shard.withTenant(LOCKED, (t) => t.db.selectFrom('documents').selectAll().execute())
  const child = spawnTsChild(CHILD, [path.join(dir, 'tenants', `${LOCKED}.sqlite3`), 'exclusive', '1000', 'from-child'])
  try {
    await child.waitForLine((line) => line === 'locked', 20_000)
    const started = performance.now()
    // A read-only transaction begins deferred (no lock); its first read then meets the lock.
    const error = await shard
      .withTenant(LOCKED, (t) =>
        t.db
          .transaction()
          .setAccessMode('read only')
          .execute((trx) => trx.selectFrom('documents').selectAll().execute()),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    const elapsed = performance.now() - started
    assert.ok(error instanceof TenantBusyError, `expected TenantBusyError, got ${String(error)}`)
    assert.equal(error.tenantId, LOCKED)
    assert.ok(elapsed < 500, `the statement inside the transaction waited ${elapsed} ms instead of failing at once`)
    // Retrying the whole transaction succeeds once the other process lets go.
    const rows = await shard.withTenant(LOCKED, (t) =>
      t.transaction((trx) => trx.db.selectFrom('documents').select('title').execute()),
    )
    assert.deepEqual(rows, [{ title: 'from-child' }])
    assert.equal((await child.exited).code, 0, child.stderr())
  } finally {
    child.process.kill('SIGKILL')
    await shard.close()
  }
})

test('16 requests waiting for one locked tenant do not stall the other tenants or the event loop', {
  timeout: 40_000,
}, async () => {
  const { shard, file } = await setUp('delete')
  try {
    {
      const { result, measured } = await lockWindow(shard, file, 'exclusive', 1500, 'from-child', async () =>
        Promise.allSettled(
          Array.from({ length: 16 }, () =>
            shard.withTenant(LOCKED, (t) => t.db.selectFrom('documents').select('title').execute()),
          ),
        ),
      )
      assert.deepEqual(
        result.filter((r) => r.status === 'rejected'),
        [],
      )
      withinBound(measured, '16 waiters', 1, true)
    }
  } finally {
    await shard.close()
  }
})

test('opening a tenant (a pool miss) while another process holds it exclusively waits for the lock like a statement', {
  timeout: 30_000,
}, async () => {
  const { shard, dir } = await makeShard({ storageOptions: { synchronous: 'off', busyTimeout: 5000 } })
  await shard.tenants.create(LOCKED)
  // A fresh instance: the tenant's handle is not open yet.
  const cold = createShardines<ApexDB, TenantDB>({
    storage: sqliteFactory(dir, { synchronous: 'off', busyTimeout: 5000 }),
    migrations: { tenant: tenantMigrations },
  })
  const child = spawnTsChild(CHILD, [path.join(dir, 'tenants', `${LOCKED}.sqlite3`), 'exclusive', '1000', 'from-child'])
  try {
    await child.waitForLine((line) => line === 'locked', 20_000)
    const rows = await cold.withTenant(LOCKED, (t) => t.db.selectFrom('documents').select('title').execute())
    assert.deepEqual(rows, [{ title: 'from-child' }])
  } finally {
    child.process.kill('SIGKILL')
    await cold.close()
    await shard.close()
  }
})
