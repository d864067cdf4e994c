// shard.on(type, listener): the events of scopes, the pool, attaches, statements, migrations,
// lifecycle steps, busy waits and guard refusals, asserted in the order they happen.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { libsqlStorage } from '@shardines/adapter-libsql'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import {
  createShardines,
  EVENT_TYPES,
  InvalidOptionsError,
  type MigrationEvent,
  type ShardinesEvent,
  type ShardinesEventType,
  StatementRefusedError,
  TenantBusyError,
} from '@shardines/core'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import { sleep } from '../helpers/async-helpers.js'
import { type ApexDB, apexMigrations, makeShard, type TenantDB, tenantMigrations } from '../helpers/fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

type Shard = Awaited<ReturnType<typeof makeShard>>['shard']

/** Records every event (or those of `types`), and what each looked like without its timings. */
function record(shard: Shard, types?: readonly ShardinesEventType[]) {
  const events: ShardinesEvent[] = []
  const off = shard.on('*', (event) => {
    if (types === undefined || types.includes(event.type)) events.push(event)
  })
  return {
    events,
    off,
    /** `type tenantId` of each event, in order. */
    sequence: () => events.map((e) => `${e.type} ${e.tenantId}`),
    clear: () => events.splice(0),
  }
}

/** An event without its timings (which vary) and scope ids (tested apart), for deepEqual. */
function untimed(event: ShardinesEvent): Record<string, unknown> {
  const {
    durationMs,
    acquireMs,
    waitedMs,
    scopeId: _scopeId,
    parentScopeId: _parent,
    ...rest
  } = event as unknown as Record<string, unknown>
  for (const [key, value] of Object.entries({ durationMs, acquireMs, waitedMs })) {
    if (value !== undefined) {
      assert.equal(typeof value, 'number', `${event.type}.${key}`)
      assert.ok((value as number) >= 0, `${event.type}.${key} >= 0`)
    }
  }
  return rest
}

const selectDocuments = (t: { db: any }) => t.db.selectFrom('documents').selectAll().execute()

test('a scope: start, the pool miss (open, then miss), its statement, end; a second scope is a hit', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const r = record(shard)
  const rows = await shard.withTenant('acme', selectDocuments)
  assert.deepEqual(rows, [])
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'pool:open', tenantId: 'acme' },
    { type: 'pool:miss', tenantId: 'acme' },
    { type: 'statement', tenantId: 'acme', operation: 'select', outcome: 'ok' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'ok' },
  ])
  const end = r.events.at(-1) as Extract<ShardinesEvent, { type: 'scope:end' }>
  assert.ok(end.acquireMs <= end.durationMs)
  const open = r.events[1] as Extract<ShardinesEvent, { type: 'pool:open' }>
  const miss = r.events[2] as Extract<ShardinesEvent, { type: 'pool:miss' }>
  assert.ok(open.durationMs <= miss.durationMs, 'the miss includes the open')
  assert.ok(miss.durationMs <= end.acquireMs, 'the acquisition includes the miss')

  r.clear()
  await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'secret title' }).execute())
  assert.deepEqual(r.sequence(), ['scope:start acme', 'statement acme', 'scope:end acme'])
  assert.equal((r.events[1] as { operation: string }).operation, 'insert')
  // No event carries row data, parameters or SQL.
  assert.ok(!JSON.stringify(r.events).includes('secret'))
  assert.ok(!JSON.stringify(r.events).includes('insert into'))
  r.off()
  await shard.close()
})

test('a failing scope ends with outcome error and the error code; an unknown tenant fails in the acquisition', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const r = record(shard, ['scope:start', 'scope:end'])
  await assert.rejects(
    shard.withTenant('acme', () => {
      throw new TypeError('boom')
    }),
    TypeError,
  )
  await assert.rejects(shard.withTenant('nosuch', selectDocuments), { code: 'TENANT_NOT_FOUND' })
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'error', errorCode: 'TypeError' },
    { type: 'scope:start', tenantId: 'nosuch' },
    { type: 'scope:end', tenantId: 'nosuch', outcome: 'error', errorCode: 'TENANT_NOT_FOUND' },
  ])
  const failed = r.events[3] as Extract<ShardinesEvent, { type: 'scope:end' }>
  assert.equal(failed.acquireMs, failed.durationMs, 'a failed acquisition is the whole scope')
  // An invalid id is refused before anything happens: no event.
  await assert.rejects(shard.withTenant('../apex', selectDocuments), { code: 'INVALID_TENANT_ID' })
  assert.equal(r.events.length, 4)
  await shard.close()
})

