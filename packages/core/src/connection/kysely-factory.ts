import { DefaultQueryExecutor, type Kysely, type KyselyPlugin, type QueryCompiler } from 'kysely'
import { ENGINE_ADAPTER, EngineQueryCompiler } from '../storage/sqlite-engine.js'
import type { HandleBinding } from './handle-binding.js'
import { ShardinesKysely } from './scoped-kysely.js'
import { BindingConnectionProvider } from './shardines-driver.js'

/**
 * Builds a Kysely instance over one handle binding. Cheap (a few objects), so
 * each scope gets its own: the binding decides which handle, which owner, and
 * when the instance stops working.
 */
export function createBoundKysely<DB>(
  binding: HandleBinding,
  compiler: QueryCompiler,
  plugins: readonly KyselyPlugin[],
): Kysely<DB> {
  const executor = new DefaultQueryExecutor(
    compiler,
    ENGINE_ADAPTER,
    new BindingConnectionProvider(binding),
    plugins as KyselyPlugin[],
  )
  return new ShardinesKysely<DB>(binding, executor)
}

/** The compiler for databases that attach nothing (apex, migrations). */
export function plainCompiler(): QueryCompiler {
  return new EngineQueryCompiler()
}
