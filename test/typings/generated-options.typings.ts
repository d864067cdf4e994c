// The options carried through to the types: camelCase, parsed JSON, column overrides.
import type { Shardines } from '@shardines/core'
import type { Insertable, Selectable } from 'kysely'
import type { ApexDB } from './generated-options/apex.js'
import type { Documents, JsonValue, TenantDB } from './generated-options/tenant.js'
import { type Equal, expectType } from './type-assert.js'

declare const shard: Shardines<ApexDB, TenantDB>

// json: 'parsed' reads JsonValue and writes strings; the override narrows status.
expectType<Equal<Selectable<Documents>['meta'], JsonValue | null>>()
expectType<Equal<Insertable<Documents>['meta'], string | null | undefined>>()
expectType<Equal<Selectable<Documents>['createdAt'], string>>()
expectType<Equal<Selectable<Documents>['status'], 'open' | 'closed'>>()

export async function camelCaseScope(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const rows = await t.db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.ownerId')
      .select(['d.ownerId', 'd.meta', 'a.planId', 'a.createdAt'])
      .execute()
    expectType<
      Equal<typeof rows, { ownerId: number | null; meta: JsonValue | null; planId: string; createdAt: string }[]>
    >()
    await t.db
      .insertInto('documents')
      .values({ title: 'x', meta: JSON.stringify({ tags: [] }) })
      .execute()

    // @ts-expect-error with camelCase, the snake_case names are gone
    t.db.selectFrom('documents').select('owner_id')
    // @ts-expect-error parsed JSON columns are written as strings
    t.db.insertInto('documents').values({ title: 'x', meta: { tags: [] } })
    // @ts-expect-error the override narrows status
    t.db.insertInto('documents').values({ title: 'x', status: 'archived' })
    // @ts-expect-error dates are ISO strings (dates: 'string', the default)
    t.db.insertInto('documents').values({ title: 'x', createdAt: 1767225600 })
  })
}
