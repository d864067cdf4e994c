import type { DatabaseConnection, Driver, QueryCompiler, TransactionSettings } from 'kysely'
import { InvalidOptionsError } from '../errors.js'
import { ScopedConnection } from './scoped-connection.js'

/**
 * The Kysely driver shared by every Shardines Kysely instance. Connections are
 * supplied per scope by a connection provider, never by `acquireConnection`;
 * transactions and savepoints are delegated to the {@link ScopedConnection},
 * which runs them as real SQL on Shardines' internal path.
 */
export class ShardinesDriver implements Driver {
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    throw new Error('Shardines supplies connections per scope; acquireConnection is never used.')
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await asScoped(connection).begin(settings)
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await asScoped(connection).commit()
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await asScoped(connection).rollback()
  }
  async savepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await asScoped(connection).savepointCommand('savepoint', savepointName, compileQuery)
  }
  async rollbackToSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await asScoped(connection).savepointCommand('rollback to', savepointName, compileQuery)
  }
  async releaseSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await asScoped(connection).savepointCommand('release', savepointName, compileQuery)
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {
    throw new InvalidOptionsError(
      'A Shardines Kysely instance shares its connections with the instance: close them with shard.close(), not db.destroy().',
    )
  }
}

function asScoped(connection: DatabaseConnection): ScopedConnection {
  if (connection instanceof ScopedConnection) return connection
  throw new Error('Shardines transactions need a Shardines connection.')
}
