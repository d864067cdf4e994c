// Prelude `prepared`: docs/prepared.md's first block, for the blocks after it.
import type { Params } from '@shardines/core'
import { shard } from './src/db/shard.js'

export { shard }

export const byId = shard.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('documents').selectAll().where('id', '=', p('id')),
)
