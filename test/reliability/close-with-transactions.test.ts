// shard.close({ timeout }) while ten scopes over three tenants are inside
// transactions of every kind, some short enough to finish within the timeout,
// some far longer, some queued behind a long one. Every caller gets its result
// or a ShardinesError (never a driver TypeError, never a hang); what committed
// is in the file and what did not is not; new work is refused at once; the
// files pass integrity_check.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { ShardinesClosedError, ShardinesError } from '@shardines/core'
import Database from 'better-sqlite3'
import { sleep } from '../helpers/async-helpers.js'
import { makeShard } from '../helpers/fixtures.js'

const CLOSE_TIMEOUT_MS = 200
const TENANTS = ['c-a', 'c-b', 'c-c']

type Kind = 't.transaction' | 'db.transaction' | 'controlled'

interface Plan {
  name: string
  tenant: string
  kind: Kind
  rows: number
  /** Pause after each row, in ms. */
  gapMs: number
  /**
   * What must happen, from where it sits in its tenant's queue (one transaction at a time per
   * tenant): 'commit' when it ends well inside the timeout, 'fail' when it cannot end before
   * it, 'either' near the boundary.
   */
  expect: 'commit' | 'fail' | 'either'
}

// In start order; transactions of one tenant run one after another.
const PLANS: Plan[] = [
  { name: 'a1', tenant: 'c-a', kind: 't.transaction', rows: 3, gapMs: 10, expect: 'commit' }, // ends ~30 ms
  { name: 'a2', tenant: 'c-a', kind: 'controlled', rows: 3, gapMs: 10, expect: 'commit' }, // queued, ends ~60 ms
  { name: 'a3', tenant: 'c-a', kind: 'db.transaction', rows: 10, gapMs: 60, expect: 'fail' }, // ~660 ms
  { name: 'a4', tenant: 'c-a', kind: 't.transaction', rows: 2, gapMs: 5, expect: 'fail' }, // queued behind a3
  { name: 'b1', tenant: 'c-b', kind: 't.transaction', rows: 4, gapMs: 45, expect: 'either' }, // ~180 ms
  { name: 'b2', tenant: 'c-b', kind: 'controlled', rows: 2, gapMs: 10, expect: 'either' }, // queued, ~200 ms
  { name: 'b3', tenant: 'c-b', kind: 'controlled', rows: 10, gapMs: 60, expect: 'fail' },
  { name: 'b4', tenant: 'c-b', kind: 'db.transaction', rows: 2, gapMs: 5, expect: 'fail' }, // queued behind b3
  { name: 'c1', tenant: 'c-c', kind: 't.transaction', rows: 8, gapMs: 80, expect: 'fail' },
  { name: 'c2', tenant: 'c-c', kind: 'db.transaction', rows: 2, gapMs: 5, expect: 'fail' }, // queued behind c1
]

interface Outcome {
  plan: Plan
  committed: boolean
  result: { ok: true; value: unknown } | { ok: false; error: unknown } | { hung: true }
  /** The first error a statement inside the transaction met, if any. */
  inner?: unknown
  settledAt: number
}

const describe = (error: unknown) =>
  error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)

