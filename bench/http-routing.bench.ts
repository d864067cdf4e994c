/**
 * HTTP tenant routing (issue 7): requests per second for the notes-saas app's
 * `GET /notes` (tenant from `X-Tenant`, the request inside `withTenant`, the
 * tenant's file joined with apex through ATTACH for the author) against the
 * same app reading ONE shared database (notes and comments with a `tenant_id`
 * column, accounts in the same file, `WHERE tenant_id = ?`).
 *
 * Both servers are Hono on @hono/node-server with the same middleware (body
 * limit, JSON errors), the same query shape (notes + author + comment count,
 * newest 50) and the same JSON. The shared app validates the tenant id and
 * checks the tenant exists (one point query), as the routed app does by
 * opening the tenant's handle. Its database layer is Kysely on better-sqlite3,
 * as a team would write it; a second baseline reads the shared file through
 * one cached better-sqlite3 statement (the floor for any layer).
 *
 * Each server runs in its own child process; autocannon drives it from this
 * process over loopback, cycling through the tenants. Rounds alternate
 * the order of the servers so drift spreads over all; the ratio printed is
 * the median of the per-round ratios (each from runs seconds apart), which a
 * noisy shared machine disturbs less than a ratio of averages. Printed:
 * req/s per server, p99 latency, and routed / shared. Bar: routed ≥ 0.8×
 * shared (Kysely).
 *
 * Env: BENCH_TENANTS (default 100), BENCH_NOTES (per tenant, default 20),
 * BENCH_SECONDS (per round, default 3), BENCH_HTTP_ROUNDS (default 5),
 * BENCH_CONNECTIONS (default 32).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { isValidTenantId } from '@shardines/core'
import autocannon from 'autocannon'
import Database from 'better-sqlite3'
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { Kysely, SqliteDialect } from 'kysely'
import { startServer } from '../examples/notes-saas/src/server.js'
import { createNotesShard } from '../examples/notes-saas/src/shard.js'
import { printHeader, printTable, ratio } from './lib/table.js'

const TENANTS = Number(process.env.BENCH_TENANTS ?? 100)
const NOTES = Number(process.env.BENCH_NOTES ?? 20)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32)
const BAR = 0.8
const SELF = fileURLToPath(import.meta.url)
const idOf = (i: number) => `t${String(i).padStart(4, '0')}`

type Kind = 'routed' | 'shared-kysely' | 'shared-prepared'

// ---------------------------------------------------------------- servers (child processes)

/** The shared-database schema: every tenant's rows in one file, told apart by tenant_id. */
interface SharedDB {
  tenants: { id: string; name: string }
  accounts: { id: number; email: string; name: string }
  notes: {
    tenant_id: string
    id: number
    title: string
    body: string
    author_id: number
    created_at: string
    updated_at: string
  }
  comments: { tenant_id: string; id: number; note_id: number; author_id: number; body: string }
}

const SHARED_SQL = `select n.id, n.title, n.body, n.created_at, n.updated_at, n.author_id,
  a.name as author_name, a.email as author_email,
  (select count(*) from comments as c where c.tenant_id = n.tenant_id and c.note_id = n.id) as comment_count
  from notes as n left join accounts as a on a.id = n.author_id
  where n.tenant_id = ? order by n.id desc limit ?`

function toView(row: {
  id: number
  title: string
  body: string
  created_at: string
  updated_at: string
  author_id: number
  author_name: string | null
  author_email: string | null
  comment_count: number | string | bigint | null
}) {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    comments: Number(row.comment_count ?? 0),
    author:
      row.author_name === null || row.author_email === null
        ? null
        : { id: row.author_id, name: row.author_name, email: row.author_email },
  }
}

