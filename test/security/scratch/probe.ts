import { sql } from 'kysely'
import { seedApex, seedTenant, makeAttachShard } from '../../attach/attach-helpers.js'

const { shard, dir } = await makeAttachShard()
await seedApex(shard)
await seedTenant(shard, 'acme')
await seedTenant(shard, 'beta')
console.log(dir)
const tries: string[] = process.argv.slice(2)
for (const q of tries) {
  try {
    const r = await shard.withTenant('acme', async (t) => {
      await t.attach('apex')
      return sql.raw(q).execute(t.db)
    })
    console.log('OK  ', q, JSON.stringify(r.rows).slice(0, 300), r.numAffectedRows)
  } catch (e: any) {
    console.log('ERR ', q, e.constructor.name, e.code, e.kind, e.schema, e.tenantId, String(e.message).slice(0, 160))
  }
}
const n = await shard.apex.selectFrom('accounts').selectAll().execute()
console.log(JSON.stringify(n))
console.log(JSON.stringify((await sql`select * from sqlite_master`.execute(shard.apex)).rows.map((r:any)=>r.name)))
