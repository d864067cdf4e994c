// Per-tenant encryption at rest on @shardines/adapter-libsql's local mode: each
// database (apex and every tenant) encrypted with its own key from a resolver.
// A file written with one key is unreadable without it and with another
// tenant's key; every lifecycle operation works on encrypted tenants; no key
// ever appears in an error.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { after, describe, test } from 'node:test'
import { libsqlStorage } from '@shardines/adapter-libsql'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, InvalidOptionsError, StorageError } from '@shardines/core'
import { sql } from 'kysely'
import Libsql from 'libsql'
import { coreIndex, shardines } from '../helpers/cli-runner.js'
import { type ApexDB, apexMigrations, type TenantDB, tenantMigrations } from '../helpers/fixture-schema.js'
import { tempDir } from '../helpers/temp-dir.js'

const KEYS: Record<string, string> = {
  apex: 'apex-key-0001',
  acme: "acme-key-with-'quote",
  globex: 'globex-key-0002',
  initech: 'initech-key-0003',
  copy: 'copy-key-0004',
  renamed: 'acme-key-renamed',
}
const keyOf = (name: string): string | undefined => KEYS[name]

function fileOf(dir: string, name: string): string {
  return name === 'apex' ? path.join(dir, 'apex.sqlite3') : path.join(dir, 'tenants', `${name}.sqlite3`)
}

/** Rows read straight from a file with `key` (or none): what someone holding the file sees. */
function readWith(file: string, key: string | undefined, query: string): unknown[] | Error {
  try {
    const db = new Libsql(file, (key === undefined ? {} : { encryptionKey: key }) as Record<string, never>)
    try {
      return db.prepare(query).all()
    } finally {
      db.close()
    }
  } catch (error) {
    return error as Error
  }
}

