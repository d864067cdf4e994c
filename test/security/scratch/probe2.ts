import { sql } from 'kysely'
import { seedApex, seedTenant, makeAttachShard } from '../../attach/attach-helpers.js'

for (const q of process.argv.slice(2)) {
  const { shard } = await makeAttachShard()
  await seedApex(shard)
  await shard.apex.schema.createIndex('accounts_email').on('accounts').column('email').execute()
  await seedTenant(shard, 'acme')
  const before = JSON.stringify((await sql`select name from sqlite_master order by name`.execute(shard.apex)).rows.map((r: any) => r.name))
  try {
    const r = await shard.withTenant('acme', async (t) => {
      await t.attach('apex')
      return sql.raw(q).execute(t.db)
    })
    console.log('OK  ', q, JSON.stringify(r.rows).slice(0, 300), r.numAffectedRows)
  } catch (e: any) {
    console.log('ERR ', q, e.constructor.name, e.code, e.kind, String(e.message).slice(0, 120))
  }
  const after = JSON.stringify((await sql`select name from sqlite_master order by name`.execute(shard.apex)).rows.map((r: any) => r.name))
  if (before !== after) console.log('   APEX CHANGED', before, '->', after)
  await shard.close()
}
