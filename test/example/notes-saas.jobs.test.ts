// The example app's background digests (examples/notes-saas/src/digest-jobs.ts):
// POST /t/<tenant>/digest enqueues a job on plainjob with the tenant's job
// context; the worker runs it in that tenant, whichever tenant's requests are
// being served meanwhile.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { digestJobs } from '../../examples/notes-saas/src/digest-jobs.js'
import { startNotesSaas } from './notes-saas-harness.js'

test('notes-saas: a digest asked for by acme is written to acme (and globex’s to globex), nowhere else', async () => {
  const finished: { job: number; error?: string }[] = []
  let wake: () => void = () => {}
  let jobs: ReturnType<typeof digestJobs> | undefined
  const { base, shard, dir } = await startNotesSaas({
    extendTenantRoutes: (router, scoped) =>
      router.post('/digest', scoped, (c) => c.json({ job: (jobs as ReturnType<typeof digestJobs>).enqueue() }, 202)),
  })
  jobs = digestJobs(shard, path.join(dir, 'jobs.sqlite3'), {
    pollMs: 5,
    onDone: (job, error) => {
      finished.push({ job, ...(error === undefined ? {} : { error }) })
      wake()
    },
  })
  const notes = async (tenant: string) =>
    (await (await fetch(`${base}/t/${tenant}/notes`)).json()) as { notes?: { title: string }[] } | { title: string }[]
  const titles = async (tenant: string) => {
    const body = await notes(tenant)
    const list = Array.isArray(body) ? body : (body.notes ?? [])
    return list.map((n) => n.title)
  }
  const before = { acme: await titles('acme'), globex: await titles('globex'), initech: await titles('initech') }
  for (const tenant of ['acme', 'globex']) {
    const response = await fetch(`${base}/t/${tenant}/digest`, { method: 'POST' })
    assert.equal(response.status, 202)
  }
  const allDone = new Promise<void>((resolve) => {
    wake = () => {
      if (finished.length >= 2) resolve()
    }
  })
  jobs.start()
  await allDone
  await jobs.stop()
  assert.deepEqual(
    finished.filter((f) => f.error !== undefined),
    [],
  )
  const after = { acme: await titles('acme'), globex: await titles('globex'), initech: await titles('initech') }
  for (const tenant of ['acme', 'globex'] as const) {
    const added = after[tenant].filter((t) => !before[tenant].includes(t))
    assert.deepEqual(added, [`Digest: ${before[tenant].length} notes`], tenant)
  }
  assert.deepEqual(after.initech, before.initech)
})
