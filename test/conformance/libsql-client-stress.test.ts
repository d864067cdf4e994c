// An asynchronous-handle stress through @shardines/adapter-libsql's client mode
// (@libsql/client on file: URLs): many scopes across tenants with random awaits
// between statements, apex joins that attach apex on shared handles, explicit
// t.attach, transactions, withTenants and a pool small enough to evict. No scope
// may see or write another tenant's rows, and no attach may race another
// ("database apex is already in use").
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { sql } from 'kysely'
import { randomPause, runInLanes, seededRandom } from '../helpers/async-helpers.js'
import { makeTargetShard } from '../helpers/target-shard.js'
import { libsqlClientTarget } from './targets/libsql-targets.js'

const TENANTS = Array.from({ length: 8 }, (_, i) => `t${i}`)

describe('libsql client mode under concurrent asynchronous scopes', () => {
  const cleanup: (() => Promise<void>)[] = []
  after(async () => {
    for (const close of cleanup) await close()
  })

  test('600 scopes over 8 tenants with random awaits: apex joins, attaches, transactions and evictions never cross tenants', async () => {
    const { shard, dir } = await makeTargetShard(libsqlClientTarget, { storage: { maxOpen: 3 } })
    cleanup.push(() => shard.close())
    const owners = await shard.apex
      .insertInto('accounts')
      .values(TENANTS.map((id) => ({ email: `${id}@apex.test` })))
      .returning(['id', 'email'])
      .execute()
    const ownerOf = new Map(owners.map((o) => [o.email.slice(0, o.email.indexOf('@')), o.id]))
    for (const id of TENANTS) await shard.tenants.create(id)

    const random = seededRandom(16)
    const written = new Map<string, string[]>(TENANTS.map((id) => [id, []]))
    const kinds = { join: 0, attach: 0, transaction: 0, withTenants: 0, write: 0 }
    await runInLanes(600, 48, async (n) => {
      const id = TENANTS[Math.floor(random() * TENANTS.length)] as string
      const kind = Math.floor(random() * 5)
      if (kind === 4) {
        // Two tenants attached read-only on a scratch handle, concurrently with their own scopes.
        kinds.withTenants++
        const [a, b] = [id, TENANTS[(TENANTS.indexOf(id) + 1) % TENANTS.length] as string]
        const rows = await shard.withTenants([a, b], async (x) => {
          await randomPause(random)
          const { rows } = await sql<{ title: string }>`select title from ${sql.table(`${a}.documents`)}`.execute(x.db)
          return rows
        })
        for (const row of rows) assert.ok(row.title.startsWith(`${a}:`), `withTenants(${a}) read ${row.title}`)
        return
      }
      await shard.withTenant(id, async (t) => {
        await randomPause(random)
        const title = `${id}:${n}`
        if (kind === 0) {
          // A builder join: apex attached to this tenant's handle, maybe by several scopes at once.
          kinds.join++
          await t.db
            .insertInto('documents')
            .values({ title, owner_id: ownerOf.get(id) ?? null })
            .execute()
          written.get(id)?.push(title)
          await randomPause(random)
          const rows = await t.db
            .selectFrom('documents as d')
            .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
            .select(['d.title', 'a.email'])
            .execute()
          for (const row of rows) {
            assert.ok(row.title.startsWith(`${id}:`), `${id} read ${row.title}`)
            assert.equal(row.email, `${id}@apex.test`)
          }
        } else if (kind === 1) {
          // An explicit attach racing other scopes' statement-driven attaches on the same handle.
          kinds.attach++
          await t.attach('apex')
          await randomPause(random)
          const { rows } = await sql<{ n: number }>`select count(*) as n from apex.accounts`.execute(t.db)
          assert.equal(rows[0]?.n, TENANTS.length)
        } else if (kind === 2) {
          kinds.transaction++
          await t.transaction(async (trx) => {
            await trx.db.insertInto('documents').values({ title, owner_id: null }).execute()
            await randomPause(random)
            const mine = await trx.db.selectFrom('documents').select('title').execute()
            for (const row of mine)
              assert.ok(row.title.startsWith(`${id}:`), `${id} read ${row.title} in a transaction`)
          })
          written.get(id)?.push(title)
        } else {
          kinds.write++
          await t.models.Document.create({ title, owner_id: null })
          written.get(id)?.push(title)
          await randomPause(random)
          const rows = await t.models.Document.where('title', '=', title).all()
          assert.deepEqual(
            rows.map((r) => r.title),
            [title],
          )
        }
      })
    })
    // Every kind ran, the pool evicted, and what is stored is exactly what each tenant wrote.
    for (const [kind, count] of Object.entries(kinds)) assert.ok(count > 50, `${kind} ran ${count} times`)
    assert.ok(shard.stats().evictions > 0, 'the pool never evicted: the stress proves less than it claims')
    for (const id of TENANTS) {
      const stored = await libsqlClientTarget.support.rawRows(dir, id, 'select title from documents order by id')
      assert.deepEqual(stored.map((r) => r.title).sort(), [...(written.get(id) ?? [])].sort(), id)
    }
  })
})
