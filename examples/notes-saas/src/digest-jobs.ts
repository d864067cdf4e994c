/**
 * Background work that keeps its tenant: a "digest" job per tenant on plainjob,
 * a job queue on its own SQLite file (no server). The request that enqueues a
 * job captures its tenant with `shard.jobContext()`; the worker runs the job
 * with `shard.runJob(ctx, fn)`, which validates the context again (a payload
 * read back from a queue is untrusted) and runs `fn` in that tenant's scope.
 */
import Database from 'better-sqlite3'
import { better, defineQueue, defineWorker, type Job, type Queue } from 'plainjob'
import type { NotesShard } from './shard.js'

/** What a digest job stores: the tenant's job context and when it was asked for. */
interface DigestPayload {
  readonly ctx: unknown
  readonly requestedAt: string
}

export interface DigestJobs {
  /** Enqueues a digest of the current tenant's notes (call inside its scope); resolves to the job id. */
  enqueue(): number
  /** Starts the worker (polling every `pollMs`). */
  start(): void
  /** Stops the worker after its current job, and closes the queue. */
  stop(): Promise<void>
}

const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

/**
 * Digest jobs on the queue file `queueFile`. A digest counts the tenant's notes
 * and adds a note "Digest: N notes", written by the tenant's owner.
 */
export function digestJobs(
  shard: NotesShard,
  queueFile: string,
  options: { pollMs?: number; onDone?: (job: number, error?: string) => void } = {},
): DigestJobs {
  const queue: Queue = defineQueue({ connection: better(new Database(queueFile)), logger: silent })
  const worker = defineWorker(
    'digest',
    async (job: Job) => {
      const payload = JSON.parse(job.data) as DigestPayload
      await shard.runJob(payload.ctx, async (t) => {
        const owner = await shard.apex
          .selectFrom('tenants')
          .select('owner_id')
          .where('id', '=', t.id)
          .executeTakeFirstOrThrow()
        const { n } = await t.db
          .selectFrom('notes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
        await t.db
          .insertInto('notes')
          .values({
            title: `Digest: ${n} notes`,
            body: `asked for at ${payload.requestedAt}`,
            author_id: owner.owner_id,
          })
          .execute()
      })
    },
    {
      queue,
      pollIntervall: options.pollMs ?? 200,
      logger: silent,
      onCompleted: (job) => options.onDone?.(job.id),
      onFailed: (job, error) => options.onDone?.(job.id, error),
    },
  )
  let running: Promise<void> | undefined
  return {
    enqueue: () => queue.add('digest', { ctx: shard.jobContext(), requestedAt: new Date().toISOString() }).id,
    start: () => {
      running ??= worker.start()
    },
    stop: async () => {
      if (running !== undefined) await worker.stop()
      queue.close()
    },
  }
}