for (const journalMode of ['delete', 'wal'] as const) {
  test(`close({ timeout: ${CLOSE_TIMEOUT_MS} }) with ten transactions running (${journalMode} journal): results or ShardinesErrors, committed rows kept, the rest rolled back`, {
    timeout: 30_000,
  }, async () => {
    const { shard, dir } = await makeShard({ storageOptions: { journalMode, synchronous: 'off' } })
    for (const id of TENANTS) await shard.tenants.create(id)
    for (const id of TENANTS) await shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().execute())

    // A raw driver error escaping anywhere would show up here.
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)

    let closeStarted = Number.POSITIVE_INFINITY
    const run = async (plan: Plan): Promise<Outcome> => {
      const outcome: Partial<Outcome> & { plan: Plan; committed: boolean } = { plan, committed: false }
      // Each row is a statement on the transaction (or on t.db inside its callback, which joins it).
      const body = async (insert: (title: string) => Promise<unknown>) => {
        for (let k = 0; k < plan.rows; k++) {
          try {
            await insert(`${plan.name}.${k}`)
          } catch (error) {
            outcome.inner ??= error
            throw error
          }
          await sleep(plan.gapMs)
        }
        return plan.name
      }
      const scope = shard.withTenant(plan.tenant, async (t) => {
        let value: string
        if (plan.kind === 't.transaction') {
          value = await t.transaction((trx) =>
            body((title) => trx.db.insertInto('documents').values({ title }).execute()),
          )
        } else if (plan.kind === 'db.transaction') {
          value = await t.db
            .transaction()
            .execute(() => body((title) => t.db.insertInto('documents').values({ title }).execute()))
        } else {
          const trx = await t.db.startTransaction().execute()
          try {
            value = await body((title) => trx.insertInto('documents').values({ title }).execute())
            await trx.commit().execute()
          } catch (error) {
            await trx
              .rollback()
              .execute()
              .catch((rollbackError: unknown) => {
                outcome.inner ??= rollbackError
              })
            throw error
          }
        }
        outcome.committed = true
        // A scope that goes on after its commit: a new scope is refused once close() began.
        if (performance.now() > closeStarted) {
          await shard
            .withTenant(plan.tenant, () => 'nested')
            .then(
              () => {
                outcome.inner ??= new Error('a nested withTenant after close() started was accepted')
              },
              (error: unknown) => {
                if (!(error instanceof ShardinesClosedError)) outcome.inner ??= error
              },
            )
        }
        return value
      })
      let timer: NodeJS.Timeout | undefined
      const hung = new Promise<{ hung: true }>((resolve) => {
        timer = setTimeout(() => resolve({ hung: true }), 10_000)
      })
      const result = await Promise.race([
        scope.then(
          (value) => ({ ok: true, value }) as const,
          (error: unknown) => ({ ok: false, error }) as const,
        ),
        hung,
      ])
      clearTimeout(timer)
      return { ...outcome, result, settledAt: performance.now() - closeStarted } as Outcome
    }

    // Start them in order (a tick apart, so each tenant's queue is in plan order).
    const running: Promise<Outcome>[] = []
    for (const plan of PLANS) {
      running.push(run(plan))
      await new Promise((resolve) => setImmediate(resolve))
    }
    // A plain-statement loop and a slowly read stream run beside the transactions.
    const plainLoop = shard
      .withTenant('c-c', async (t) => {
        for (let i = 0; i < 30; i++) {
          await t.db
            .selectFrom('documents')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .execute()
          await sleep(25)
        }
        return 'loop done'
      })
      .then(
        (value) => ({ ok: true, value }) as const,
        (error: unknown) => ({ ok: false, error }) as const,
      )
    const slowStream = shard
      .withTenant('c-b', async (t) => {
        let n = 0
        for await (const _ of t.db.selectFrom('documents').selectAll().stream(1)) {
          n++
          await sleep(30)
        }
        for (let i = 0; i < 10; i++) {
          for await (const _ of t.db.selectFrom('documents').select('id').stream(1)) n++
          await sleep(30)
        }
        return n
      })
      .then(
        (value) => ({ ok: true, value }) as const,
        (error: unknown) => ({ ok: false, error }) as const,
      )
    // And a connection() callback holding a tenant across awaits.
    const connectionHold = shard
      .withTenant('c-a', (t) =>
        t.db.connection().execute(async (db) => {
          for (let i = 0; i < 10; i++) {
            await db.selectFrom('documents').select('id').execute()
            await sleep(30)
          }
          return 'connection done'
        }),
      )
      .then(
        (value) => ({ ok: true, value }) as const,
        (error: unknown) => ({ ok: false, error }) as const,
      )
    await sleep(5)

    closeStarted = performance.now()
    const closing = shard.close({ timeout: CLOSE_TIMEOUT_MS })

    // New work is refused at once, while the running scopes still run.
    const refusals: [string, () => Promise<unknown>][] = [
      ['withTenant', () => shard.withTenant('c-a', () => 'new scope')],
      ['withTenant (another tenant)', () => shard.withTenant('c-c', (t) => t.db.selectFrom('documents').execute())],
      ['tenants.create', () => shard.tenants.create('c-new')],
      ['withTenants', () => shard.withTenants(['c-a', 'c-b'], () => 'joined')],
    ]
    for (const [what, call] of refusals) {
      const started = performance.now()
      const error = await Promise.resolve()
        .then(call)
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      const took = performance.now() - started
      assert.ok(error instanceof ShardinesClosedError, `${what} after close() began: ${describe(error)}`)
      assert.equal(error.code, 'SHARDINES_CLOSED')
      assert.ok(took < 50, `${what} was refused after ${took} ms, not at once`)
    }

    await closing
    const closedAfter = performance.now() - closeStarted
    const outcomes = await Promise.all(running)
    const extras = { plainLoop: await plainLoop, slowStream: await slowStream, connectionHold: await connectionHold }
    process.off('unhandledRejection', onUnhandled)

    const table = outcomes.map((o) => ({
      name: o.plan.name,
      expect: o.plan.expect,
      committed: o.committed,
      settledAt: Math.round(o.settledAt),
      result: 'hung' in o.result ? 'HUNG' : o.result.ok ? 'ok' : describe(o.result.error),
      inner: o.inner === undefined ? undefined : describe(o.inner),
    }))
    console.log(`# ${journalMode}: close() resolved after ${closedAfter.toFixed(0)} ms`)
    for (const row of table) console.log(`#   ${JSON.stringify(row)}`)
    for (const [what, r] of Object.entries(extras)) {
      console.log(`#   ${what}: ${r.ok ? `ok ${String(r.value)}` : describe(r.error)}`)
    }

    assert.ok(
      closedAfter < CLOSE_TIMEOUT_MS + 1000,
      `close() took ${closedAfter} ms with a ${CLOSE_TIMEOUT_MS} ms timeout`,
    )
    assert.deepEqual(unhandled.map(describe), [], 'unhandled rejections')
    for (const o of outcomes) {
      const label = `${o.plan.name} (${o.plan.kind}, ${JSON.stringify(table.find((r) => r.name === o.plan.name))})`
      assert.ok(!('hung' in o.result), `${label} never settled`)
      if (o.result.ok) {
        assert.equal(o.result.value, o.plan.name, label)
        assert.ok(o.committed, label)
      } else {
        // Every failure is a typed Shardines error (the closed instance), never the driver's TypeError.
        assert.ok(o.result.error instanceof ShardinesError, `${label}: ${describe(o.result.error)}`)
      }
      if (o.inner !== undefined) assert.ok(o.inner instanceof ShardinesError, `${label}: inner ${describe(o.inner)}`)
      if (o.plan.expect === 'commit') assert.ok(o.result.ok, `${label} should have finished within the timeout`)
      if (o.plan.expect === 'fail') {
        assert.ok(!o.committed, `${label} cannot have committed before the timeout`)
        assert.equal(o.result.ok, false, label)
      }
      // Everyone settles soon after close() resolves: nobody waits on a closed handle.
      assert.ok(o.settledAt < closedAfter + 500, `${label} settled ${o.settledAt} ms after close() began`)
    }
    for (const [what, result] of Object.entries(extras)) {
      if (!result.ok) assert.ok(result.error instanceof ShardinesError, `${what}: ${describe(result.error)}`)
    }
    assert.equal(extras.plainLoop.ok, false, 'the plain loop outlived the timeout and still finished')

    // The files: whole, every committed transaction in full, nothing of the others.
    for (const tenant of TENANTS) {
      const db = new Database(path.join(dir, 'tenants', `${tenant}.sqlite3`), { readonly: true, fileMustExist: true })
      let titles: string[]
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `${tenant} integrity_check`)
        titles = (db.prepare('select title from documents order by id').all() as { title: string }[]).map(
          (r) => r.title,
        )
      } finally {
        db.close()
      }
      const expected = outcomes
        .filter((o) => o.plan.tenant === tenant && o.committed)
        .flatMap((o) => Array.from({ length: o.plan.rows }, (_, k) => `${o.plan.name}.${k}`))
      assert.deepEqual([...titles].sort(), [...expected].sort(), `${tenant}: rows in the file`)
    }
  })
}