function sharedApp(file: string, prepared: boolean): Hono {
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = wal')
  sqlite.pragma('synchronous = normal')
  const db = new Kysely<SharedDB>({ dialect: new SqliteDialect({ database: sqlite }) })
  const listStatement = sqlite.prepare(SHARED_SQL)
  const tenantStatement = sqlite.prepare('select 1 from tenants where id = ?').pluck()
  const app = new Hono()
  app.use('*', bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json({ error: { code: 'PAYLOAD_TOO_LARGE' } }, 413) }))
  app.onError((_e, c) => c.json({ error: { code: 'INTERNAL' } }, 500))
  app.use('/notes', async (c, next) => {
    const id = c.req.header('x-tenant')
    if (!isValidTenantId(id)) return c.json({ error: { code: 'INVALID_TENANT_ID' } }, 400)
    const exists = prepared
      ? tenantStatement.get(id) !== undefined
      : (await db.selectFrom('tenants').select('id').where('id', '=', id).executeTakeFirst()) !== undefined
    if (!exists) return c.json({ error: { code: 'TENANT_NOT_FOUND' } }, 404)
    await next()
  })
  app.get('/notes', async (c) => {
    const tenant = c.req.header('x-tenant') as string
    const rows = prepared
      ? (listStatement.all(tenant, 50) as Parameters<typeof toView>[0][])
      : await db
          .selectFrom('notes as n')
          .leftJoin('accounts as a', 'a.id', 'n.author_id')
          .select((eb) => [
            'n.id',
            'n.title',
            'n.body',
            'n.created_at',
            'n.updated_at',
            'n.author_id',
            'a.name as author_name',
            'a.email as author_email',
            eb
              .selectFrom('comments as c')
              .select(eb.fn.countAll<number>().as('n'))
              .whereRef('c.tenant_id', '=', 'n.tenant_id')
              .whereRef('c.note_id', '=', 'n.id')
              .as('comment_count'),
          ])
          .where('n.tenant_id', '=', tenant)
          .orderBy('n.id', 'desc')
          .limit(50)
          .execute()
    return c.json({ tenant, notes: rows.map(toView) })
  })
  return app
}

async function serveChild(kind: Kind, dir: string): Promise<void> {
  if (kind === 'routed') {
    const shard = createNotesShard({ dir: path.join(dir, 'routed'), maxOpen: 256 })
    const server = await startServer(shard, { port: 0 })
    process.stdout.write(`${JSON.stringify({ port: server.port })}\n`)
    return
  }
  const app = sharedApp(path.join(dir, 'shared.sqlite3'), kind === 'shared-prepared')
  serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
    process.stdout.write(`${JSON.stringify({ port: info.port })}\n`)
  })
}

// ---------------------------------------------------------------- data

async function buildData(dir: string): Promise<void> {
  const shard = createNotesShard({ dir: path.join(dir, 'routed') })
  await shard.migrate.apex()
  const shared = new Database(path.join(dir, 'shared.sqlite3'))
  shared.pragma('journal_mode = wal')
  shared.exec(`
    create table tenants (id text primary key, name text not null);
    create table accounts (id integer primary key, email text not null unique, name text not null);
    create table notes (tenant_id text not null references tenants(id), id integer primary key, title text not null,
      body text not null default '', author_id integer not null, created_at text not null, updated_at text not null);
    create index notes_tenant on notes (tenant_id, id);
    create table comments (tenant_id text not null, id integer primary key, note_id integer not null,
      author_id integer not null, body text not null);
    create index comments_note on comments (tenant_id, note_id);`)
  const now = new Date().toISOString()
  for (let i = 0; i < TENANTS; i++) {
    const id = idOf(i)
    const owner = await shard.apex
      .insertInto('accounts')
      .values({ email: `owner@${id}.test`, name: `Owner ${id}` })
      .returning('id')
      .executeTakeFirstOrThrow()
    await shard.apex.insertInto('tenants').values({ id, name: id, plan_id: 'team', owner_id: owner.id }).execute()
    await shard.apex.insertInto('memberships').values({ tenant_id: id, account_id: owner.id, role: 'owner' }).execute()
    await shard.tenants.create(id)
    const notes = Array.from({ length: NOTES }, (_, k) => ({
      title: `[${id}] note ${k}`,
      body: `Body of note ${k} of ${id}. `.repeat(4),
      author_id: owner.id,
      created_at: now,
      updated_at: now,
    }))
    await shard.withTenant(id, (t) =>
      t.transaction(async ({ db }) => {
        for (const [k, note] of notes.entries()) {
          const row = await db.insertInto('notes').values(note).returning('id').executeTakeFirstOrThrow()
          for (let c = 0; c < k % 3; c++) {
            await db
              .insertInto('comments')
              .values({ note_id: row.id, author_id: owner.id, body: `c${c}` })
              .execute()
          }
        }
      }),
    )
    shared.prepare('insert into tenants (id, name) values (?, ?)').run(id, id)
    shared
      .prepare('insert into accounts (id, email, name) values (?, ?, ?)')
      .run(owner.id, `owner@${id}.test`, `Owner ${id}`)
    const insertNote = shared.prepare(
      'insert into notes (tenant_id, title, body, author_id, created_at, updated_at) values (?, ?, ?, ?, ?, ?)',
    )
    const insertComment = shared.prepare(
      'insert into comments (tenant_id, note_id, author_id, body) values (?, ?, ?, ?)',
    )
    shared.transaction(() => {
      for (const [k, note] of notes.entries()) {
        const { lastInsertRowid } = insertNote.run(id, note.title, note.body, note.author_id, now, now)
        for (let c = 0; c < k % 3; c++) insertComment.run(id, lastInsertRowid, owner.id, `c${c}`)
      }
    })()
  }
  shared.close()
  await shard.close()
}

