import * as fs from 'node:fs'
import { Worker } from 'node:worker_threads'
import type { VacuumJob } from './vacuum-worker.js'

const VACUUM_WORKER = new URL('./vacuum-worker.js', import.meta.url)

/** Runs VACUUM INTO for `job` on a worker thread; rejects with the worker's error (its code kept). */
export function vacuumInto(job: VacuumJob): Promise<void> {
  if (fs.existsSync(job.dest)) return Promise.reject(new Error(`backup destination exists: ${job.dest}`))
  return new Promise<void>((resolve, reject) => {
    const worker = new Worker(VACUUM_WORKER, { workerData: job })
    let settled = false
    worker.once('message', (message: { ok: boolean; message?: string; code?: string }) => {
      settled = true
      if (message.ok) resolve()
      else reject(Object.assign(new Error(message.message), { code: message.code }))
    })
    worker.once('error', (error) => {
      settled = true
      reject(error)
    })
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the backup worker exited with code ${code}`))
    })
  })
}