test('an eviction: with maxOpen 1, opening b evicts a (least recently used) before b’s miss is reported', async () => {
  const { shard } = await makeShard({ storageOptions: { maxOpen: 1 } })
  await shard.tenants.create('a')
  await shard.tenants.create('b')
  await shard.withTenant('a', selectDocuments)
  const r = record(shard, ['scope:start', 'scope:end', 'pool:open', 'pool:miss', 'pool:evict'])
  await shard.withTenant('b', selectDocuments)
  await shard.withTenant('b', selectDocuments)
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'b' },
    { type: 'pool:open', tenantId: 'b' },
    { type: 'pool:evict', tenantId: 'a', reason: 'lru' },
    { type: 'pool:miss', tenantId: 'b' },
    { type: 'scope:end', tenantId: 'b', outcome: 'ok' },
    { type: 'scope:start', tenantId: 'b' },
    { type: 'scope:end', tenantId: 'b', outcome: 'ok' },
  ])
  assert.deepEqual(shard.stats(), { open: 1, pinned: 0, hits: 1, misses: 2, evictions: 1 })
  await shard.close()
})

test('migrations: a behind tenant migrated on open, create, migrate.tenant and migrate.all with progress', async () => {
  const dir = tempDir()
  const first = { '001_documents': tenantMigrations['001_documents']! }
  const old = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir }),
    migrations: { apex: apexMigrations, tenant: first },
  })
  await old.migrate.apex()
  const oldEvents = record(old as unknown as Shard, ['migration', 'tenant:create'])
  for (const id of ['a', 'b', 'c']) await old.tenants.create(id)
  assert.deepEqual(
    oldEvents.events.map(untimed).slice(0, 2),
    [
      {
        type: 'migration',
        tenantId: 'a',
        trigger: 'create',
        from: null,
        to: '001_documents',
        status: 'migrated',
      },
      { type: 'tenant:create', tenantId: 'a', outcome: 'ok' },
    ],
    'the template is migrated inside the create',
  )
  await old.close()

  const shard = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  const r = record(shard as unknown as Shard, ['scope:start', 'scope:end', 'pool:miss', 'migration'])
  await shard.withTenant('a', selectDocuments)
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'a' },
    { type: 'pool:miss', tenantId: 'a' },
    {
      type: 'migration',
      tenantId: 'a',
      trigger: 'open',
      from: '001_documents',
      to: '002_comments',
      status: 'migrated',
    },
    { type: 'scope:end', tenantId: 'a', outcome: 'ok' },
  ])
  r.clear()
  await shard.migrate.tenant('b')
  await shard.migrate.tenant('b')
  assert.deepEqual(r.events.map(untimed), [
    // migrate.tenant goes through the pool (so this process's scopes wait for it).
    { type: 'pool:miss', tenantId: 'b' },
    {
      type: 'migration',
      tenantId: 'b',
      trigger: 'migrate',
      from: '001_documents',
      to: '002_comments',
      status: 'migrated',
    },
    {
      type: 'migration',
      tenantId: 'b',
      trigger: 'migrate',
      from: '002_comments',
      to: '002_comments',
      status: 'up-to-date',
    },
  ])
  r.clear()
  // Objects cannot cross to workers: the main thread, one at a time (so the progress is in order).
  const report = await shard.migrate.all({ concurrency: 1 })
  assert.equal(report.failed, 0)
  assert.deepEqual(
    r.events
      .filter((e) => e.type === 'migration')
      .map(untimed)
      .map(({ tenantId, trigger, status, progress }) => ({ tenantId, trigger, status, progress })),
    [
      { tenantId: 'a', trigger: 'all', status: 'up-to-date', progress: { done: 1, total: 3 } },
      { tenantId: 'b', trigger: 'all', status: 'up-to-date', progress: { done: 2, total: 3 } },
      { tenantId: 'c', trigger: 'all', status: 'migrated', progress: { done: 3, total: 3 } },
    ],
  )
  await shard.close()
})

