import * as fs from 'node:fs'
import * as path from 'node:path'
import Database from 'better-sqlite3'
import { openShard, tempDir } from './lib/fixture.js'

const dir = tempDir('p4')
const s0 = await openShard(dir)
await s0.tenants.create('tpl')
await s0.withTenant('tpl', (t) => t.db.insertInto('documents').values({ title: 'x' }).execute())
await s0.close()
const N = 1500
for (let i = 0; i < N; i++)
  fs.copyFileSync(path.join(dir, 'tenants', 'tpl.sqlite3'), path.join(dir, 'tenants', `u${i}.sqlite3`))
const files = Array.from({ length: N }, (_, i) => path.join(dir, 'tenants', `u${i}.sqlite3`))
function raw(label: string, f: (file: string) => void) {
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    for (const x of files) f(x)
    if (r == 2) console.log(label, (((performance.now() - t) / N) * 1000).toFixed(1), 'us')
  }
}
raw('raw open+get+close', (f) => {
  const db = new Database(f, { fileMustExist: true })
  db.prepare('select * from "documents" where "id" = ?').get(1)
  db.close()
})
raw('raw open+close', (f) => {
  const db = new Database(f, { fileMustExist: true })
  db.close()
})
raw('raw open+uv+get+close', (f) => {
  const db = new Database(f, { fileMustExist: true, timeout: 5 })
  db.prepare('pragma user_version').all()
  db.prepare('select * from "main"."documents" where "id" = ?').get(1)
  db.close()
})
raw('lstat', (f) => {
  fs.lstatSync(f, { throwIfNoEntry: false })
})
const shard = await openShard(dir, { maxOpen: 16 })
if (process.env.ONLYRAW) process.exit(0)
const ids = Array.from({ length: N }, (_, i) => `u${i}`)
for (let r = 0; r < 3; r++) {
  const t = performance.now()
  for (const id of ids)
    await shard.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', 1).executeTakeFirst())
  if (r == 2) console.log('ours miss request', (((performance.now() - t) / N) * 1000).toFixed(1), 'us')
}
for (let r = 0; r < 3; r++) {
  const t = performance.now()
  for (const id of ids) await shard.withTenant(id, async () => 1)
  if (r == 2) console.log('ours withTenant only (miss)', (((performance.now() - t) / N) * 1000).toFixed(1), 'us')
}
await shard.close()
const big = await openShard(dir, { maxOpen: N + 10 })
for (let r = 0; r < 3; r++) {
  const t = performance.now()
  for (const id of ids)
    await big.withTenant(id, (t) => t.db.selectFrom('documents').selectAll().where('id', '=', 1).executeTakeFirst())
  if (r == 2) console.log('ours hit request', (((performance.now() - t) / N) * 1000).toFixed(1), 'us')
}
await big.close()
{
  const lru: Database.Database[] = []
  raw('raw LRU16 open+uv+get (close oldest)', (f) => {
    const db = new Database(f, { fileMustExist: true, timeout: 5 })
    db.prepare('pragma user_version').all()
    db.prepare('select * from "main"."documents" where "id" = ?').get(1)
    lru.push(db)
    if (lru.length > 16) lru.shift()!.close()
  })
  for (const d of lru) d.close()
}
{
  const lru: Database.Database[] = []
  raw('raw LRU16 open+get (close oldest)', (f) => {
    const db = new Database(f, { fileMustExist: true })
    db.prepare('select * from "documents" where "id" = ?').get(1)
    lru.push(db)
    if (lru.length > 16) lru.shift()!.close()
  })
  for (const d of lru) d.close()
}
