/**
 * notes-saas: seeds the data folder (idempotently) and serves the app on 127.0.0.1.
 *
 *   npx -y pnpm@10.34.9 install && npx -y pnpm@10.34.9 demo
 *
 * Environment: PORT (default 3000), NOTES_DATA_DIR (default ./data), ADMIN_TOKEN (the admin
 * routes' bearer token; without it they answer 401 to everyone), SHARDINES_TRACE=console (or
 * NODE_ENV=development: spans and metrics printed to the console; see src/telemetry.ts).
 */
import * as path from 'node:path'
import { digestJobs } from './digest-jobs.js'
import { seed } from './seed.js'
import { startServer } from './server.js'
import { createNotesShard, DEFAULT_DATA_DIR } from './shard.js'
import { startTelemetry } from './telemetry.js'

const dir = path.resolve(process.env.NOTES_DATA_DIR ?? DEFAULT_DATA_DIR)
const port = Number(process.env.PORT ?? 3000)
const adminToken = process.env.ADMIN_TOKEN || undefined
const shard = createNotesShard({ dir })
const stopTelemetry = await startTelemetry(shard)

await seed(shard, (line) => console.log(`  ${line}`))
// Background digests on a queue file of their own; each job runs in the tenant that asked for it.
const digests = digestJobs(shard, path.join(dir, 'jobs.sqlite3'))
digests.start()
const server = await startServer(shard, {
  port,
  adminToken,
  extendTenantRoutes: (router, scoped) =>
    router.post('/digest', scoped, (c) => c.json({ job: digests.enqueue() }, 202)),
})
const auth = adminToken ? ` -H 'Authorization: Bearer ${adminToken}'` : ''
const u = server.url

console.log(`
notes-saas is listening on ${u}  (data: ${path.relative(process.cwd(), dir) || '.'})
One apex database (accounts, plans, tenant directory) + one SQLite file per tenant under ${path.join(path.relative(process.cwd(), dir) || '.', 'tenants')}/.

Try tenant routing (paste into another terminal):

  # by header
  curl -s -H 'X-Tenant: acme' ${u}/notes
  # by subdomain
  curl -s -H 'Host: globex.localhost:${server.port}' ${u}/notes
  # by path prefix
  curl -s ${u}/t/initech/notes

  # write to one tenant, then see that the others are untouched
  curl -s -H 'X-Tenant: acme' -H 'content-type: application/json' -d '{"title":"Hello from curl"}' ${u}/notes
  # the refusals: invalid id (400, no file touched) and unknown tenant (404)
  curl -s -H 'X-Tenant: ../apex' ${u}/notes
  curl -s ${u}/t/nosuch/notes

  # sign up a new company (creates an account and a tenant file)
  curl -s -H 'content-type: application/json' -d '{"email":"you@example.test","name":"You","company":"Example Inc"}' ${u}/signup
  # a background job that keeps its tenant: a digest note appears in acme only
  curl -s -X POST ${u}/t/acme/digest && sleep 1 && curl -s ${u}/t/acme/notes
  # a staging copy, a download of a tenant, the report across tenants
  curl -s -X POST ${u}/t/acme/fork
  curl -s -o acme.sqlite3 ${u}/t/acme/export
  curl -s${auth} ${u}/admin/report${adminToken ? '' : '   # 401 until ADMIN_TOKEN is set'}

In a browser: ${u}/t/acme/  or  http://acme.localhost:${server.port}/
Stop with Ctrl+C.`)
if (stopTelemetry !== undefined) {
  console.log('Tracing is on: each tenant scope and its statements are printed as spans (SHARDINES_TRACE=off to stop).')
}

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  await server.close()
  await digests.stop()
  await shard.close()
  await stopTelemetry?.()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