test('migrate.all on worker threads reports each tenant with the duration measured on the worker', async () => {
  const dir = tempDir()
  const migrations = path.join(dir, 'migrations')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  mkdirSync(migrations)
  writeFileSync(
    path.join(migrations, '001_notes.mjs'),
    'export async function up(db) { await db.schema.createTable("notes").addColumn("id", "integer", (c) => c.primaryKey()).execute() }\n',
  )
  const data = path.join(dir, 'data')
  const blank = createShardines({ storage: sqliteStorage({ dir: data }) })
  for (const id of ['w1', 'w2']) await blank.tenants.create(id)
  await blank.close()
  const shard = createShardines({ storage: sqliteStorage({ dir: data }), migrations: { tenant: migrations } })
  const events: MigrationEvent[] = []
  shard.on('migration', (e) => events.push(e))
  const report = await shard.migrate.all({ concurrency: 2 })
  assert.equal(report.runner.kind, 'workers')
  assert.equal(report.migrated, 2)
  assert.deepEqual(events.map((e) => [e.tenantId, e.status, e.trigger, e.to]).sort(), [
    ['w1', 'migrated', 'all', '001_notes'],
    ['w2', 'migrated', 'all', '001_notes'],
  ])
  for (const e of events) assert.ok(e.durationMs > 0, 'timed on the worker')
  await shard.close()
})

test('a guard refusal: the statement guard (pragma) and the ATTACH compiler (a write to apex), in order', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  await shard.withTenant('acme', selectDocuments)
  const r = record(shard, ['scope:start', 'scope:end', 'guard:refusal', 'attach'])
  const caught = await shard.withTenant('acme', async (t) => {
    try {
      await sql`pragma journal_mode = delete`.execute(t.db)
    } catch (error) {
      return error
    }
  })
  assert.ok(caught instanceof StatementRefusedError)
  await assert.rejects(
    shard.withTenant('acme', (t) => (t.db as any).insertInto('apex.accounts').values({ email: 'x@y.test' }).execute()),
    { code: 'READ_ONLY_ATTACHMENT' },
  )
  // A join with apex attaches it first (once per handle), then reads.
  await shard.withTenant('acme', (t) =>
    t.db.selectFrom('documents as d').innerJoin('apex.accounts as a', 'a.id', 'd.owner_id').select('d.id').execute(),
  )
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'guard:refusal', tenantId: 'acme', errorCode: 'STATEMENT_REFUSED', refusal: 'pragma', schema: undefined },
    { type: 'scope:end', tenantId: 'acme', outcome: 'ok' },
    { type: 'scope:start', tenantId: 'acme' },
    {
      type: 'guard:refusal',
      tenantId: 'acme',
      errorCode: 'READ_ONLY_ATTACHMENT',
      refusal: 'write-attached',
      schema: 'apex',
    },
    { type: 'scope:end', tenantId: 'acme', outcome: 'error', errorCode: 'READ_ONLY_ATTACHMENT' },
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'attach', tenantId: 'acme', schema: 'apex' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'ok' },
  ])
  // shard.apex is guarded too, and its events name 'apex'.
  r.clear()
  await assert.rejects(sql`create temp table t (x)`.execute(shard.apex), StatementRefusedError)
  assert.deepEqual(r.events.map(untimed), [
    {
      type: 'guard:refusal',
      tenantId: 'apex',
      errorCode: 'STATEMENT_REFUSED',
      refusal: 'temp-on-shared-connection',
      schema: undefined,
    },
  ])
  await shard.close()
})

test('busy: a statement waits for another connection’s lock (busy:wait), or gives up (busy:timeout)', async () => {
  const { shard, dir } = await makeShard({ storageOptions: { busyTimeout: 400 } })
  await shard.tenants.create('acme')
  await shard.withTenant('acme', selectDocuments)
  const events: ShardinesEvent[] = []
  shard.on('busy:wait', (e) => events.push(e))
  shard.on('busy:timeout', (e) => events.push(e))
  const other = new Database(path.join(dir, 'tenants', 'acme.sqlite3'))
  try {
    other.exec('begin immediate')
    setTimeout(() => other.exec('commit'), 60)
    await shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'waited' }).execute())
    assert.deepEqual(
      events.map((e) => [e.type, e.tenantId]),
      [['busy:wait', 'acme']],
    )
    const wait = events[0] as Extract<ShardinesEvent, { type: 'busy:wait' }>
    assert.ok(wait.waitedMs >= 30 && wait.attempts >= 1, `waited ${wait.waitedMs} ms, ${wait.attempts} attempts`)

    events.length = 0
    other.exec('begin immediate')
    await assert.rejects(
      shard.withTenant('acme', (t) => t.db.insertInto('documents').values({ title: 'gave up' }).execute()),
      TenantBusyError,
    )
    other.exec('commit')
    assert.deepEqual(
      events.map((e) => [e.type, e.tenantId, (e as { inTransaction?: boolean }).inTransaction]),
      [['busy:timeout', 'acme', false]],
    )
    assert.ok((events[0] as { waitedMs: number }).waitedMs >= 350)
  } finally {
    if (other.inTransaction) other.exec('rollback')
    other.close()
  }
  await shard.close()
})

