import type { Shardines } from '../shardines.js'

/** Any Shardines instance, whatever its database and model types. */
export type AnyShardines = Shardines<any, any, any>

/**
 * What `shardines.config.ts` may export (as its default export) for the
 * `shardines` command (`@shardines/cli`): the instance, or a function that
 * makes it, called only when a command runs.
 *
 * @example
 * ```ts
 * // shardines.config.ts
 * import { createShardines, defineConfig } from '@shardines/core'
 * import { sqliteStorage } from '@shardines/adapter-sqlite'
 *
 * export default defineConfig({
 *   shard: () => createShardines({
 *     storage: sqliteStorage({ dir: './data' }),
 *     migrations: { apex: './migrations/apex', tenant: './migrations/tenant' },
 *   }),
 * })
 * ```
 */
export interface ShardinesConfig<S extends AnyShardines = AnyShardines> {
  readonly shard: S | (() => S | Promise<S>)
}

/** Types a `shardines.config.ts` (see {@link ShardinesConfig}); returns it unchanged. */
export function defineConfig<S extends AnyShardines>(config: ShardinesConfig<S>): ShardinesConfig<S> {
  return config
}
