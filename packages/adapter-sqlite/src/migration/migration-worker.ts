// The body of one migration worker thread. It imports the tenant migrations
// itself (functions cannot cross threads), then migrates the tenants the main
// thread hands it, one at a time: open with the adapter's pragmas (busy timeout
// included), apply the pending migrations in one transaction, close the file.
import { parentPort, workerData } from 'node:worker_threads'
import {
  loadMigrations,
  type MigrationSet,
  type MigrationSource,
  runMigrations,
  type SerializedMigrationOutcome,
  serializeError,
  serializeOutcome,
} from '@shardines/core'
import type { SqliteDriver } from '../driver/sqlite-driver.js'
import { SqliteHandle } from '../handles/sqlite-handle.js'
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol.js'

const init = workerData as WorkerInit
const port = parentPort
if (port === null) throw new Error('migration-worker.js runs only as a worker thread.')

const post = (message: ToMain): void => port.postMessage(message)

const driverModule = (await import(init.driver.url)) as Record<string, unknown>
const driver = (driverModule[init.driver.exportName] as () => SqliteDriver)()

async function loadSet(): Promise<MigrationSet> {
  const { source } = init
  if (source.loader !== undefined) {
    const loader = (await import(source.loader)) as { register?: () => unknown }
    loader.register?.()
  }
  let migrations: MigrationSource
  if (source.kind === 'folder') {
    migrations = source.location
  } else {
    const mod = (await import(source.location)) as Record<string, unknown>
    const found = mod.tenant ?? mod.default
    if (found === undefined) {
      throw new Error(`${source.location} exports neither "tenant" nor a default tenant migration source.`)
    }
    migrations = found as MigrationSource
  }
  const set = await loadMigrations(migrations, 'tenant')
  if (set.names.join('\n') !== init.names.join('\n')) {
    throw new Error(
      `a worker loaded the tenant migrations [${set.names.join(', ')}] from ${source.location}, but the main thread has [${init.names.join(', ')}]`,
    )
  }
  return set
}

async function migrate(set: MigrationSet, id: string, file: string): Promise<SerializedMigrationOutcome> {
  const started = performance.now()
  let handle: SqliteHandle
  try {
    const db = driver.open(file, { fileMustExist: true, timeout: init.busyTimeout, name: id })
    handle = new SqliteHandle(id, db, init.statementCacheSize, { driver, file })
    db.exec(init.pragmas)
  } catch (error) {
    return { id, from: null, to: null, status: 'failed', error: { migration: undefined, cause: serializeError(error) } }
  }
  try {
    // The duration goes into the main thread's `migration` events (measured here: the run, not the queue).
    const outcome = serializeOutcome(await runMigrations(handle, id, set, null))
    return { ...outcome, durationMs: performance.now() - started }
  } finally {
    handle.close()
  }
}

try {
  const set = await loadSet()
  // Tasks arrive a few ahead (the main thread keeps each worker's queue topped up)
  // and run one at a time, in order.
  const tasks: Array<{ id: string; file: string }> = []
  let running = false
  let stopping = false
  const pump = async (): Promise<void> => {
    if (running) return
    running = true
    for (let task = tasks.shift(); task !== undefined; task = tasks.shift()) {
      try {
        post({ type: 'done', outcome: await migrate(set, task.id, task.file) })
      } catch (error) {
        post({ type: 'fatal', error: serializeError(error) })
      }
    }
    running = false
    if (stopping) port.close()
  }
  port.on('message', (message: ToWorker) => {
    if (message.type === 'stop') {
      stopping = true
      if (!running) port.close()
      return
    }
    tasks.push(message)
    void pump()
  })
  post({ type: 'ready' })
} catch (error) {
  post({ type: 'fatal', error: serializeError(error) })
  port.close()
}
