import * as fs from 'node:fs'
import * as path from 'node:path'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import Database from 'better-sqlite3'
import { openShard, tempDir } from './lib/fixture.js'

const dir = tempDir('p6')
const s0 = await openShard(dir)
await s0.tenants.create('tpl')
await s0.withTenant('tpl', (t) => t.db.insertInto('documents').values({ title: 'x' }).execute())
await s0.close()
const N = 1500
for (let i = 0; i < N; i++)
  fs.copyFileSync(path.join(dir, 'tenants', 'tpl.sqlite3'), path.join(dir, 'tenants', `u${i}.sqlite3`))
const guard = { denied: 0, watch: 2, label: 'x' }
const storage = sqliteStorage({ dir, maxOpen: 16 })
const ids = Array.from({ length: N }, (_, i) => `u${i}`)
const t = { acq: 0, uv: 0, sel: 0, rel: 0 }
for (let r = 0; r < (process.env.R ? Number(process.env.R) : 3); r++) {
  for (const k in t) (t as any)[k] = 0
  for (const id of ids) {
    const a = performance.now()
    const lease = await storage.acquire(id)
    const b = performance.now()
    ;(lease.handle as any).executeQuerySync('pragma user_version', [], guard)
    const c = performance.now()
    ;(lease.handle as any).executeQuerySync('select * from "main"."documents" where "id" = ?', [1], guard)
    const d = performance.now()
    lease.release()
    const e = performance.now()
    t.acq += b - a
    t.uv += c - b
    t.sel += d - c
    t.rel += e - d
  }
}
for (const [k, v] of Object.entries(t)) console.log(k, ((v / N) * 1000).toFixed(1), 'us')
await storage.close()
if (process.env.R) process.exit(0)
const files = ids.map((id) => path.join(dir, 'tenants', `${id}.sqlite3`))
const lru: Database.Database[] = []
const u = { open: 0, uv: 0, sel: 0, close: 0 }
for (let r = 0; r < 3; r++) {
  for (const k in u) (u as any)[k] = 0
  for (const f of files) {
    const a = performance.now()
    const db = new Database(f, { fileMustExist: true, timeout: 5 })
    const b = performance.now()
    db.prepare('pragma user_version').all()
    const c = performance.now()
    db.prepare('select * from "main"."documents" where "id" = ?').all(1)
    const d = performance.now()
    lru.push(db)
    if (lru.length > 16) lru.shift()!.close()
    const e = performance.now()
    u.open += b - a
    u.uv += c - b
    u.sel += d - c
    u.close += e - d
  }
}
for (const [k, v] of Object.entries(u)) console.log('raw', k, ((v / N) * 1000).toFixed(1), 'us')
