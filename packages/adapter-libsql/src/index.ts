// @shardines/adapter-libsql: Shardines on libSQL, in two modes behind one libsqlStorage().

import type { SqliteStorageOptions } from '@shardines/adapter-sqlite'
import { createSqliteFamilyStorage } from '@shardines/adapter-sqlite/engine'
import { InvalidOptionsError, type StorageAdapter } from '@shardines/core'
import { LibsqlClientStorage, type LibsqlClientStorageOptions } from './client/client-storage.js'
import { type EncryptionKeys, libsqlDriver } from './local/libsql-driver.js'

/**
 * `mode: 'local'`: tenant files on this machine through the `libsql` package
 * (libSQL's synchronous, better-sqlite3-like API), with everything
 * `@shardines/adapter-sqlite` does on better-sqlite3: file layout (flat or
 * hashed), the handle pool, pragmas, atomic create, destroy, rename, archive,
 * restore, backup, fork, doctor and worker-thread migrations. Attached
 * databases are opened read-only by SQLite itself (URI `mode=ro`), behind
 * the statement guard.
 */
export interface LibsqlLocalStorageOptions extends SqliteStorageOptions {
  readonly mode: 'local'
  /**
   * libSQL's encryption at rest: one key for every database of the storage,
   * or `(name) => key` per database (`'apex'` or a tenant id; undefined: not
   * encrypted). Worker-thread migrations are off with encryption (a key
   * resolver cannot cross to a worker): `migrate.all` runs on the main thread.
   */
  readonly encryptionKey?: EncryptionKeys | undefined
  /** `'delete'` (the default), `'truncate'` or `'persist'`; `'wal'` is refused (see the README). */
  readonly journalMode?: Exclude<SqliteStorageOptions['journalMode'], 'wal'>
  /** As `journalMode`, for apex; default `'delete'` here. */
  readonly apexJournalMode?: Exclude<SqliteStorageOptions['apexJournalMode'], 'wal'>
}

export type LibsqlStorageOptions = LibsqlLocalStorageOptions | LibsqlClientStorageOptions

/**
 * The libSQL storage adapter.
 *
 * @example
 * ```ts
 * // Local files through the libsql package:
 * libsqlStorage({ mode: 'local', dir: './data', maxOpen: 256 })
 * // One database per tenant through @libsql/client (sqld, Turso, or file: URLs):
 * libsqlStorage({
 *   mode: 'client',
 *   url: 'libsql://{tenant}-myorg.turso.io',
 *   apexUrl: 'libsql://apex-myorg.turso.io',
 *   authToken: process.env.TURSO_TOKEN,
 *   provisioner: tursoProvisioner,
 * })
 * ```
 */
export function libsqlStorage(options: LibsqlStorageOptions): StorageAdapter {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('libsqlStorage(options) needs an options object with mode "local" or "client".')
  }
  if (options.mode === 'local') {
    const { mode: _mode, encryptionKey, ...sqlite } = options
    for (const key of ['journalMode', 'apexJournalMode'] as const) {
      if ((sqlite[key] as string | undefined) === 'wal') {
        throw new InvalidOptionsError(
          `libsqlStorage({ mode: 'local', ${key}: 'wal' }) is refused: libsql 0.5 keeps a WAL database's files open after close() until its objects are garbage-collected, and a destroyed or renamed tenant's WAL then breaks the next open of that name ("disk I/O error"). Use 'delete' (the default here), or @shardines/adapter-sqlite for WAL.`,
        )
      }
    }
    return createSqliteFamilyStorage(
      {
        kind: 'libsql',
        driver: libsqlDriver({ encryptionKey, busyTimeout: sqlite.busyTimeout }),
        without: encryptionKey === undefined ? [] : ['workerMigrations'],
      },
      { ...sqlite, apexJournalMode: sqlite.apexJournalMode ?? 'delete' },
    )
  }
  if (options.mode === 'client') return new LibsqlClientStorage(options)
  throw new TypeError(
    `libsqlStorage({ mode }) must be "local" or "client", not ${JSON.stringify((options as { mode?: unknown }).mode)}.`,
  )
}

export type { LibsqlClientStorageOptions } from './client/client-storage.js'
export type { TenantProvisioner } from './client/provisioner.js'
export { type EncryptionKeys, libsqlDriver } from './local/libsql-driver.js'
