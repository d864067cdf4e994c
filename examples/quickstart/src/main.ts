/**
 * Quickstart: a data folder with an apex database and a few tenants, tenant
 * writes and reads, and a tenant query joined with apex data through ATTACH.
 *
 *   npx -y pnpm@10.34.9 install && npx -y pnpm@10.34.9 demo
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { Migration } from '@shardines/core'
import { createShardines } from '@shardines/core'
import type { Generated } from 'kysely'

interface ApexDB {
  accounts: { id: Generated<number>; email: string; plan: string }
}
interface TenantDB {
  documents: { id: Generated<number>; title: string; owner_id: number; status: Generated<string> }
}

const apexMigrations: Record<string, Migration> = {
  '2026_01_01_accounts': {
    up: (db) =>
      db.schema
        .createTable('accounts')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('plan', 'text', (c) => c.notNull().defaultTo('free'))
        .execute(),
  },
}
const tenantMigrations: Record<string, Migration> = {
  '2026_01_01_documents': {
    up: (db) =>
      db.schema
        .createTable('documents')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('owner_id', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().defaultTo('open'))
        .execute(),
  },
}

const dir = path.resolve(process.env.SHARDINES_DATA ?? 'data/quickstart')
fs.rmSync(dir, { recursive: true, force: true })

const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir, maxOpen: 64 }),
  migrations: { apex: apexMigrations, tenant: tenantMigrations },
})

await shard.migrate.apex()
const accounts = await shard.apex
  .insertInto('accounts')
  .values([
    { email: 'ada@acme.test', plan: 'pro' },
    { email: 'grace@globex.test', plan: 'free' },
  ])
  .returningAll()
  .execute()
console.log(`apex: ${path.relative(process.cwd(), path.join(dir, 'apex.sqlite3'))} with ${accounts.length} accounts`)

for (const id of ['acme', 'globex', 'initech']) {
  const started = performance.now()
  await shard.tenants.create(id)
  console.log(`created tenant ${id} in ${(performance.now() - started).toFixed(1)} ms`)
}

const [ada, grace] = accounts as [(typeof accounts)[0], (typeof accounts)[0]]
await shard.withTenant('acme', async (t) => {
  await t.db
    .insertInto('documents')
    .values([
      { title: 'Q3 plan', owner_id: ada.id, status: 'open' },
      { title: 'Hiring', owner_id: ada.id, status: 'done' },
    ])
    .execute()
})
await shard.withTenant('globex', (t) =>
  t.db.insertInto('documents').values({ title: 'Globex roadmap', owner_id: grace.id }).execute(),
)

// Each tenant sees only its own file: no WHERE tenant_id anywhere.
for await (const id of shard.tenants.list()) {
  const titles = await shard.withTenant(id, (t) => t.db.selectFrom('documents').select('title').execute())
  console.log(`${id}: ${titles.map((d) => d.title).join(', ') || '(no documents)'}`)
}

// One SQL query across the tenant's file and apex: apex is ATTACHed read-only on first use.
const joined = await shard.withTenant('acme', (t) =>
  t.db
    .selectFrom('documents as d')
    .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
    .select(['d.title', 'd.status', 'a.email', 'a.plan'])
    .orderBy('d.id')
    .execute(),
)
console.log('acme documents with their owners from apex:')
console.table(joined)

// Writes to apex from a tenant scope do not compile (apex.* is typed read-only), and from
// plain JavaScript they are refused before SQLite sees them.
await shard.withTenant('acme', async (t) => {
  try {
    await t.db
      .updateTable('apex.accounts')
      .set({ plan: 'enterprise' } as never)
      .execute()
  } catch (error) {
    console.log(`refused as expected: ${(error as Error).message}`)
  }
})

// Fork a tenant into a staging copy, then remove the original.
await shard.tenants.fork('acme', 'acme-staging')
await shard.tenants.destroy('initech')
const ids: string[] = []
for await (const id of shard.tenants.list()) ids.push(id)
console.log(`tenants now: ${ids.join(', ')}`)
console.log('pool stats:', shard.stats())
await shard.close()
