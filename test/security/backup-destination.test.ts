// tenants.backup never writes into the data folder or over an existing file it was not told
// to replace, and never over a live database, whichever way the destination is spelled.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { InvalidOptionsError } from '@shardines/core'
import Database from 'better-sqlite3'
import { makeShard } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex')

async function setup() {
  const { shard, dir } = await makeShard()
  await shard.tenants.create('acme')
  await shard.tenants.create('beta')
  await shard.withTenant('acme', (t) =>
    t.db.insertInto('documents').values({ title: 'acme doc', owner_id: 1 }).execute(),
  )
  await shard.withTenant('beta', (t) =>
    t.db.insertInto('documents').values({ title: 'beta doc', owner_id: 2 }).execute(),
  )
  const files = () =>
    fs
      .readdirSync(dir, { recursive: true })
      .map(String)
      .sort()
      .map((f) => [f, fs.statSync(path.join(dir, f)).isFile() ? sha(path.join(dir, f)) : 'dir'])
  return { shard, dir, files }
}

async function refused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof InvalidOptionsError, `expected InvalidOptionsError, got ${String(error)}`)
    assert.match(error.message, pattern)
    return true
  })
}

test('a destination inside the data folder is refused, overwrite or not, however it is spelled', async () => {
  const { shard, dir, files } = await setup()
  const before = files()
  const inside = [
    path.join(dir, 'copy.sqlite3'),
    path.join(dir, 'tenants', 'gamma.sqlite3'),
    path.join(dir, 'tenants', 'beta.sqlite3'),
    path.join(dir, 'apex.sqlite3'),
    path.join(dir, 'nested', 'deeper', 'copy.sqlite3'),
    `${dir}/tenants/../tenants/./beta.sqlite3`,
    dir,
  ]
  for (const dest of inside) {
    for (const overwrite of [false, true]) {
      await refused(shard.tenants.backup('acme', dest, { overwrite }), /inside the data folder/)
      await refused(shard.tenants.backup('apex', dest, { overwrite }), /inside the data folder/)
    }
  }
  // A relative path that resolves into the data folder.
  const cwd = process.cwd()
  try {
    process.chdir(path.join(dir, 'tenants'))
    await refused(shard.tenants.backup('acme', 'beta.sqlite3', { overwrite: true }), /inside the data folder/)
  } finally {
    process.chdir(cwd)
  }
  assert.deepEqual(files(), before, 'nothing in the data folder changed')
  assert.deepEqual(await shard.withTenant('beta', (t) => t.db.selectFrom('documents').select('title').execute()), [
    { title: 'beta doc' },
  ])
  await shard.close()
})

test('symlinks outside the data folder that lead into it are refused', async () => {
  const { shard, dir, files } = await setup()
  const out = tempDir()
  fs.symlinkSync(path.join(dir, 'tenants', 'beta.sqlite3'), path.join(out, 'file-link.sqlite3'))
  fs.symlinkSync(dir, path.join(out, 'dir-link'))
  fs.symlinkSync(path.join(dir, 'tenants'), path.join(out, 'tenants-link'))
  const before = files()
  await refused(
    shard.tenants.backup('acme', path.join(out, 'file-link.sqlite3'), { overwrite: true }),
    /inside the data folder/,
  )
  await refused(
    shard.tenants.backup('acme', path.join(out, 'dir-link', 'tenants', 'beta.sqlite3'), { overwrite: true }),
    /inside the data folder/,
  )
  await refused(shard.tenants.backup('acme', path.join(out, 'tenants-link', 'new.sqlite3')), /inside the data folder/)
  await refused(
    shard.tenants.backup('acme', path.join(out, 'dir-link', 'not', 'yet', 'there.sqlite3')),
    /inside the data folder/,
  )
  assert.deepEqual(files(), before)
  assert.ok(!fs.existsSync(path.join(dir, 'not')), 'no folder was made inside the data folder')
  await shard.close()
})

test('an existing file needs { overwrite: true }; a folder is never replaced', async () => {
  const { shard } = await setup()
  const out = tempDir()
  const existing = path.join(out, 'existing.sqlite3')
  fs.writeFileSync(existing, 'keep me')
  await refused(shard.tenants.backup('acme', existing), /the file exists.*overwrite/)
  assert.equal(fs.readFileSync(existing, 'utf8'), 'keep me')
  fs.mkdirSync(path.join(out, 'folder'))
  await refused(shard.tenants.backup('acme', path.join(out, 'folder'), { overwrite: true }), /not a file/)

  await shard.tenants.backup('acme', existing, { overwrite: true })
  const copy = new Database(existing, { readonly: true })
  assert.deepEqual(copy.prepare('select title from documents').all(), [{ title: 'acme doc' }])
  copy.close()
  // A new file needs no option; leftovers of the copy are never left beside it.
  await shard.tenants.backup('beta', path.join(out, 'new', 'beta.sqlite3'))
  assert.deepEqual(fs.readdirSync(path.join(out, 'new')), ['beta.sqlite3'])
  assert.deepEqual(fs.readdirSync(out).sort(), ['existing.sqlite3', 'folder', 'new'])
  await shard.close()
})

test('the data folder reached through a symlinked alias is still the data folder', async () => {
  // The live check: a data folder reached through a path that differs from the configured one.
  const { shard, dir } = await setup()
  const alias = path.join(tempDir(), 'alias')
  fs.symlinkSync(dir, alias)
  const before = sha(path.join(dir, 'tenants', 'beta.sqlite3'))
  await refused(
    shard.tenants.backup('acme', path.join(alias, 'tenants', 'beta.sqlite3'), { overwrite: true }),
    /inside the data folder/,
  )
  assert.equal(sha(path.join(dir, 'tenants', 'beta.sqlite3')), before)
  await shard.close()
})

test('a missing tenant is TenantNotFoundError before the destination is looked at', async () => {
  const { shard, dir } = await setup()
  await assert.rejects(shard.tenants.backup('ghost', path.join(dir, 'x')), { code: 'TENANT_NOT_FOUND' })
  await assert.rejects(shard.tenants.backup('acme', ''), InvalidOptionsError)
  await shard.close()
})
