import {
  type ConnectionProvider,
  type DatabaseConnection,
  DefaultQueryExecutor,
  type Dialect,
  Kysely,
  type KyselyPlugin,
  type QueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely'
import { type HandleBinding, ScopedConnection, ShardinesDriver } from './scoped-connection.js'

const driver = new ShardinesDriver()
const adapter = new SqliteAdapter()

/** The Kysely dialect behind every Shardines instance: SQLite, with connections supplied per scope. */
const dialect: Dialect = Object.freeze({
  createDriver: () => driver,
  createQueryCompiler: () => new SqliteQueryCompiler(),
  createAdapter: () => adapter,
  createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
})

const config = Object.freeze({ dialect })

/** Hands Kysely a fresh {@link ScopedConnection} on the binding for every statement or transaction. */
class BindingConnectionProvider implements ConnectionProvider {
  readonly #binding: HandleBinding
  constructor(binding: HandleBinding) {
    this.#binding = binding
  }
  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    return consumer(new ScopedConnection(this.#binding))
  }
}

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
    adapter,
    new BindingConnectionProvider(binding),
    plugins as KyselyPlugin[],
  )
  return new Kysely<DB>({ config, executor, dialect, driver })
}

/** The compiler for databases that attach nothing (apex, migrations). */
export function plainCompiler(): QueryCompiler {
  return new SqliteQueryCompiler()
}
