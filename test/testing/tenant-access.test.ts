import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { apex, InvalidOptionsError, InvalidTenantIdError, type ShardinesLogEvent, tenanted } from '@shardines/core'
import { expectOnlyTenant, recordTenantAccess, withTestTenant } from '@shardines/core/testing'
import { sql } from 'kysely'
import { makeShard } from '../helpers/fixtures.js'

const models = { Account: apex('accounts'), Document: tenanted('documents') }

/** A shard whose query log feeds a fresh recorder, with tenants acme and globex. */
async function recordedShard() {
  const forwarded: ShardinesLogEvent[] = []
  const access = recordTenantAccess({ forward: (event) => forwarded.push(event) })
  const { shard } = await makeShard({ log: access.log, models })
  await shard.tenants.create('acme')
  await shard.tenants.create('globex')
  await shard.apex.insertInto('accounts').values({ email: 'ada@acme.test' }).execute()
  return { shard, access, forwarded }
}

describe('recordTenantAccess / expectOnlyTenant', () => {
  test('statements on the tenant alone pass; the access lists each statement and where it ran', async () => {
    const { shard, access, forwarded } = await recordedShard()
    const seen = await access.capture(() =>
      shard.withTenant('acme', async (t) => {
        await t.db.insertInto('documents').values({ title: 'a' }).execute()
        return t.models.Document.count()
      }),
    )
    assert.equal(seen.result, 1)
    assert.deepEqual(seen.databases, ['acme'])
    assert.ok(seen.statements.length >= 2)
    assert.ok(seen.statements.every((s) => s.ranOn === 'acme' && !s.failed))
    assert.ok(seen.statements.some((s) => /insert into "documents"/.test(s.sql)))
    expectOnlyTenant(seen, 'acme')
    assert.ok(forwarded.length >= seen.statements.length, 'forward still receives every event')
    await shard.close()
  })

  test('a query on another tenant is caught, naming the tenant and the statement', async () => {
    const { shard, access } = await recordedShard()
    const seen = await access.capture(() =>
      shard.withTenant('acme', async (t) => {
        await t.db.selectFrom('documents').selectAll().execute()
        // The bug under test: a nested scope on the wrong tenant.
        return shard.withTenant('globex', (g) => g.db.selectFrom('comments').select('body').execute())
      }),
    )
    assert.deepEqual(seen.databases, ['acme', 'globex'])
    assert.throws(
      () => expectOnlyTenant(seen, 'acme'),
      (error: unknown) => {
        assert.ok(error instanceof assert.AssertionError)
        assert.match(
          error.message,
          /Expected only tenant "acme" to be touched, but the code also touched "globex" \(1 statement\)/,
        )
        assert.match(error.message, /\[globex\] select "body" from "comments"/)
        assert.deepEqual(error.actual, ['acme', 'globex'])
        assert.deepEqual(error.expected, ['acme'])
        return true
      },
    )
    // withTenants reaches every tenant it attaches.
    const both = await access.capture(() =>
      shard.withTenants(['acme', 'globex'], (x) => x.db.selectFrom('globex.documents').selectAll().execute()),
    )
    assert.deepEqual(both.databases, ['acme', 'globex'])
    assert.throws(() => expectOnlyTenant(both, 'acme'), /also touched "globex"/)
    await shard.close()
  })

  test('apex is caught too: shard.apex, apex models, and apex tables joined through ATTACH; allow: ["apex"] permits it', async () => {
    const { shard, access } = await recordedShard()
    const direct = await access.capture(() =>
      shard.withTenant('acme', async () => {
        await shard.apex.selectFrom('accounts').selectAll().execute()
        return shard.models.Account.count()
      }),
    )
    assert.deepEqual(direct.databases, ['apex'])
    assert.ok(direct.statements.every((s) => s.ranOn === 'apex'))
    assert.throws(() => expectOnlyTenant(direct, 'acme'), /also touched "apex" \(2 statements\)/)
    assert.throws(() => expectOnlyTenant(direct, 'acme', { allow: ['apex'] }), /none ran on it/)

    const joined = await access.capture(() =>
      shard.withTenant('acme', (t) =>
        t.db
          .selectFrom('documents as d')
          .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
          .select(['d.title', 'a.email'])
          .execute(),
      ),
    )
    assert.deepEqual(joined.databases, ['acme', 'apex'])
    const join = joined.statements.find((s) => s.databases.includes('apex'))
    assert.equal(join?.ranOn, 'acme', 'the join ran on the tenant connection, apex attached')
    assert.throws(() => expectOnlyTenant(joined, 'acme'), /also touched "apex" \(1 statement\)/)
    expectOnlyTenant(joined, 'acme', { allow: ['apex'] })

    // Raw SQL naming apex after t.attach('apex'); an 'apex.' inside a string literal is not a table.
    const raw = await access.capture(() =>
      shard.withTenant('acme', async (t) => {
        await sql`select 'mail@apex.test' as x from documents`.execute(t.db)
        await t.attach('apex')
        return sql`select email from apex.accounts`.execute(t.db)
      }),
    )
    assert.deepEqual(
      raw.statements.map((s) => s.databases),
      [['acme'], ['acme', 'apex']],
    )
    await shard.close()
  })

  test('capture counts only its own async context: concurrent tests on different tenants do not mix', async () => {
    const { shard, access } = await recordedShard()
    const runs = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        access.capture(() =>
          withTestTenant(shard, async (t) => {
            for (let k = 0; k < 3; k++) {
              await new Promise((resolve) => setTimeout(resolve, (i * 7 + k) % 5))
              await t.db
                .insertInto('documents')
                .values({ title: `${i}-${k}` })
                .execute()
            }
            return t.id
          }),
        ),
      ),
    )
    for (const run of runs) {
      assert.deepEqual(run.databases, [run.result])
      expectOnlyTenant(run, run.result)
    }
    // Nested captures: the inner one sees its part, the outer one everything.
    const outer = await access.capture(async () => {
      await shard.withTenant('globex', (t) => t.db.selectFrom('documents').selectAll().execute())
      return access.capture(() => shard.withTenant('acme', (t) => t.db.selectFrom('documents').selectAll().execute()))
    })
    assert.deepEqual(outer.result.databases, ['acme'])
    assert.deepEqual(outer.databases, ['acme', 'globex'])
    await shard.close()
  })

  test('access.expectOnlyTenant(id, fn) runs fn, asserts, and reports a leak before fn’s own error', async () => {
    const { shard, access } = await recordedShard()
    const n = await access.expectOnlyTenant('acme', () => shard.withTenant('acme', (t) => t.models.Document.count()))
    assert.equal(n, 0)
    await assert.rejects(
      access.expectOnlyTenant('acme', () =>
        shard.withTenant('acme', () => shard.withTenant('globex', (g) => g.models.Document.count())),
      ),
      (error: unknown) => error instanceof assert.AssertionError && /"globex"/.test(error.message),
    )
    const failure = new Error('the code failed')
    await assert.rejects(
      access.expectOnlyTenant('acme', async () => {
        await shard.withTenant('globex', (g) => g.models.Document.count())
        throw failure
      }),
      assert.AssertionError,
      'a leak wins over the failure it caused',
    )
    await assert.rejects(
      access.expectOnlyTenant('acme', async () => {
        await shard.withTenant('acme', (t) => t.models.Document.count())
        throw failure
      }),
      (error) => error === failure,
    )
    await assert.rejects(
      access.expectOnlyTenant('acme', () => 1),
      /none ran on it.*allowNone/,
    )
    assert.equal(await access.expectOnlyTenant('acme', () => 1, { allowNone: true }), 1)
    assert.throws(() => expectOnlyTenant({ statements: [], databases: [] }, '../acme'), InvalidTenantIdError)
    await shard.close()
  })

  test('start()/stop() record everything the instance runs meanwhile, whoever runs it', async () => {
    const { shard, access } = await recordedShard()
    assert.throws(() => access.stop(), InvalidOptionsError)
    access.start()
    // Code outside any capture, e.g. a request the app serves from a timer.
    await new Promise<void>((resolve) =>
      setTimeout(() => void shard.withTenant('globex', (t) => t.models.Document.count()).then(() => resolve()), 1),
    )
    await shard.withTenant('acme', (t) => t.models.Document.count())
    const seen = access.stop()
    assert.deepEqual(seen.databases, ['acme', 'globex'])
    assert.throws(() => expectOnlyTenant(seen, 'acme'), /"globex"/)
    access.start()
    access.start() // a restart drops what was recorded
    assert.deepEqual(access.stop().statements, [])
    await shard.close()
  })

  test('a failed statement counts as a touch; a recorder that was never given to createShardines says so', async () => {
    const { shard, access } = await recordedShard()
    const seen = await access
      .capture(() => shard.withTenant('globex', (t) => sql`select * from no_such_table`.execute(t.db)))
      .catch(() => undefined)
    assert.equal(seen, undefined, 'capture rejects with fn’s error')
    access.start()
    await shard.withTenant('globex', (t) => sql`select * from no_such_table`.execute(t.db)).catch(() => undefined)
    const failed = access.stop()
    assert.deepEqual(failed.databases, ['globex'])
    assert.equal(failed.statements.at(-1)?.failed, true)
    await shard.close()

    const unplugged = recordTenantAccess()
    const { shard: other } = await makeShard({ models })
    await other.tenants.create('acme')
    await assert.rejects(
      unplugged.expectOnlyTenant('acme', () => other.withTenant('acme', (t) => t.models.Document.count())),
      /received no log event at all: pass recorder\.log to createShardines\(\{ log \}\)/,
    )
    await other.close()
    assert.throws(
      () => recordTenantAccess({ foward: () => {} } as object),
      /Unknown recordTenantAccess option "foward"/,
    )
    assert.throws(() => recordTenantAccess({ forward: 1 as never }), InvalidOptionsError)
  })
})
