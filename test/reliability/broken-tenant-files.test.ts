// One tenant's broken file is that tenant's typed error: it never makes the pool evict
// other tenants' handles or lower maxOpen (only running out of descriptors does that).
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { StorageError } from '@shardines/core'
import { makeShard } from '../helpers/fixtures.js'

async function setup() {
  const warnings: string[] = []
  const { shard, dir } = await makeShard({ storageOptions: { maxOpen: 4, onWarning: (m) => warnings.push(m) } })
  for (const id of ['a', 'b', 'c', 'broken']) await shard.tenants.create(id)
  // Three handles open and idle in the pool.
  for (const id of ['a', 'b', 'c']) {
    await shard.withTenant(id, (t) =>
      t.db
        .insertInto('documents')
        .values({ title: `${id} doc` })
        .execute(),
    )
  }
  const file = path.join(dir, 'tenants', 'broken.sqlite3')
  return { shard, file, warnings }
}

for (const [name, breakIt] of [
  [
    'a folder where the file should be',
    (file: string) => {
      fs.rmSync(file)
      fs.mkdirSync(file)
    },
  ],
  [
    'a file that is not a database (its header overwritten)',
    (file: string) => fs.writeFileSync(file, 'x'.repeat(4096)),
  ],
] as const) {
  test(`${name}: StorageError naming the tenant; the pool, maxOpen and other tenants untouched`, async () => {
    const { shard, file, warnings } = await setup()
    breakIt(file)
    const before = shard.stats()
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        shard.withTenant('broken', (t) => t.db.selectFrom('documents').selectAll().execute()),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error))
          assert.equal(error.code, 'STORAGE_FAILED')
          assert.equal(error.tenantId, 'broken')
          assert.match(error.message, /broken/)
          return true
        },
      )
    }
    const after = shard.stats()
    assert.equal(after.open, before.open, 'no handle was closed')
    assert.equal(after.evictions, before.evictions, 'nothing was evicted')
    assert.deepEqual(warnings, [], 'maxOpen was not lowered')
    for (const id of ['a', 'b', 'c']) {
      assert.deepEqual(await shard.withTenant(id, (t) => t.db.selectFrom('documents').select('title').execute()), [
        { title: `${id} doc` },
      ])
    }
    assert.equal(shard.stats().misses, after.misses, 'the other tenants were still open: all hits')
    await shard.close()
  })
}