test('a pool retry: opening a file another connection holds exclusively waits, then opens', async () => {
  const { shard, dir } = await makeShard({ storageOptions: { maxOpen: 1 } })
  await shard.tenants.create('acme')
  const r = record(shard, ['scope:start', 'scope:end', 'pool:open', 'pool:miss', 'pool:retry'])
  const other = new Database(path.join(dir, 'tenants', 'acme.sqlite3'))
  try {
    other.exec('begin exclusive')
    setTimeout(() => other.exec('commit'), 60)
    await shard.withTenant('acme', selectDocuments)
  } finally {
    if (other.inTransaction) other.exec('rollback')
    other.close()
  }
  const types = r.events.map((e) => e.type)
  const retries = r.events.filter((e) => e.type === 'pool:retry')
  assert.ok(retries.length >= 1, types.join(', '))
  assert.deepEqual(types, ['scope:start', ...retries.map(() => 'pool:retry'), 'pool:open', 'pool:miss', 'scope:end'])
  retries.forEach((e, i) => {
    assert.equal(e.type === 'pool:retry' && e.reason, 'locked')
    assert.equal(e.type === 'pool:retry' && e.attempt, i + 1)
  })
  const miss = r.events.find((e) => e.type === 'pool:miss') as { durationMs: number }
  assert.ok(miss.durationMs >= 40, `the miss includes the wait (${miss.durationMs} ms)`)
  await shard.close()
})

test('lifecycle steps: create, fork, backup, rename, archive, restore, destroy, and a failure with its code', async () => {
  const { shard, dir } = await makeShard()
  const r = record(
    shard,
    EVENT_TYPES.filter((type) => type.startsWith('tenant:')),
  )
  await shard.tenants.create('acme')
  await assert.rejects(shard.tenants.create('acme'), { code: 'TENANT_EXISTS' })
  await shard.tenants.fork('acme', 'staging')
  await shard.tenants.backup('acme', path.join(dir, '..', `${path.basename(dir)}-acme.sqlite3`))
  await shard.tenants.rename('staging', 'qa')
  await shard.tenants.archive('qa')
  await shard.tenants.restore('qa')
  assert.equal(await shard.tenants.destroy('qa'), true)
  assert.deepEqual(r.events.map(untimed), [
    { type: 'tenant:create', tenantId: 'acme', outcome: 'ok' },
    { type: 'tenant:create', tenantId: 'acme', outcome: 'error', errorCode: 'TENANT_EXISTS' },
    { type: 'tenant:fork', tenantId: 'acme', outcome: 'ok', target: 'staging' },
    { type: 'tenant:backup', tenantId: 'acme', outcome: 'ok' },
    { type: 'tenant:rename', tenantId: 'staging', outcome: 'ok', target: 'qa' },
    { type: 'tenant:archive', tenantId: 'qa', outcome: 'ok' },
    { type: 'tenant:restore', tenantId: 'qa', outcome: 'ok' },
    { type: 'tenant:destroy', tenantId: 'qa', outcome: 'ok' },
  ])
  const { rmSync } = await import('node:fs')
  rmSync(path.join(dir, '..', `${path.basename(dir)}-acme.sqlite3`), { force: true })
  await shard.close()
})

test('unsubscribe: the listener gets nothing more; calling it twice is harmless; type filters apply', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const ends: string[] = []
  const all: string[] = []
  const offEnd = shard.on('scope:end', (e) => ends.push(`${e.tenantId} ${e.outcome}`))
  const offAll = shard.on('*', (e) => all.push(e.type))
  await shard.withTenant('acme', selectDocuments)
  offEnd()
  offEnd()
  await shard.withTenant('acme', selectDocuments)
  offAll()
  await shard.withTenant('acme', selectDocuments)
  assert.deepEqual(ends, ['acme ok'])
  assert.deepEqual(all, [
    'scope:start',
    'pool:open',
    'pool:miss',
    'statement',
    'scope:end',
    'scope:start',
    'statement',
    'scope:end',
  ])
  assert.throws(() => shard.on('scope:begin' as never, () => {}), InvalidOptionsError)
  assert.throws(() => shard.on('scope:end', 'nope' as never), InvalidOptionsError)
  await shard.close()
})

