// Type tests for prepared queries: what must compile, and (under @ts-expect-error) what must not.
import type { Params, PreparedQuery, Shardines } from '@shardines/core'
import type { ApexDB, TenantDB } from './items-schema.js'
import type { Equal, Expect } from './type-assert.js'

declare const shard: Shardines<ApexDB, TenantDB>

// Parameters declared by annotating p; results inferred from the builder.
const byId = shard.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('items').select(['id', 'name']).where('id', '=', p('id')),
)
export type ByIdIsTyped = Expect<Equal<typeof byId, PreparedQuery<{ id: number }, { id: number; name: string }>>>

export async function usage(): Promise<void> {
  const row = await byId.executeTakeFirst({ id: 1 })
  type RowIsTyped = Expect<Equal<typeof row, { id: number; name: string } | undefined>>
  const rows = await byId.execute({ id: 1 })
  type RowsAreTyped = Expect<Equal<typeof rows, { id: number; name: string }[]>>

  // @ts-expect-error a missing parameter does not compile
  await byId.execute({})
  // @ts-expect-error nor does no argument at all
  await byId.execute()
  // @ts-expect-error a misspelled parameter does not compile
  await byId.execute({ idd: 1 })
  // @ts-expect-error a parameter of the wrong type does not compile
  await byId.execute({ id: 'one' })

  const noParams = shard.prepare((db) => db.selectFrom('items').select('price'))
  const prices = await noParams.execute()
  type PricesAreTyped = Expect<Equal<typeof prices, { price: number | null }[]>>

  const joined = shard.prepare((db, p: Params<{ id: number }>) =>
    db
      .selectFrom('items as i')
      .innerJoin('apex.accounts as a', 'a.id', 'i.id')
      .select(['i.name', 'a.email'])
      .where('i.id', '=', p('id')),
  )
  const joinedRow = await joined.executeTakeFirst({ id: 1 })
  type JoinIsTyped = Expect<Equal<typeof joinedRow, { name: string; email: string } | undefined>>

  const apexQuery = shard.prepareApex((db, p: Params<{ email: string }>) =>
    db.selectFrom('accounts').select('id').where('email', '=', p('email')),
  )
  const apexRow = await apexQuery.executeTakeFirst({ email: 'a@b.c' })
  type ApexIsTyped = Expect<Equal<typeof apexRow, { id: number } | undefined>>

  // @ts-expect-error a parameter name that the annotation does not declare does not compile
  shard.prepare((db, p: Params<{ id: number }>) => db.selectFrom('items').selectAll().where('id', '=', p('idd')))
  // @ts-expect-error a parameter whose declared type does not fit the column does not compile
  shard.prepare((db, p: Params<{ id: string }>) => db.selectFrom('items').selectAll().where('price', '=', p('id')))
  // @ts-expect-error unknown tables do not compile in a prepared query either
  shard.prepare((db) => db.selectFrom('nope').selectAll())
  // @ts-expect-error apex tables are not tenant tables in prepareApex's db
  shard.prepareApex((db) => db.selectFrom('items').selectAll())
}
