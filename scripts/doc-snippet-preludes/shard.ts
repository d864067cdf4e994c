// Prelude `shard`: the instance the docs call `shard` (docs/models.md's, in src/db/shard.ts),
// its models and storage, and the generated database types.
export type { ApexDB } from './db/apex.js'
export type { TenantDB } from './db/tenant.js'
export { models, shard, storage } from './src/db/shard.js'