// ---------------------------------------------------------------- driver

async function startChild(kind: Kind, dir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, 'serve', kind, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString()
      const line = buffer.split('\n')[0]
      if (buffer.includes('\n') && line) resolve((JSON.parse(line) as { port: number }).port)
    })
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)))
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

function load(url: string, seconds: number) {
  const requests = Array.from({ length: TENANTS }, (_, i) => ({
    method: 'GET' as const,
    path: '/notes',
    headers: { 'x-tenant': idOf((i * 37) % TENANTS) },
  }))
  return autocannon({ url, connections: CONNECTIONS, duration: seconds, requests })
}

async function main(): Promise<void> {
  printHeader('http-routing: tenant-routed GET /notes vs one shared database')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardines-bench-http-'))
  try {
    const started = performance.now()
    await buildData(dir)
    console.log(
      `${TENANTS} tenants × ${NOTES} notes built in ${((performance.now() - started) / 1000).toFixed(1)} s; ${CONNECTIONS} connections, ${ROUNDS} rounds × ${SECONDS} s per server`,
    )
    const kinds: Kind[] = ['routed', 'shared-kysely', 'shared-prepared']
    const servers = new Map<Kind, { child: ChildProcess; url: string }>()
    for (const kind of kinds) servers.set(kind, await startChild(kind, dir))
    try {
      // Same answer from each server before measuring anything.
      const bodies = await Promise.all(
        kinds.map(async (kind) => {
          const res = await fetch(`${servers.get(kind)!.url}/notes`, { headers: { 'x-tenant': idOf(3) } })
          const json = (await res.json()) as {
            tenant: string
            notes: { title: string; comments: number; author: unknown }[]
          }
          return JSON.stringify(
            json.notes.map((n) => [n.title, n.comments, n.author && (n.author as { email: string }).email]),
          )
        }),
      )
      if (new Set(bodies).size !== 1) throw new Error(`the servers disagree:\n${bodies.join('\n')}`)

      for (const kind of kinds) await load(servers.get(kind)!.url, 1) // warm-up
      const results = new Map<Kind, { rps: number[]; p99: number[]; errors: number }>(
        kinds.map((k) => [k, { rps: [], p99: [], errors: 0 }]),
      )
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? kinds : [...kinds].reverse()
        for (const kind of order) {
          const r = await load(servers.get(kind)!.url, SECONDS)
          const entry = results.get(kind)!
          entry.rps.push(r.requests.average)
          entry.p99.push(r.latency.p99)
          entry.errors += r.errors + r.non2xx + r.timeouts
        }
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
      const baseline = mean(results.get('shared-kysely')!.rps)
      const floor = mean(results.get('shared-prepared')!.rps)
      printTable(
        'GET /notes (50 newest notes + author + comment count), req/s averaged over rounds',
        ['server', 'req/s', 'per round', 'p99 ms', 'errors', 'vs shared (Kysely)', 'vs shared (prepared)'],
        kinds.map((kind) => {
          const r = results.get(kind)!
          const rps = mean(r.rps)
          return [
            kind,
            rps.toFixed(0),
            r.rps.map((x) => x.toFixed(0)).join(' / '),
            mean(r.p99).toFixed(1),
            r.errors,
            ratio(rps, baseline),
            ratio(rps, floor),
          ]
        }),
      )
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
      const perRound = (of: Kind) => results.get('routed')!.rps.map((r, i) => r / (results.get(of)!.rps[i] as number))
      const value = median(perRound('shared-kysely'))
      console.log(
        `\nper-round routed / shared (Kysely): ${perRound('shared-kysely')
          .map((x) => x.toFixed(2))
          .join(' ')}`,
      )
      console.log(
        `${value >= BAR ? 'ok    ' : 'MISSED'} routed / shared (Kysely) = ${value.toFixed(2)}× (median of rounds; bar ≥ ${BAR}×); routed / shared (prepared statement) = ${median(perRound('shared-prepared')).toFixed(2)}×`,
      )
      if ([...results.values()].some((r) => r.errors > 0)) throw new Error('some requests failed during the run')
    } finally {
      for (const { child } of servers.values()) child.kill()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'serve') {
  await serveChild(process.argv[3] as Kind, process.argv[4] as string)
} else {
  await main()
}
