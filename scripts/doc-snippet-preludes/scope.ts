// Prelude `scope`: what `shard` gives, plus `t`, the scope `shard.withTenant('acme', async (t) => …)`
// passes: for snippets that show lines from inside such a callback.
import type { shard } from './src/db/shard.js'

export type { ApexDB } from './db/apex.js'
export type { TenantDB } from './db/tenant.js'
export { models, shard, storage } from './src/db/shard.js'

export declare const t: Parameters<Parameters<typeof shard.withTenant>[1]>[0]
