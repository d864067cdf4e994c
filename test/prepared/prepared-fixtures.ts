// Shared by the prepared-query tests: a shard with apex accounts and seeded tenants.
import type { Params } from '@shardines/core'
import { makeShard } from '../helpers/fixtures.js'

/** A shard with two apex accounts and `perTenant` documents in each of `tenants` ("<id> doc <n>", owners 1 and 2 in turn). */
export async function seeded(tenants: string[], perTenant = 3, options: Parameters<typeof makeShard>[0] = {}) {
  const made = await makeShard(options)
  const { shard } = made
  await shard.apex
    .insertInto('accounts')
    .values([{ email: 'ada@apex.test' }, { email: 'bob@apex.test' }])
    .execute()
  for (const id of tenants) {
    await shard.tenants.create(id)
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values(
          Array.from({ length: perTenant }, (_, i) => ({
            title: `${id} doc ${i + 1}`,
            owner_id: (i % 2) + 1,
            status: 'open',
          })),
        )
        .execute(),
    )
  }
  return made
}

/** A prepared tenant query that joins apex: a document's title with its owner's email, by document id. */
export function withOwnerQuery(shard: Awaited<ReturnType<typeof makeShard>>['shard']) {
  return shard.prepare((db, p: Params<{ id: number }>) =>
    db
      .selectFrom('documents as d')
      .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
      .select(['d.title', 'a.email'])
      .where('d.id', '=', p('id')),
  )
}
