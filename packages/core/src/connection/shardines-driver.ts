import {
  type CompiledQuery,
  type ConnectionProvider,
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  SelectQueryNode,
  type TransactionSettings,
} from 'kysely'
import { InvalidOptionsError, TenantScopeClosedError } from '../errors.js'
import type { HandleBinding } from './handle-binding.js'
import { executeOnBinding } from './statement-runner.js'
import { TransactionGate } from './transaction-gate.js'

/**
 * Shardines' side of Kysely's driver interface: the connection Kysely runs
 * statements on ({@link ScopedConnection}), the provider that hands one out
 * per statement, and the driver whose transaction and savepoint methods act
 * on it. Kysely's SQLite driver keeps its connection and driver in one module
 * the same way (`sqlite-driver.ts`).
 */

/** How many rows a buffered stream hands Kysely at a time when the caller names no chunk size. */
const STREAM_CHUNK = 100

/**
 * A Kysely connection onto a shared handle. Its statements go through the
 * statement runner (which waits while another owner holds the handle, refuses
 * a closed scope's objects and attaches what a query needs); its transactions
 * and holds through its {@link TransactionGate}.
 *
 * A connection that begins a transaction or a hold is that transaction's
 * token: Kysely's `trx` runs every statement on it, and code running inside
 * the callback joins it through its async context.
 */
export class ScopedConnection implements DatabaseConnection {
  readonly #binding: HandleBinding
  /** The token this connection's statements run as. */
  readonly owner: object
  /** This connection's transaction or `connection()` hold. */
  readonly gate: TransactionGate

  constructor(binding: HandleBinding, owner?: object) {
    this.#binding = binding
    this.gate = new TransactionGate(binding, owner ?? binding.owner ?? this)
    this.owner = this.gate.owner
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    // Kysely's own words and error class for a transaction used after it ended.
    const ended = this.gate.ended
    if (ended !== null) return Promise.reject(ended())
    return executeOnBinding<R>(this.#binding, this.owner, query)
  }

  /**
   * Streams buffer: the statement runs to completion at once (one synchronous
   * call on a synchronous adapter), then rows are handed out in chunks. So no
   * read lock and no busy connection outlives the call, and the tenant's other
   * scopes are never blocked by a stream left half-read; a later `next()` after
   * the scope ended gets `TenantScopeClosedError`.
   */
  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const binding = this.#binding
    // As Kysely's SQLite driver: only selects stream.
    if (!SelectQueryNode.is(query.query)) throw new Error('Sqlite driver only supports streaming of select queries')
    const { rows } = await this.executeQuery<R>(query)
    const size = chunkSize !== undefined && chunkSize > 0 ? chunkSize : STREAM_CHUNK
    for (let i = 0; i < rows.length; i += size) {
      if (i > 0 && binding.isClosed?.()) throw new TenantScopeClosedError(binding.label)
      yield { rows: rows.slice(i, i + size) }
    }
  }
}

/** Hands Kysely a fresh {@link ScopedConnection} on the binding for every statement. */
export class BindingConnectionProvider implements ConnectionProvider {
  readonly #binding: HandleBinding
  constructor(binding: HandleBinding) {
    this.#binding = binding
  }
  provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    return consumer(new ScopedConnection(this.#binding))
  }
}

/**
 * The Kysely driver shared by every Shardines Kysely instance. Connections are
 * supplied per scope by a connection provider, never by `acquireConnection`;
 * transactions and savepoints are delegated to the {@link ScopedConnection}'s
 * gate, which runs them as real SQL on Shardines' internal path.
 */
export class ShardinesDriver implements Driver {
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    throw new Error('Shardines supplies connections per scope; acquireConnection is never used.')
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await gateOf(connection).begin(settings)
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await gateOf(connection).commit()
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await gateOf(connection).rollback()
  }
  async savepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await gateOf(connection).savepointCommand('savepoint', savepointName, compileQuery)
  }
  async rollbackToSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await gateOf(connection).savepointCommand('rollback to', savepointName, compileQuery)
  }
  async releaseSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await gateOf(connection).savepointCommand('release', savepointName, compileQuery)
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {
    throw new InvalidOptionsError(
      'A Shardines Kysely instance shares its connections with the instance: close them with shard.close(), not db.destroy().',
    )
  }
}

function gateOf(connection: DatabaseConnection): TransactionGate {
  if (connection instanceof ScopedConnection) return connection.gate
  throw new Error('Shardines transactions need a Shardines connection.')
}
