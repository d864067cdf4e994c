// Type tests for synchronous prepared reads (executeSync, executeTakeFirstSync): what must compile,
// and (under @ts-expect-error) what must not.
import type { Params, PreparedQuery, Shardines } from '@shardines/core'
import type { ApexDB, TenantDB } from './items-schema.js'
import type { Equal, Expect } from './type-assert.js'

declare const shard: Shardines<ApexDB, TenantDB>

const byId = shard.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('items').select(['id', 'name']).where('id', '=', p('id')),
)

// The methods on the interface: plain values, never promises.
type Q = PreparedQuery<{ id: number }, { name: string }>
export type SyncReturnsRows = Expect<Equal<ReturnType<Q['executeSync']>, { name: string }[]>>
export type SyncFirstReturnsRowOrUndefined = Expect<
  Equal<ReturnType<Q['executeTakeFirstSync']>, { name: string } | undefined>
>
// The same arguments as the asynchronous methods.
export type SameArgsAsExecute = Expect<Equal<Parameters<Q['executeSync']>, Parameters<Q['execute']>>>
export type SameArgsAsExecuteTakeFirst = Expect<
  Equal<Parameters<Q['executeTakeFirstSync']>, Parameters<Q['executeTakeFirst']>>
>
export type ArgsRequiredWithParams = Expect<Equal<Parameters<Q['executeSync']>, [args: { id: number }]>>
type NoParamsQ = PreparedQuery<{}, { name: string }>
export type ArgsOptionalWithoutParams = Expect<Equal<Parameters<NoParamsQ['executeSync']>, [args?: {}]>>
export type ArgsOptionalWithoutParamsFirst = Expect<Equal<Parameters<NoParamsQ['executeTakeFirstSync']>, [args?: {}]>>

export function usage(): void {
  const rows = byId.executeSync({ id: 1 })
  type RowsAreTyped = Expect<Equal<typeof rows, { id: number; name: string }[]>>
  const row = byId.executeTakeFirstSync({ id: 1 })
  type RowIsTyped = Expect<Equal<typeof row, { id: number; name: string } | undefined>>

  // @ts-expect-error a missing parameter does not compile
  byId.executeSync({})
  // @ts-expect-error nor does no argument at all
  byId.executeSync()
  // @ts-expect-error a misspelled parameter does not compile
  byId.executeSync({ idd: 1 })
  // @ts-expect-error a parameter of the wrong type does not compile
  byId.executeSync({ id: 'one' })
  // @ts-expect-error an extra parameter does not compile
  byId.executeSync({ id: 1, extra: 2 })
  // @ts-expect-error null is not a number either
  byId.executeSync({ id: null })

  // @ts-expect-error a missing parameter does not compile (first row)
  byId.executeTakeFirstSync({})
  // @ts-expect-error nor does no argument at all (first row)
  byId.executeTakeFirstSync()
  // @ts-expect-error a misspelled parameter does not compile (first row)
  byId.executeTakeFirstSync({ idd: 1 })
  // @ts-expect-error a parameter of the wrong type does not compile (first row)
  byId.executeTakeFirstSync({ id: '1' })

  // @ts-expect-error the result is not a promise: it has no then
  void byId.executeSync({ id: 1 }).then
  // @ts-expect-error a row is not an array
  void byId.executeTakeFirstSync({ id: 1 })?.length
  // @ts-expect-error the first row may be undefined: reading it needs a check
  void byId.executeTakeFirstSync({ id: 1 }).name

  const several = shard.prepare((db, p: Params<{ lo: number; name: string }>) =>
    db.selectFrom('items').select('price').where('id', '>=', p('lo')).where('name', '!=', p('name')),
  )
  const prices = several.executeSync({ lo: 1, name: 'x' })
  type PricesAreTyped = Expect<Equal<typeof prices, { price: number | null }[]>>
  // @ts-expect-error every declared parameter is needed
  several.executeSync({ lo: 1 })
  // @ts-expect-error each with its declared type
  several.executeTakeFirstSync({ lo: 1, name: 2 })

  // No parameters: no argument needed.
  const noParams = shard.prepare((db) => db.selectFrom('items').select('name'))
  const names = noParams.executeSync()
  type NamesAreTyped = Expect<Equal<typeof names, { name: string }[]>>
  const firstName = noParams.executeTakeFirstSync()
  type FirstNameIsTyped = Expect<Equal<typeof firstName, { name: string } | undefined>>

  const joined = shard.prepare((db, p: Params<{ id: number }>) =>
    db
      .selectFrom('items as i')
      .innerJoin('apex.accounts as a', 'a.id', 'i.id')
      .select(['i.name', 'a.email'])
      .where('i.id', '=', p('id')),
  )
  const joinedRows = joined.executeSync({ id: 1 })
  type JoinIsTyped = Expect<Equal<typeof joinedRows, { name: string; email: string }[]>>
  const joinedRow = joined.executeTakeFirstSync({ id: 1 })
  type JoinFirstIsTyped = Expect<Equal<typeof joinedRow, { name: string; email: string } | undefined>>

  const apexQuery = shard.prepareApex((db, p: Params<{ email: string }>) =>
    db.selectFrom('accounts').select('id').where('email', '=', p('email')),
  )
  const apexRow = apexQuery.executeTakeFirstSync({ email: 'a@b.c' })
  type ApexIsTyped = Expect<Equal<typeof apexRow, { id: number } | undefined>>
  const apexRows = apexQuery.executeSync({ email: 'a@b.c' })
  type ApexRowsAreTyped = Expect<Equal<typeof apexRows, { id: number }[]>>
  // @ts-expect-error apex parameters are checked too
  apexQuery.executeSync({ email: 1 })
  // @ts-expect-error and required
  apexQuery.executeTakeFirstSync()

  const apexAll = shard.prepareApex((db) => db.selectFrom('accounts').select('email'))
  const emails = apexAll.executeSync()
  type EmailsAreTyped = Expect<Equal<typeof emails, { email: string }[]>>
}
