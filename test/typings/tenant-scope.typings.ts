// What t.db, shard.db(), transactions and shard.apex know, with the generated types.
import type { Shardines } from '@shardines/core'
import type { ApexDB } from './generated/apex.js'
import type { TenantDB } from './generated/tenant.js'
import { type Equal, expectType } from './type-assert.js'

declare const shard: Shardines<ApexDB, TenantDB>

export async function tenantTables(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const docs = await t.db.selectFrom('documents').select(['id', 'title', 'owner_id']).execute()
    expectType<Equal<typeof docs, { id: number; title: string; owner_id: number | null }[]>>()

    const comment = await t.db
      .selectFrom('comments as c')
      .innerJoin('documents as d', 'd.id', 'c.document_id')
      .select(['c.body', 'd.status'])
      .executeTakeFirstOrThrow()
    expectType<Equal<typeof comment, { body: string; status: string }>>()

    // Generated columns are optional on insert; the rest are required and typed.
    await t.db.insertInto('documents').values({ title: 'draft' }).execute()
    await t.db.updateTable('documents').set({ status: 'closed', owner_id: null }).where('id', '=', 1).execute()

    // @ts-expect-error unknown table
    t.db.selectFrom('invoices')
    // @ts-expect-error unknown column
    t.db.selectFrom('documents').select('body')
    // @ts-expect-error unknown column in a where
    t.db.selectFrom('documents').selectAll().where('author', '=', 'x')
    // @ts-expect-error writing a wrong type
    t.db.insertInto('documents').values({ title: 42 })
    // @ts-expect-error updating with a wrong type
    t.db.updateTable('documents').set({ owner_id: 'nobody' })
    // @ts-expect-error an insert missing a required column
    t.db.insertInto('comments').values({ body: 'hi' })
    // @ts-expect-error another tenant's table is not reachable from a tenant scope
    t.db.selectFrom('other.documents')
    // @ts-expect-error nor with a join
    t.db.selectFrom('documents').innerJoin('globex.comments as gc', 'gc.document_id', 'documents.id')
    // @ts-expect-error apex tables are only reachable qualified, as apex.<table>
    t.db.selectFrom('accounts')
  })
}

export async function apexFromTenantScope(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const rows = await t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email', 'a.created_at'])
      .execute()
    expectType<Equal<typeof rows, { title: string; email: string; created_at: string }[]>>()

    const plan = await t.db.selectFrom('apex.plans').selectAll().executeTakeFirst()
    expectType<Equal<typeof plan, { id: string; name: string; price_cents: number } | undefined>>()

    // @ts-expect-error apex.* reads are typed: price_cents is a number
    const price: string = plan!.price_cents
    // @ts-expect-error unknown apex column
    t.db.selectFrom('apex.accounts').select('password')
    // @ts-expect-error unknown apex table
    t.db.selectFrom('apex.invoices')
  })
}

export async function currentTenantAndTransactions(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const titles = await shard.db().selectFrom('documents').select('title').execute()
    expectType<Equal<typeof titles, { title: string }[]>>()
    const id = await t.transaction(async (trx) => {
      const inserted = await trx.db
        .insertInto('comments')
        .values({ document_id: 1, body: 'x' })
        .returning('id')
        .executeTakeFirstOrThrow()
      // @ts-expect-error unknown table inside a transaction
      trx.db.selectFrom('invoices')
      return inserted.id
    })
    expectType<Equal<typeof id, number>>()
  })
  const counts = await shard.mapTenants((t) => t.db.selectFrom('documents').select('id').execute())
  // Each result holds the value or the error (the union does not narrow on `error`, which is `unknown`).
  expectType<Equal<NonNullable<(typeof counts)[number]['value']>, { id: number }[]>>()
}

export async function apexInstance(): Promise<void> {
  const account = await shard.apex
    .insertInto('accounts')
    .values({ email: 'a@example.com' })
    .returningAll()
    .executeTakeFirstOrThrow()
  expectType<Equal<typeof account, { id: number; email: string; plan_id: string; created_at: string }>>()
  // @ts-expect-error apex knows apex tables only
  shard.apex.selectFrom('documents')
  // @ts-expect-error apex tables are unqualified on shard.apex
  shard.apex.selectFrom('apex.accounts')
  // @ts-expect-error writing a wrong type to apex
  shard.apex.insertInto('plans').values({ id: 'pro', name: 'Pro', price_cents: '10' })
}
