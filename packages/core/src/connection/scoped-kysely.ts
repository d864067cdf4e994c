import {
  type AccessMode,
  CompiledQuery,
  type ConnectionBuilder,
  ControlledTransaction,
  type ControlledTransactionBuilder,
  type IsolationLevel,
  Kysely,
  type KyselyPlugin,
  type QueryExecutor,
  SingleConnectionProvider,
  Transaction,
  type TransactionBuilder,
  type TransactionSettings,
  validateTransactionSettings,
  WithSchemaPlugin,
} from 'kysely'
import { InvalidOptionsError } from '../errors.js'
import { savepointSql } from '../storage/sqlite-engine.js'
import { enclosingOwner, type HandleBinding } from './handle-binding.js'
import { KYSELY_PARTS } from './shardines-dialect.js'
import { ScopedConnection } from './shardines-driver.js'
import { runInternal } from './statement-runner.js'

/**
 * The Kysely instance of a scope (`t.db`, `shard.db()`, `shard.apex`): Kysely
 * itself, with transactions, controlled transactions and `connection()` that
 * belong to an async context. A transaction's callback (and everything it
 * awaits) runs inside the transaction, whether it uses `trx` or `t.db`;
 * statements from anywhere else wait for it to end, as they wait for Kysely's
 * single SQLite connection. A transaction begun inside another one's callback
 * becomes a savepoint instead of waiting for itself.
 */
export class ShardinesKysely<DB> extends Kysely<DB> {
  readonly #binding: HandleBinding

  constructor(binding: HandleBinding, executor: QueryExecutor) {
    super({ ...KYSELY_PARTS, executor })
    this.#binding = binding
  }

