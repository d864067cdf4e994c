import { Worker } from 'node:worker_threads'
import type { SerializedError, WorkerMigrationJob } from '@shardines/core'
import type { ToMain, ToWorker, WorkerInit } from './worker-protocol.js'

/** How the runner opens tenant files: the same pragmas and paths as the adapter's pool. */
export interface WorkerRunnerConfig {
  readonly fileOf: (tenantId: string) => string
  readonly pragmas: string
  readonly busyTimeout: number
  readonly statementCacheSize: number
  readonly driver: WorkerInit['driver']
}

const WORKER_URL = new URL('./migration-worker.js', import.meta.url)
/**
 * Tenants handed to a worker ahead of its results: two, so a worker never
 * waits for a message round trip between tenants, and a crash or an abort
 * concerns at most two tenants per worker.
 */
const PREFETCH = 2

/**
 * Migrates `job.ids` on `job.workers` worker threads. Work is pulled: a worker
 * holds at most {@link PREFETCH} tenants and gets the next when it reports one,
 * so slow tenants never hold up a queue, and an abort stops handing out tenants at once. A worker that dies
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
    driver: config.driver,
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
      // Tenants sent to this worker and not yet reported, oldest first.
      const inFlight: string[] = []
      let stopped = false
      const send = (message: ToWorker) => worker.postMessage(message)
      const topUp = (): void => {
        while (inFlight.length < PREFETCH && !failed && !job.signal?.aborted) {
          const id = queue.pop()
          if (id === undefined) break
          inFlight.push(id)
          send({ type: 'task', id, file: config.fileOf(id) })
        }
        if (inFlight.length === 0 && !stopped) {
          stopped = true
          send({ type: 'stop' })
        }
      }
      const crashed = (message: string, error?: Error): void => {
        for (const id of inFlight.splice(0)) {
          job.onOutcome({
            id,
            from: null,
            to: null,
            status: 'failed',
            error: { migration: undefined, cause: { name: error?.name ?? 'Error', message, stack: error?.stack } },
          })
        }
      }
      worker.on('message', (message: ToMain) => {
        if (message.type === 'ready') return topUp()
        if (message.type === 'done') {
          const at = inFlight.indexOf(message.outcome.id)
          if (at >= 0) inFlight.splice(at, 1)
          job.onOutcome(message.outcome)
          return topUp()
        }
        failed ??= rebuild(message.error)
        for (const w of all) void w.terminate()
      })
      worker.on('error', (error) => crashed(`the migration worker crashed: ${error.message}`, error))
      worker.on('exit', (code) => {
        all.delete(worker)
        running--
        crashed(`the migration worker exited with code ${code}`)
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
