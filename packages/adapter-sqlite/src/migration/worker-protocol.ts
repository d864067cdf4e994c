import type { SerializedError, SerializedMigrationOutcome, WorkerMigrationSource } from '@shardines/core'

/** What each migration worker starts with (`workerData`). */
export interface WorkerInit {
  readonly source: WorkerMigrationSource
  /** The names the main thread loaded; the worker refuses to run others. */
  readonly names: readonly string[]
  /** Pragmas run at every open (busy timeout, foreign keys, synchronous, user pragmas). */
  readonly pragmas: string
  readonly busyTimeout: number
  readonly statementCacheSize: number
  /** Where the worker gets the SQLite driver (see `SqliteDriver.workerModule`). */
  readonly driver: { readonly url: string; readonly exportName: string }
}

export type ToWorker = { readonly type: 'task'; readonly id: string; readonly file: string } | { readonly type: 'stop' }

export type ToMain =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly outcome: SerializedMigrationOutcome }
  | { readonly type: 'fatal'; readonly error: SerializedError }
