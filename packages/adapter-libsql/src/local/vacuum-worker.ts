// A worker thread that copies one database with VACUUM INTO (libSQL has no online backup API):
// the copy is one read transaction, and running it here keeps the event loop free meanwhile.
// Through the libsql package (local mode) or @libsql/client (client mode on file: URLs).
import { createRequire } from 'node:module'
import { parentPort, workerData } from 'node:worker_threads'

export interface VacuumJob {
  readonly via: 'libsql' | 'client'
  /** A URI filename (libsql) or a `file:` URL (client). */
  readonly source: string
  readonly dest: string
  readonly busyTimeout: number
  readonly encryptionKey?: string | undefined
}

type Libsql = new (
  path: string,
  options?: { timeout?: number; encryptionKey?: string },
) => { prepare(sql: string): { run(parameters: unknown[]): unknown }; close(): void }

type CreateClient = (config: { url: string; timeout?: number; encryptionKey?: string }) => {
  execute(statement: { sql: string; args: unknown[] }): Promise<unknown>
  close(): void
}

async function vacuum(job: VacuumJob): Promise<void> {
  const require = createRequire(import.meta.url)
  const key = job.encryptionKey === undefined ? {} : { encryptionKey: job.encryptionKey }
  if (job.via === 'libsql') {
    const Database = require('libsql') as Libsql
    const db = new Database(job.source, { timeout: job.busyTimeout, ...key })
    try {
      db.prepare('vacuum main into ?').run([job.dest])
    } finally {
      db.close()
    }
    return
  }
  const { createClient } = require('@libsql/client') as { createClient: CreateClient }
  const client = createClient({ url: job.source, timeout: job.busyTimeout, ...key })
  try {
    await client.execute({ sql: 'vacuum main into ?', args: [job.dest] })
  } finally {
    client.close()
  }
}

if (parentPort !== null) {
  const port = parentPort
  vacuum(workerData as VacuumJob).then(
    () => port.postMessage({ ok: true }),
    (error: unknown) => {
      const e = error as { message?: string; code?: string }
      port.postMessage({ ok: false, message: String(e.message ?? error), code: e.code })
    },
  )
}
