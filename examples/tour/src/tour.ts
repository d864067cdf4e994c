// The README's tour, whole and runnable: npx -y pnpm@10.34.9 --filter @shardines/example-tour start
// (first: the workspace install and build; the types in src/db come from `npx shardines codegen --out src/db`).
import * as http from 'node:http'
import { fromHeader, type Params } from '@shardines/core'
import { shard } from './shard.js'

await shard.migrate.apex() // the CLI does the same: npx shardines migrate --apex
await shard.apex
  .insertInto('accounts')
  .values({ id: 1, email: 'ada@acme.test' })
  .onConflict((c) => c.doNothing())
  .execute()
for (const id of ['acme', 'globex']) {
  if (!(await shard.tenants.exists(id))) await shard.tenants.create(id) // a new file, migrated, atomically
}

await shard.withTenant('acme', async (t) => {
  await t.db.insertInto('documents').values({ title: 'Q3 plan', owner_id: 1 }).execute()
  // one SQL statement across two files: apex is ATTACHed read-only on first use
  const joined = await t.db
    .selectFrom('documents as d')
    .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
    .select(['d.title', 'a.email'])
    .execute()
  console.log('joined with apex:', joined)
  const open = await t.models.Document.where('status', '=', 'open').include('owner').all() // the same join, ORM-style
  console.log('open documents with their owner:', open.length)
  await t.transaction(async (trx) => {
    await trx.models.Document.create({ title: 'x', owner_id: 1 })
  })

  shard.db() // the current tenant's Kysely (NoTenantError outside a scope)
  console.log('current tenant:', shard.currentTenant()) // 'acme' inside the scope, undefined outside
})
console.log('outside a scope:', shard.currentTenant())
console.log('accounts:', await shard.apex.selectFrom('accounts').selectAll().execute()) // Kysely<ApexDB>, anywhere
console.log('apex model:', await shard.models.Account.count()) // apex models work anywhere

const byId = shard.prepare((db, p: Params<{ id: number }>) =>
  db.selectFrom('documents').selectAll().where('id', '=', p('id')),
) // compiled once
console.log('prepared:', await shard.withTenant('acme', () => byId.executeTakeFirst({ id: 1 }))) // runs in the current tenant

const titles = await shard.withTenants(['acme', 'globex'], (x) =>
  // several tenants, read-only
  x.db
    .selectFrom('acme.documents')
    .select('title')
    .unionAll(x.db.selectFrom('globex.documents').select('title'))
    .execute(),
)
console.log('across tenants:', titles.length)
const counts = await shard.mapTenants((t) => t.models.Document.count(), { concurrency: 8 }) // every tenant, never throws
console.log('per tenant:', counts)

// Each request in its tenant: Node's http server here, Express or Connect alike.
const tenantScope = shard.middleware(fromHeader('x-tenant'))
const server = http.createServer((req, res) =>
  tenantScope(req, res, async (error?: unknown) => {
    if (error !== undefined) {
      res.statusCode = 400
      res.end(String(error))
      return
    }
    const count = await shard.models.Document.count()
    res.end(JSON.stringify({ tenant: shard.currentTenant(), documents: count }))
  }),
)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const address = server.address() as { port: number }
const reply = await fetch(`http://127.0.0.1:${address.port}/`, { headers: { 'x-tenant': 'acme' } })
console.log('over HTTP:', await reply.text())
server.close()
await shard.close()