test('the adapter is observed only while someone listens', async () => {
  const dir = tempDir()
  const storage = sqliteStorage({ dir })
  const observe = storage.observePool!.bind(storage)
  let observers = 0
  storage.observePool = (listener) => {
    observers++
    const stop = observe(listener)
    return () => {
      observers--
      stop()
    }
  }
  const shard = createShardines<ApexDB, TenantDB>({ storage, migrations: { tenant: tenantMigrations } })
  assert.equal(observers, 0)
  const off1 = shard.on('pool:open', () => {})
  const off2 = shard.on('scope:end', () => {})
  assert.equal(observers, 1, 'one observation for any number of listeners')
  off1()
  assert.equal(observers, 1)
  off2()
  assert.equal(observers, 0)
  await shard.close()
})

test('a throwing listener does not break the scope or the other listeners; its first error is one process warning', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('acme')
  const warnings: Error[] = []
  const onWarning = (warning: Error) => {
    if (warning.name === 'ShardinesListenerWarning') warnings.push(warning)
  }
  process.on('warning', onWarning)
  try {
    const seen: string[] = []
    shard.on('scope:start', () => {
      throw new RangeError('listener bug')
    })
    shard.on('*', (e) => seen.push(e.type))
    const first = await shard.withTenant('acme', async (t) => (await selectDocuments(t)).length)
    const second = await shard.withTenant('acme', async (t) => (await selectDocuments(t)).length)
    assert.equal(first, 0)
    assert.equal(second, 0)
    assert.deepEqual(
      seen.filter((type) => type.startsWith('scope:')),
      ['scope:start', 'scope:end', 'scope:start', 'scope:end'],
    )
    await sleep(20)
    assert.equal(warnings.length, 1, 'reported once, not per event')
    assert.match(
      warnings[0]!.message,
      /shard\.on\("scope:start"\) listener threw on a "scope:start" event \(RangeError\)/,
    )
    assert.ok(warnings[0]!.cause instanceof RangeError)
    assert.equal((warnings[0] as Error & { code?: string }).code, 'SHARDINES_LISTENER_THREW')
  } finally {
    process.off('warning', onWarning)
  }
  await shard.close()
})

test('statement events carry the tenant, the operation and the outcome; the log option keeps working beside them', async () => {
  const logged: string[] = []
  const { shard } = await makeShard({ log: (e) => logged.push(`${e.level} ${e.tenantId}`) })
  await shard.tenants.create('acme')
  logged.length = 0
  const statements: ShardinesEvent[] = []
  shard.on('statement', (e) => statements.push(e))
  await shard.withTenant('acme', async (t) => {
    await t.db.insertInto('documents').values({ title: 'x' }).execute()
    await t.db.updateTable('documents').set({ title: 'y' }).execute()
    await t.db.deleteFrom('documents').execute()
    await assert.rejects(sql`select * from nosuch`.execute(t.db))
  })
  await shard.apex.selectFrom('accounts').selectAll().execute()
  assert.deepEqual(
    statements.map((e) => untimed(e)),
    [
      { type: 'statement', tenantId: 'acme', operation: 'insert', outcome: 'ok' },
      { type: 'statement', tenantId: 'acme', operation: 'update', outcome: 'ok' },
      { type: 'statement', tenantId: 'acme', operation: 'delete', outcome: 'ok' },
      { type: 'statement', tenantId: 'acme', operation: 'other', outcome: 'error', errorCode: 'SQLITE_ERROR' },
      { type: 'statement', tenantId: 'apex', operation: 'select', outcome: 'ok' },
    ],
  )
  assert.deepEqual(logged, ['query acme', 'query acme', 'query acme', 'error acme', 'query apex'])
  await shard.close()
})

