// withTenants(ids, fn): each id's tables as <id>.<table>, apex as apex.<table>.
import type { Shardines } from '@shardines/core'
import type { ApexDB } from './generated/apex.js'
import type { TenantDB } from './generated/tenant.js'
import { type Equal, expectType } from './type-assert.js'

declare const shard: Shardines<ApexDB, TenantDB>

export async function crossTenant(): Promise<void> {
  const rows = await shard.withTenants(['a', 'b'], async (x) => {
    expectType<Equal<(typeof x.ids)[number], 'a' | 'b'>>()
    const joined = await x.db
      .selectFrom('a.documents as ad')
      .innerJoin('b.documents as bd', 'bd.title', 'ad.title')
      .innerJoin('apex.accounts as acc', 'acc.id', 'ad.owner_id')
      .select(['ad.id as a_id', 'bd.id as b_id', 'acc.email'])
      .execute()
    expectType<Equal<typeof joined, { a_id: number; b_id: number; email: string }[]>>()

    // @ts-expect-error a tenant that was not passed to withTenants
    x.db.selectFrom('c.documents')
    // @ts-expect-error unqualified tables do not exist on the scratch connection
    x.db.selectFrom('documents')
    // @ts-expect-error unknown table of a listed tenant
    x.db.selectFrom('a.invoices')
    // @ts-expect-error unknown column of a listed tenant
    x.db.selectFrom('b.comments').select('title')
    return joined
  })
  expectType<Equal<typeof rows, { a_id: number; b_id: number; email: string }[]>>()
}
