/**
 * The storage behaviour suite's targets for `@shardines/adapter-libsql`: local
 * mode (the `libsql` package on the same file layout as adapter-sqlite) and
 * client mode (`@libsql/client` on `file:` URLs, one database per tenant at
 * `<dir>/tenants/<id>.db`). The suite's view of the storage goes through the
 * `libsql` package itself.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { libsqlStorage } from '@shardines/adapter-libsql'
import type { StorageBehaviourTarget, StorageTestSupport, StoredFile } from '@shardines/core'
import Libsql from 'libsql'
import { mainFileOf, openPathsUnder } from '../../helpers/open-files.js'
import { snapshotTree } from '../../helpers/tree-snapshot.js'
import { sqliteFileOf, sqliteOptionsFor } from './sqlite-target.js'

/** Rows of `sql` on a separate libsql connection to `file` (which must exist: libsql would create it). */
function readRows(file: string, sql: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) throw new Error(`no database at ${file}`)
  const db = new Libsql(file)
  try {
    const rows = db.prepare(sql).all() as Record<string, unknown>[]
    for (const row of rows) delete row._metadata
    return rows
  } finally {
    db.close()
  }
}

function supportFor(
  fileOf: (dir: string, name: string) => string,
  isApex: (file: string) => boolean,
): StorageTestSupport {
  return {
    async rawRows(dir, name, sql) {
      return readRows(fileOf(dir, name), sql)
    },
    async rowsOfCopy(file, sql) {
      return readRows(file, sql)
    },
    async corrupt(dir, tenantId) {
      fs.writeFileSync(fileOf(dir, tenantId), 'x'.repeat(4096))
    },
    async remove(dir, tenantId) {
      const file = fileOf(dir, tenantId)
      for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) fs.rmSync(f, { force: true })
    },
    openTenantDatabases(dir) {
      const paths = openPathsUnder(dir)
      if (paths === undefined) return undefined
      return new Set(paths.map(mainFileOf).filter((f) => !isApex(f))).size
    },
    storedFiles(dir) {
      return snapshotTree(dir, { sizes: true }).map((entry): StoredFile => {
        if (entry.endsWith('/')) return { path: entry }
        const at = entry.lastIndexOf(' ')
        return { path: entry.slice(0, at), size: Number(entry.slice(at + 1)) }
      })
    },
  }
}

/** Local mode: adapter-sqlite's storage on the libsql driver (same layout; the rollback journal only: WAL is refused). */
export const libsqlLocalTarget: StorageBehaviourTarget = {
  name: 'libsql local',
  create: (dir, options) => {
    const { journalMode, apexJournalMode, ...rest } = sqliteOptionsFor(dir, options)
    if (journalMode === 'wal' || apexJournalMode === 'wal') throw new Error('libsql local refuses WAL')
    return libsqlStorage({ mode: 'local', ...rest, ...(journalMode === undefined ? {} : { journalMode }) })
  },
  variants: ['delete journal'],
  support: {
    ...supportFor(sqliteFileOf, (f) => /apex/.test(path.basename(f))),
    // libsql 0.5 closes a connection's file only once its statement objects are garbage-collected
    // (tested in libsql-local.test.ts): the descriptors this process holds run ahead of the pool's
    // count between collections, so they cannot check it.
    openTenantDatabases: undefined,
  },
}

/** Where client mode keeps `name` in the target's folder. */
export function clientFileOf(dir: string, name: string): string {
  return name === 'apex' ? path.join(dir, 'apex.db') : path.join(dir, 'tenants', `${name}.db`)
}

/** Client mode on `file:` URLs: asynchronous handles, the adapter's own file provisioner. */
export const libsqlClientTarget: StorageBehaviourTarget = {
  name: 'libsql client',
  create: (dir, options) =>
    libsqlStorage({
      mode: 'client',
      url: `file:${path.join(dir, 'tenants')}/{tenant}.db`,
      apexUrl: `file:${clientFileOf(dir, 'apex')}`,
      ...(options?.maxOpen === undefined ? {} : { maxOpen: options.maxOpen }),
      ...(options?.unsynced === true ? { synchronous: 'off' as const } : {}),
    }),
  support: {
    ...supportFor(clientFileOf, (f) => path.basename(f) === 'apex.db'),
    // As in local mode, libsql releases a closed connection's file at garbage collection; the
    // client mode also keeps a second connection per handle for the guard's EXPLAIN.
    openTenantDatabases: undefined,
  },
}
