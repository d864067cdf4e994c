import * as fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines } from '@shardines/core'
import { type ApexDB, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'

const t0 = performance.now()
const dir = fs.mkdtempSync('/tmp/explore-')
const shard = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir }),
  migrations: { tenant: tenantMigrations },
})
await shard.tenants.create('ra')
await shard.withTenant('ra', async (t) => {
  await t.transaction(async (tx) => {
    for (let i = 0; i < 3000; i++)
      await tx.db
        .insertInto('documents')
        .values({ title: `doc ${i} ${Math.random().toString(36).repeat(4)}` })
        .execute()
  })
})
console.log('seeded', performance.now() - t0, fs.statSync(`${dir}/tenants/ra.sqlite3`).size)
let s = performance.now()
for (let i = 0; i < 20; i++) {
  await shard.tenants.rename(i % 2 ? 'rb' : 'ra', i % 2 ? 'ra' : 'rb')
}
console.log('rename avg', (performance.now() - s) / 20)
s = performance.now()
for (let i = 0; i < 10; i++) {
  const a = performance.now()
  await shard.tenants.archive('ra')
  const b = performance.now()
  await shard.tenants.restore('ra')
  if (i < 3) console.log('archive', b - a, 'restore', performance.now() - b)
}
console.log('archive+restore avg', (performance.now() - s) / 10)
for (let i = 0; i < 30; i++) await shard.tenants.create(`l${i}`)
const hashed = createShardines<ApexDB, TenantDB>({
  storage: sqliteStorage({ dir, layout: 'hashed' }),
  migrations: { tenant: tenantMigrations },
})
s = performance.now()
console.log(await hashed.tenants.migrateLayout())
console.log('layout pass', performance.now() - s)
s = performance.now()
console.log(await shard.tenants.migrateLayout())
console.log('layout pass back', performance.now() - s)
s = performance.now()
const r = await shard.tenants.doctor({ fix: true })
console.log('doctor', performance.now() - s, r.findings.length, r.tenants)
console.log(JSON.stringify(fs.readdirSync(dir, { recursive: true })))
fs.rmSync(dir, { recursive: true })
