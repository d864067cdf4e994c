import * as fs from 'node:fs'
import * as path from 'node:path'
import { after } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { AppOptions } from '../../examples/notes-saas/src/app.js'
import { seed } from '../../examples/notes-saas/src/seed.js'
import { startServer } from '../../examples/notes-saas/src/server.js'
import { createNotesShard, type NotesShard } from '../../examples/notes-saas/src/shard.js'
import { tempDir } from '../helpers/temp-dir.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { recordingStorage } from '../http/http-client.js'

/**
 * The notes-saas app on a fresh data folder, seeded, served on 127.0.0.1 at a
 * random port. Stopped (server, then shard) when the test file ends.
 */
export async function startNotesSaas(options: AppOptions & { maxOpen?: number } = {}) {
  const dir = tempDir('notes-saas-')
  const { storage, calls } = recordingStorage(sqliteStorage({ dir, maxOpen: options.maxOpen ?? 256 }))
  const shard = createNotesShard({ storage })
  await seed(shard)
  const unexpected: unknown[] = []
  const server = await startServer(shard, {
    port: 0,
    onUnexpectedError: (error) => unexpected.push(error),
    ...options,
  })
  // Tests reuse keep-alive sockets across phases that can last seconds on a loaded machine: Node's
  // 5 s keepAliveTimeout would close one just as a request is written on it (ECONNRESET).
  server.server.keepAliveTimeout = 120_000
  after(async () => {
    await server.close()
    await shard.close()
  })
  return { dir, shard, server, base: server.url, calls, unexpected }
}

/** What a request could have written: the data folder (files and sizes) and every apex and tenant row count. */
export async function writtenState(dir: string, shard: NotesShard) {
  const apex = {
    accounts: await count(shard.apex.selectFrom('accounts')),
    tenants: await count(shard.apex.selectFrom('tenants')),
    memberships: await count(shard.apex.selectFrom('memberships')),
  }
  const tenants: Record<string, { notes: number; comments: number }> = {}
  for (const file of fs.readdirSync(path.join(dir, 'tenants')).sort()) {
    if (!file.endsWith('.sqlite3')) continue
    const id = file.slice(0, -'.sqlite3'.length)
    tenants[id] = await shard.withTenant(id, async (t) => ({
      notes: await count(t.db.selectFrom('notes')),
      comments: await count(t.db.selectFrom('comments')),
    }))
  }
  // Tenant files use the rollback journal: reads leave their size unchanged, so sizes catch any write.
  return { files: snapshotTree(dir, { sizes: true }).filter((f) => !f.startsWith('apex.sqlite3')), apex, tenants }
}

async function count(qb: { select: (fn: (eb: any) => any) => { executeTakeFirstOrThrow: () => Promise<any> } }) {
  const row = await qb.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}