  override transaction(): TransactionBuilder<DB> {
    return new ScopedTransactionBuilder<DB>(this.#binding, this.getExecutor(), {}) as unknown as TransactionBuilder<DB>
  }

  override startTransaction(): ControlledTransactionBuilder<DB> {
    return new ScopedControlledTransactionBuilder<DB>(
      this.#binding,
      this.getExecutor(),
      {},
    ) as unknown as ControlledTransactionBuilder<DB>
  }

  override connection(): ConnectionBuilder<DB> {
    return new ScopedConnectionBuilder<DB>(this.#binding, this.getExecutor()) as unknown as ConnectionBuilder<DB>
  }

  override withPlugin(plugin: KyselyPlugin): Kysely<DB> {
    return new ShardinesKysely<DB>(this.#binding, this.getExecutor().withPlugin(plugin))
  }

  override withoutPlugins(): Kysely<DB> {
    return new ShardinesKysely<DB>(this.#binding, this.getExecutor().withoutPlugins())
  }

  override withSchema(schema: string): Kysely<DB> {
    return new ShardinesKysely<DB>(this.#binding, this.getExecutor().withPluginAtFront(new WithSchemaPlugin(schema)))
  }

  override withTables<T extends Record<string, Record<string, any>>>(): Kysely<DB & T> {
    return new ShardinesKysely<DB & T>(this.#binding, this.getExecutor())
  }

  /** Refused: the connections belong to the Shardines instance (`shard.close()` closes them). */
  override async destroy(): Promise<void> {
    throw new InvalidOptionsError(
      `db.destroy() on "${this.#binding.label}": a Shardines Kysely instance does not own its connections. Close them all with shard.close().`,
    )
  }
}

/** A `Transaction` whose every statement runs on `connection`. */
function transactionOn<DB>(executor: QueryExecutor, connection: ScopedConnection): Transaction<DB> {
  return new Transaction<DB>({
    ...KYSELY_PARTS,
    executor: executor.withConnectionProvider(new SingleConnectionProvider(connection)),
  })
}

/** What Kysely's two transaction builders share: settings set one at a time, each giving a new builder. */
abstract class SettingsBuilder<Self> {
  protected readonly binding: HandleBinding
  protected readonly executor: QueryExecutor
  protected readonly settings: TransactionSettings

  constructor(binding: HandleBinding, executor: QueryExecutor, settings: TransactionSettings) {
    this.binding = binding
    this.executor = executor
    this.settings = Object.freeze(settings)
  }

  protected abstract with(settings: TransactionSettings): Self

  setAccessMode(accessMode: AccessMode): Self {
    return this.with({ ...this.settings, accessMode })
  }

  setIsolationLevel(isolationLevel: IsolationLevel): Self {
    return this.with({ ...this.settings, isolationLevel })
  }
}

/** `db.transaction()`: Kysely's builder, with the callback run inside the transaction's async context. */
class ScopedTransactionBuilder<DB> extends SettingsBuilder<ScopedTransactionBuilder<DB>> {
  protected with(settings: TransactionSettings): ScopedTransactionBuilder<DB> {
    return new ScopedTransactionBuilder(this.binding, this.executor, settings)
  }

  async execute<T>(callback: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    validateTransactionSettings(this.settings)
    const binding = this.binding
    const outer = enclosingOwner(binding)
    if (outer !== undefined && binding.state.inTransaction) {
      return savepointTransaction(binding, this.executor, outer, callback)
    }
    const connection = new ScopedConnection(binding, outer)
    let begun = false
    try {
      await connection.gate.begin(this.settings)
      begun = true
      const trx = transactionOn<DB>(this.executor, connection)
      const result = await binding.runInFrame(connection.owner, () => callback(trx))
      await connection.gate.commit()
      return result
    } catch (error) {
      if (begun) await connection.gate.rollback()
      throw error
    }
  }
}

/**
 * A transaction begun inside another one's async context: a savepoint of
 * the open transaction (Kysely on one SQLite connection would wait for itself).
 */
async function savepointTransaction<DB, T>(
  binding: HandleBinding,
  executor: QueryExecutor,
  owner: object,
  callback: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const name = `shardines_${++binding.state.savepoints}`
  await runInternal(binding, CompiledQuery.raw(savepointSql('savepoint', name)))
  let result: T
  try {
    result = await binding.runInFrame(owner, () =>
      callback(transactionOn<DB>(executor, new ScopedConnection(binding, owner))),
    )
  } catch (error) {
    await runInternal(binding, CompiledQuery.raw(savepointSql('rollback to', name)))
    await runInternal(binding, CompiledQuery.raw(savepointSql('release', name)))
    throw error
  }
  await runInternal(binding, CompiledQuery.raw(savepointSql('release', name)))
  return result
}

/** `db.startTransaction()`: a controlled transaction that ends with its scope at the latest. */
class ScopedControlledTransactionBuilder<DB> extends SettingsBuilder<ScopedControlledTransactionBuilder<DB>> {
  protected with(settings: TransactionSettings): ScopedControlledTransactionBuilder<DB> {
    return new ScopedControlledTransactionBuilder(this.binding, this.executor, settings)
  }

  async execute(): Promise<ControlledTransaction<DB>> {
    validateTransactionSettings(this.settings)
    const binding = this.binding
    const outer = enclosingOwner(binding)
    if (outer !== undefined && binding.state.inTransaction) {
      throw new InvalidOptionsError(
        `startTransaction() on "${binding.label}" inside an open transaction of the same tenant would wait for it forever. Use that transaction's savepoints, or t.transaction(fn), which nests as a savepoint.`,
      )
    }
    const connection = new ScopedConnection(binding, outer)
    await connection.gate.begin(this.settings)
    return new ControlledTransaction<DB>({
      ...KYSELY_PARTS,
      executor: this.executor.withConnectionProvider(new SingleConnectionProvider(connection)),
      connection: Object.freeze({ connection, release: () => undefined }),
      // Kysely 0.29 keeps the transaction's status in its props (0.28 ignores it).
      transactionState: { status: 'active' },
    } as ConstructorParameters<typeof ControlledTransaction>[0])
  }
}

/** `db.connection()`: the handle is the callback's alone until it settles. */
class ScopedConnectionBuilder<DB> {
  readonly #binding: HandleBinding
  readonly #executor: QueryExecutor

  constructor(binding: HandleBinding, executor: QueryExecutor) {
    this.#binding = binding
    this.#executor = executor
  }

  async execute<T>(callback: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    const binding = this.#binding
    const onConnection = (connection: ScopedConnection) =>
      new ShardinesKysely<DB>(binding, this.#executor.withConnectionProvider(new SingleConnectionProvider(connection)))
    const outer = enclosingOwner(binding)
    // Already inside a transaction or connection() of this handle: the handle is ours already.
    if (outer !== undefined) return await callback(onConnection(new ScopedConnection(binding, outer)))
    const connection = new ScopedConnection(binding)
    await connection.gate.hold()
    try {
      return await binding.runInFrame(connection.owner, () => callback(onConnection(connection)))
    } finally {
      connection.gate.release()
    }
  }
}