describe('per-tenant encryption (libsql local, a key resolver)', () => {
  const closers: (() => Promise<void>)[] = []
  after(async () => {
    for (const close of closers) await close()
  })

  async function encryptedShard(keys: (name: string) => string | undefined = keyOf) {
    const dir = tempDir()
    const shard = createShardines<ApexDB, TenantDB>({
      storage: libsqlStorage({ mode: 'local', dir, encryptionKey: keys }),
      migrations: { apex: apexMigrations, tenant: tenantMigrations },
    })
    closers.push(() => shard.close())
    await shard.migrate.apex()
    await shard.apex.insertInto('accounts').values({ email: 'ada@apex.test' }).execute()
    return { shard, dir }
  }

  test('a tenant file is unreadable without its key and with another tenant’s key; the header is not SQLite’s', async () => {
    const { shard, dir } = await encryptedShard()
    await shard.tenants.create('acme')
    await shard.tenants.create('globex')
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'acme secret' }).execute())
    const file = fileOf(dir, 'acme')
    assert.notEqual(fs.readFileSync(file).subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
    assert.equal(fs.readFileSync(file).includes('acme secret'), false, 'the plaintext is in the file')
    for (const key of [undefined, KEYS.globex, KEYS.apex]) {
      const got = readWith(file, key, 'select title from documents')
      assert.ok(
        got instanceof Error && /not a database/.test(got.message),
        `read with ${key ?? 'no key'}: ${String(got)}`,
      )
    }
    assert.deepEqual(readWith(file, KEYS.acme, 'select title from documents'), [{ title: 'acme secret' }])
    assert.ok(readWith(fileOf(dir, 'apex'), undefined, 'select 1 from accounts') instanceof Error)
  })

  test('scopes, apex joins (apex attached with its own key), withTenants and includes work on encrypted databases', async () => {
    const { shard } = await encryptedShard()
    await shard.tenants.create('acme')
    await shard.tenants.create('globex')
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'a1', owner_id: 1 }).execute())
    await shard.withTenant('globex', (t) => t.db.insertInto('documents').values({ title: 'g1', owner_id: 1 }).execute())
    const joined = await shard.withTenant('acme', (t) =>
      t.db
        .selectFrom('documents as d')
        .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
        .select(['d.title', 'a.email'])
        .execute(),
    )
    assert.deepEqual(joined, [{ title: 'a1', email: 'ada@apex.test' }])
    const both = await shard.withTenants(['acme', 'globex'], async (x) => {
      // Raw SQL: the tenants are attached explicitly (each with its own key).
      await x.attach('acme')
      await x.attach('globex')
      const { rows } = await sql<{
        title: string
      }>`select title from acme.documents union all select title from globex.documents order by 1`.execute(x.db)
      return rows.map((r) => r.title)
    })
    assert.deepEqual(both, ['a1', 'g1'])
  })

  test('backup and export stay encrypted with the tenant’s key; fork re-encrypts with the new tenant’s key', async () => {
    const { shard, dir } = await encryptedShard()
    await shard.tenants.create('acme')
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'kept' }).execute())
    const out = tempDir()
    const backup = path.join(out, 'acme.backup')
    await shard.tenants.backup('acme', backup)
    assert.deepEqual(readWith(backup, KEYS.acme, 'select title from documents'), [{ title: 'kept' }])
    assert.ok(readWith(backup, undefined, 'select title from documents') instanceof Error)
    const chunks: Uint8Array[] = []
    for await (const chunk of shard.tenants.export('acme')) chunks.push(chunk)
    const exported = path.join(out, 'acme.export')
    fs.writeFileSync(exported, Buffer.concat(chunks))
    assert.deepEqual(readWith(exported, KEYS.acme, 'select title from documents'), [{ title: 'kept' }])
    assert.ok(readWith(exported, undefined, 'select title from documents') instanceof Error)

    await shard.tenants.fork('acme', 'copy')
    assert.deepEqual(await shard.withTenant('copy', (t) => t.db.selectFrom('documents').select('title').execute()), [
      { title: 'kept' },
    ])
    assert.deepEqual(readWith(fileOf(dir, 'copy'), KEYS.copy, 'select title from documents'), [{ title: 'kept' }])
    assert.ok(readWith(fileOf(dir, 'copy'), KEYS.acme, 'select title from documents') instanceof Error)
  })

  test('rename, archive and restore, destroy, migrate.all and doctor on encrypted tenants', async () => {
    // A rename keeps the tenant's file, so the resolver gives the new id the old key.
    const { shard, dir } = await encryptedShard((name) => (name === 'renamed' ? KEYS.acme : keyOf(name)))
    for (const id of ['acme', 'globex', 'initech']) await shard.tenants.create(id)
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'moved' }).execute())
    await shard.tenants.rename('acme', 'renamed')
    assert.deepEqual(await shard.withTenant('renamed', (t) => t.db.selectFrom('documents').select('title').execute()), [
      { title: 'moved' },
    ])
    const record = await shard.tenants.archive('globex')
    assert.equal(record.id, 'globex')
    await shard.tenants.restore('globex')
    const rows = await shard.withTenant('globex', (t) => t.db.selectFrom('documents').select('id').execute())
    assert.deepEqual(rows, [])
    const report = await shard.migrate.all()
    assert.equal(report.failed, 0)
    const doctor = await shard.tenants.doctor()
    assert.deepEqual(
      doctor.findings.filter((f) => f.needsPerson),
      [],
      'doctor reads encrypted tenants with their keys',
    )
    assert.equal(await shard.tenants.destroy('initech'), true)
    assert.equal(fs.existsSync(fileOf(dir, 'initech')), false)
  })

  test('rotating one tenant’s key: tenants.rekey re-encrypts it with the resolver’s new key; a wrong previous key changes nothing', async () => {
    const keys: Record<string, string> = { ...KEYS }
    const { shard, dir } = await encryptedShard((name) => keys[name])
    await shard.tenants.create('acme')
    await shard.tenants.create('globex')
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'rotated' }).execute())
    const file = fileOf(dir, 'acme')
    const before = KEYS.acme as string
    keys.acme = 'acme-key-next-0005'
    // A scope started during the rotation waits for it, then opens the tenant with its new key.
    const [, during] = await Promise.all([
      shard.tenants.rekey('acme', { previousKey: before }),
      shard.withTenant('acme', (t) => t.db.selectFrom('documents').select('title').execute()),
    ])
    assert.deepEqual(during, [{ title: 'rotated' }])
    assert.ok(readWith(file, before, 'select title from documents') instanceof Error, 'the old key still opens it')
    assert.deepEqual(readWith(file, keys.acme, 'select title from documents'), [{ title: 'rotated' }])
    // The other tenant is untouched.
    assert.deepEqual(readWith(fileOf(dir, 'globex'), KEYS.globex, 'select count(*) as n from documents'), [{ n: 0 }])

    const wrong = 'not-the-previous-key'
    keys.acme = 'acme-key-third-0006'
    const error = await shard.tenants.rekey('acme', { previousKey: wrong }).then(
      () => assert.fail('rekeyed with a wrong previous key'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof StorageError && error.tenantId === 'acme', String(error))
    assert.equal(`${(error as Error).message}${(error as Error).stack}`.includes(wrong), false)
    assert.deepEqual(readWith(file, 'acme-key-next-0005', 'select title from documents'), [{ title: 'rotated' }])
    await assert.rejects(shard.tenants.rekey('acme', { previousKey: '' }), InvalidOptionsError)
  })

  test('tenants.rekey on a storage that does not encrypt: InvalidOptionsError', async () => {
    const plain = createShardines({
      storage: sqliteStorage({ dir: tempDir() }),
      migrations: { tenant: tenantMigrations },
    })
    closers.push(() => plain.close())
    await plain.tenants.create('acme')
    await assert.rejects(plain.tenants.rekey('acme', { previousKey: 'x' }), InvalidOptionsError)
  })

  test('shardines tenants rekey ID --previous-key-env NAME: the key comes from the environment, never from argv', async () => {
    const project = tempDir('shardines-cli-')
    const libsqlIndex = import.meta.resolve('@shardines/adapter-libsql')
    fs.writeFileSync(
      path.join(project, 'shardines.config.mjs'),
      `import { createShardines } from ${JSON.stringify(coreIndex)}
import { libsqlStorage } from ${JSON.stringify(libsqlIndex)}
export default createShardines({
  storage: libsqlStorage({ mode: 'local', dir: './data', encryptionKey: (name) => process.env['KEY_' + name.toUpperCase()] }),
  migrations: { tenant: {} },
})
`,
    )
    process.env.KEY_APEX = 'cli-apex-key'
    process.env.KEY_ACME = 'cli-acme-key-1'
    try {
      assert.equal((await shardines(project, 'tenants', 'create', 'acme')).code, 0)
      const file = path.join(project, 'data', 'tenants', 'acme.sqlite3')
      assert.ok(Array.isArray(readWith(file, 'cli-acme-key-1', 'select count(*) from sqlite_master')))
      const usage = await shardines(project, 'tenants', 'rekey', 'acme')
      assert.equal(usage.code, 2, usage.stderr)
      assert.match(usage.stderr, /--previous-key-env/)
      process.env.OLD_ACME_KEY = 'cli-acme-key-1'
      process.env.KEY_ACME = 'cli-acme-key-2'
      const run = await shardines(project, 'tenants', 'rekey', 'acme', '--previous-key-env', 'OLD_ACME_KEY')
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`)
      assert.match(run.stdout, /re-encrypted tenant acme/)
      assert.equal(`${run.stdout}${run.stderr}`.includes('cli-acme-key'), false, 'a key was printed')
      assert.ok(readWith(file, 'cli-acme-key-1', 'select count(*) from sqlite_master') instanceof Error)
      assert.ok(Array.isArray(readWith(file, 'cli-acme-key-2', 'select count(*) from sqlite_master')))
    } finally {
      for (const name of ['KEY_APEX', 'KEY_ACME', 'OLD_ACME_KEY']) delete process.env[name]
    }
  })

  test('a wrong key is the tenant’s typed error, and the key is in no message', async () => {
    const { shard, dir } = await encryptedShard()
    await shard.tenants.create('acme')
    await shard.close()
    const wrong = 'the-wrong-key-9999'
    const other = createShardines<ApexDB, TenantDB>({
      storage: libsqlStorage({ mode: 'local', dir, encryptionKey: (name) => (name === 'acme' ? wrong : keyOf(name)) }),
      migrations: { apex: apexMigrations, tenant: tenantMigrations },
    })
    closers.push(() => other.close())
    const error = await other
      .withTenant('acme', () => undefined)
      .then(
        () => assert.fail('opened with the wrong key'),
        (e: unknown) => e,
      )
    assert.ok(error instanceof StorageError, String(error))
    assert.equal(error.tenantId, 'acme')
    const shown = `${(error as Error).message} ${String((error as Error).cause)} ${(error as Error).stack}`
    for (const key of [wrong, ...Object.values(KEYS)]) assert.equal(shown.includes(key), false, 'a key in the error')
  })
})
