import { Worker } from 'node:worker_threads'
import type { SerializedError, WorkerMigrationJob } from '@shardines/core'
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol.js'

/** How the runner opens tenant files: the same pragmas and paths as the adapter's pool. */
export interface WorkerRunnerConfig {
  readonly fileOf: (tenantId: string) => string
  readonly pragmas: string
  readonly busyTimeout: number
  readonly statementCacheSize: number
}

const WORKER_URL = new URL('./migration-worker.js', import.meta.url)

/**
 * Migrates `job.ids` on `job.workers` worker threads. Work is pulled: a worker
 * gets its next tenant when it reports the last, so slow tenants never hold up
 * a queue, and an abort stops handing out tenants at once. A worker that dies
 * mid-tenant (a crash in a migration, out of memory) has that tenant reported
 * failed and is replaced; the tenant's own transaction was never committed.
 * Rejects only when the migrations cannot be loaded in a worker.
 */
export function runWorkerMigrations(job: WorkerMigrationJob, config: WorkerRunnerConfig): Promise<void> {
  const init: WorkerInit = {
    source: job.source,
    names: [...job.names],
    pragmas: config.pragmas,
    busyTimeout: config.busyTimeout,
    statementCacheSize: config.statementCacheSize,
  }
  const queue = [...job.ids].reverse()
  let replacements = job.workers * 2
  let running = 0
  return new Promise<void>((resolve, reject) => {
    let failed: Error | undefined
    const all = new Set<Worker>()
    const finish = (): void => {
      if (running > 0) return
      if (failed) reject(failed)
      else if (!job.signal?.aborted && queue.length > 0) {
        reject(new Error(`the migration workers kept exiting; ${queue.length} tenants were not migrated`))
      } else resolve()
    }
    const start = (): void => {
      const worker = new Worker(WORKER_URL, { workerData: init })
      all.add(worker)
      running++
      let current: string | undefined
      const send = (message: ToWorker) => worker.postMessage(message)
      const next = (): void => {
        const id = failed || job.signal?.aborted ? undefined : queue.pop()
        current = id
        if (id === undefined) send({ type: 'stop' })
        else send({ type: 'task', id, file: config.fileOf(id) })
      }
      worker.on('message', (message: ToMain) => {
        if (message.type === 'ready') return next()
        if (message.type === 'done') {
          current = undefined
          job.onOutcome(message.outcome)
          return next()
        }
        failed ??= rebuild(message.error)
        for (const w of all) void w.terminate()
      })
      worker.on('error', (error) => {
        if (current !== undefined) {
          job.onOutcome({
            id: current,
            from: null,
            to: null,
            status: 'failed',
            error: {
              migration: undefined,
              cause: {
                name: error.name,
                message: `the migration worker crashed: ${error.message}`,
                stack: error.stack,
              },
            },
          })
          current = undefined
        }
      })
      worker.on('exit', (code) => {
        all.delete(worker)
        running--
        if (current !== undefined) {
          job.onOutcome({
            id: current,
            from: null,
            to: null,
            status: 'failed',
            error: {
              migration: undefined,
              cause: { name: 'Error', message: `the migration worker exited with code ${code}` },
            },
          })
          current = undefined
        }
        if (!failed && !job.signal?.aborted && queue.length > 0 && running < job.workers && replacements-- > 0) start()
        finish()
      })
    }
    for (let i = 0; i < Math.max(1, job.workers); i++) start()
  })
}

function rebuild(serialized: SerializedError): Error {
  const error = new Error(`A migration worker could not start: ${serialized.message}`)
  if (serialized.stack !== undefined) error.stack = serialized.stack
  return error
}