test('after close() times out, statements on a transaction or connection() it ended get ShardinesClosedError', {
  timeout: 10_000,
}, async () => {
  const { shard } = await makeShard({ storageOptions: { synchronous: 'off' } })
  for (const id of TENANTS) await shard.tenants.create(id)
  const callback = shard.withTenant('c-a', (t) =>
    t.transaction(async (trx) => {
      await trx.db.insertInto('documents').values({ title: 'before' }).execute()
      await sleep(100)
      await trx.db.insertInto('documents').values({ title: 'after the timeout' }).execute()
    }),
  )
  const controlled = shard.withTenant('c-b', async (t) => {
    const trx = await t.db.startTransaction().execute()
    await trx.insertInto('documents').values({ title: 'before' }).execute()
    await sleep(100)
    await trx.commit().execute()
  })
  const held = shard.withTenant('c-c', (t) =>
    t.db.connection().execute(async (db) => {
      await db.selectFrom('documents').select('id').execute()
      await sleep(100)
      await db.selectFrom('documents').select('id').execute()
    }),
  )
  await sleep(5)
  await shard.close({ timeout: 20 })
  for (const settled of await Promise.allSettled([callback, controlled, held])) {
    assert.equal(settled.status, 'rejected')
    const { reason } = settled as PromiseRejectedResult
    assert.ok(reason instanceof ShardinesClosedError, `expected ShardinesClosedError, got ${describe(reason)}`)
  }
})
