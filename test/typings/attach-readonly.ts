// Attached databases are typed read-only: reads compile, inserts and updates do not.
import type { Shardines } from '@shardines/core'
import type { Generated } from 'kysely'

interface ApexDB {
  accounts: { id: Generated<number>; email: string }
}
interface TenantDB {
  documents: { id: Generated<number>; title: string; owner_id: number }
}

declare const shard: Shardines<ApexDB, TenantDB>

export async function tenantScope(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const rows = await t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email', 'a.id'])
      .execute()
    const email: string = rows[0]!.email
    const id: number = rows[0]!.id
    void email
    void id
    await t.db.insertInto('documents').values({ title: 'ok', owner_id: 1 }).execute()
    // @ts-expect-error apex is attached read-only: no insert
    await t.db.insertInto('apex.accounts').values({ email: 'x@y.z' }).execute()
    // @ts-expect-error apex is attached read-only: no update
    await t.db.updateTable('apex.accounts').set({ email: 'x@y.z' }).execute()
    // insert…select from apex into a tenant table compiles (apex is only read)
    await t.db
      .insertInto('documents')
      .columns(['title', 'owner_id'])
      .expression((eb) => eb.selectFrom('apex.accounts').select(['email', 'id']))
      .execute()
  })
}

export async function severalTenants(): Promise<void> {
  await shard.withTenants(['acme', 'globex'], async (x) => {
    const rows = await x.db.selectFrom('acme.documents').select('title').execute()
    const title: string = rows[0]!.title
    void title
    // @ts-expect-error attached tenants are read-only: no insert
    await x.db.insertInto('globex.documents').values({ title: 'x', owner_id: 1 }).execute()
    // @ts-expect-error only the ids given are attached
    await x.db.selectFrom('initech.documents').selectAll().execute()
  })
}
