/**
 * Lock waits and the event loop (issue 14).
 *
 * Another process holds tenant A's file locked (`BEGIN EXCLUSIVE` in the
 * rollback journal: readers blocked too) for LOCK_MS. Meanwhile this process
 * serves tenant B in a loop (a scope + point select per request) and also asks
 * A for one row, which has to wait. Printed: tenant B's request latency (p50,
 * p99, max) and the event loop's delay (p99, max, from perf_hooks'
 * monitorEventLoopDelay) while A is locked, each against the same figures
 * with nothing locked, measured in the same run; and how A's request ended.
 *
 * Before issue 14, better-sqlite3 waited for A's lock synchronously inside
 * busy_timeout (5000 ms by default): the whole event loop, every tenant with
 * it, stalled for as long as the other process held the lock. Now SQLite's own
 * wait is a few ms and the rest is an asynchronous retry with backoff.
 *
 * Env: BENCH_LOCK_MS (default 2000).
 */
import { spawn } from 'node:child_process'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { openShard, tempDir, tenantFile } from './lib/fixture.js'
import { printHeader, printTable } from './lib/table.js'

const LOCK_MS = Number(process.env.BENCH_LOCK_MS ?? 2000)

printHeader(`lock waits: tenant A locked by another process for ${LOCK_MS} ms, tenant B served meanwhile`)
const dir = tempDir('lock-wait')
const shard = await openShard(dir, { busyTimeout: LOCK_MS * 3 })
for (const id of ['a', 'b']) {
  await shard.tenants.create(id)
  await shard.withTenant(id, (t) =>
    t.db
      .insertInto('documents')
      .values({ id: 1, title: `${id} row`, owner_id: 1 })
      .execute(),
  )
}

const ms = (ns: number) => `${(ns / 1e6).toFixed(2)} ms`
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0

/** Serves tenant B for `duration` ms: per-request latencies and the event loop's delay meanwhile. */
async function serveB(duration: number) {
  const latencies: number[] = []
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const end = performance.now() + duration
  while (performance.now() < end) {
    const start = performance.now()
    await shard.withTenant('b', (t) => t.db.selectFrom('documents').selectAll().where('id', '=', 1).executeTakeFirst())
    latencies.push((performance.now() - start) * 1e6)
    // A request arrives every millisecond or so (timers let the loop breathe, as a server's would).
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  loop.disable()
  latencies.sort((x, y) => x - y)
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? 0,
    loopP99: loop.percentile(99),
    loopMax: loop.max,
    requests: latencies.length,
  }
}

// Baseline: nothing locked.
const free = await serveB(LOCK_MS)

// Locked: a child process takes A's exclusive lock, says so, holds it LOCK_MS, commits, exits.
const holder = spawn(
  process.execPath,
  [fileURLToPath(new URL('./lib/hold-lock.mjs', import.meta.url)), tenantFile(dir, 'a'), String(LOCK_MS)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
const holderClosed = new Promise((resolve) => holder.on('close', resolve))
await new Promise<void>((resolve, reject) => {
  holder.stdout.on('data', (chunk: Buffer) => {
    if (chunk.toString().includes('locked')) resolve()
  })
  holder.on('exit', (code) => reject(new Error(`the lock holder exited early (${code})`)))
})
const aStarted = performance.now()
const aOutcome = shard
  .withTenant('a', (t) => t.db.selectFrom('documents').select('title').where('id', '=', 1).executeTakeFirst())
  .then(
    (row) => `returned ${JSON.stringify(row)} after ${ms((performance.now() - aStarted) * 1e6)}`,
    (error: Error) => `${error.name} after ${ms((performance.now() - aStarted) * 1e6)}`,
  )
const locked = await serveB(LOCK_MS * 0.8)
const aResult = await aOutcome
await holderClosed

printTable(
  'tenant B while tenant A is locked by another process (same run, nothing locked = baseline)',
  ['case', 'requests', 'B p50', 'B p99', 'B max', 'event loop p99', 'event loop max'],
  [
    ['nothing locked', free.requests, ms(free.p50), ms(free.p99), ms(free.max), ms(free.loopP99), ms(free.loopMax)],
    [
      'A locked',
      locked.requests,
      ms(locked.p50),
      ms(locked.p99),
      ms(locked.max),
      ms(locked.loopP99),
      ms(locked.loopMax),
    ],
  ],
)
console.log(`\ntenant A's request, started while locked: ${aResult}`)
console.log(
  `B's p99 while A is locked: ${(locked.p99 / free.p99).toFixed(2)}× the unlocked p99; event-loop p99 ${ms(locked.loopP99)} (unlocked ${ms(free.loopP99)})`,
)
await shard.close()