test('scope ids tie a scope’s statements, attaches and refusals to it, and a nested scope to its parent', async () => {
  const { shard } = await makeShard()
  await shard.tenants.create('a')
  await shard.tenants.create('b')
  const r = record(shard, ['scope:start', 'scope:end', 'statement', 'attach', 'guard:refusal'])
  await Promise.all([
    shard.withTenant('a', async (t) => {
      await selectDocuments(t)
      await shard.withTenant('b', async (u) => {
        await selectDocuments(u)
        await u.db.selectFrom('apex.accounts').selectAll().execute()
      })
      await sql`pragma foreign_keys = off`.execute(t.db).catch(() => undefined)
    }),
    shard.withTenant('b', selectDocuments),
  ])
  const starts = r.events.filter((e) => e.type === 'scope:start')
  assert.equal(starts.length, 3)
  const [outer, concurrent, inner] = [
    starts.find((e) => e.tenantId === 'a')!,
    starts.find((e) => e.tenantId === 'b' && e.parentScopeId === undefined)!,
    starts.find((e) => e.tenantId === 'b' && e.parentScopeId !== undefined)!,
  ]
  assert.equal(inner.parentScopeId, outer.scopeId)
  assert.equal(new Set(starts.map((e) => e.scopeId)).size, 3)
  const of = (scopeId: number) =>
    r.events.filter((e) => 'scopeId' in e && e.scopeId === scopeId && e.type !== 'scope:start').map((e) => e.type)
  // The refused statement is reported as a failed statement, then as the refusal.
  assert.deepEqual(of(outer.scopeId), ['statement', 'statement', 'guard:refusal', 'scope:end'])
  assert.deepEqual(of(inner.scopeId), ['statement', 'attach', 'statement', 'scope:end'])
  assert.deepEqual(of(concurrent.scopeId), ['statement', 'scope:end'])
  await shard.close()
})

test('adapter-libsql client mode reports its pool too: open, miss, eviction', async () => {
  const dir = tempDir()
  const { mkdirSync } = await import('node:fs')
  mkdirSync(path.join(dir, 'tenants'))
  const shard = createShardines<ApexDB, TenantDB>({
    storage: libsqlStorage({
      mode: 'client',
      url: `file:${path.join(dir, 'tenants')}/{tenant}.db`,
      apexUrl: `file:${path.join(dir, 'apex.db')}`,
      maxOpen: 1,
    }),
    migrations: { apex: apexMigrations, tenant: tenantMigrations },
  })
  await shard.migrate.apex()
  await shard.tenants.create('a')
  await shard.tenants.create('b')
  await shard.withTenant('a', selectDocuments)
  const events: ShardinesEvent[] = []
  shard.on('*', (e) => {
    if (e.type.startsWith('pool:') || e.type.startsWith('scope:')) events.push(e)
  })
  await shard.withTenant('b', selectDocuments)
  await sleep(20)
  // The evicted client closes asynchronously: its event comes once the close is done.
  assert.deepEqual(events.filter((e) => e.type !== 'pool:evict').map(untimed), [
    { type: 'scope:start', tenantId: 'b' },
    { type: 'pool:open', tenantId: 'b' },
    { type: 'pool:miss', tenantId: 'b' },
    { type: 'scope:end', tenantId: 'b', outcome: 'ok' },
  ])
  assert.deepEqual(events.filter((e) => e.type === 'pool:evict').map(untimed), [
    { type: 'pool:evict', tenantId: 'a', reason: 'lru' },
  ])
  await shard.close()
})

test('budgets: a scope that waits for its tenant’s slot counts the wait as acquisition; a timeout ends it with its code', async () => {
  const { shard } = await makeShard({ budgets: { perTenant: 1, timeout: 80 } })
  await shard.tenants.create('acme')
  const r = record(shard, ['scope:start', 'scope:end'])
  let release!: () => void
  const holding = shard.withTenant('acme', () => new Promise<void>((resolve) => (release = resolve)))
  await sleep(10)
  // Waits for the slot, gives up after 80 ms.
  await assert.rejects(shard.withTenant('acme', selectDocuments), { code: 'TENANT_BUSY' })
  // Waits for the slot, gets it when the first scope ends.
  const waiting = shard.withTenant('acme', selectDocuments)
  setTimeout(() => release(), 40)
  await holding
  await waiting
  assert.deepEqual(r.events.map(untimed), [
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'error', errorCode: 'TENANT_BUSY' },
    { type: 'scope:start', tenantId: 'acme' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'ok' },
    { type: 'scope:end', tenantId: 'acme', outcome: 'ok' },
  ])
  const timedOut = r.events[2] as Extract<ShardinesEvent, { type: 'scope:end' }>
  assert.ok(timedOut.acquireMs >= 70 && timedOut.acquireMs === timedOut.durationMs)
  const waited = r.events[5] as Extract<ShardinesEvent, { type: 'scope:end' }>
  assert.ok(waited.acquireMs >= 30, `the budget wait is acquisition (${waited.acquireMs} ms)`)
  await shard.close()
})
