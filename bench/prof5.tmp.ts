import * as fs from 'node:fs'
import * as path from 'node:path'
import { openShard, tempDir } from './lib/fixture.js'

const dir = tempDir('p5')
const s0 = await openShard(dir)
await s0.tenants.create('tpl')
await s0.withTenant('tpl', (t) => t.db.insertInto('documents').values({ title: 'x' }).execute())
await s0.close()
const N = 1500
for (let i = 0; i < N; i++)
  fs.copyFileSync(path.join(dir, 'tenants', 'tpl.sqlite3'), path.join(dir, 'tenants', `u${i}.sqlite3`))
const shard = await openShard(dir, { maxOpen: 16 })
const ids = Array.from({ length: N }, (_, i) => `u${i}`)
for (let r = 0; r < 6; r++) {
  for (const id of ids)
    await shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', 1).executeTakeFirst())
}
await shard.close()
