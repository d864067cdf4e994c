// Runs one lifecycle operation in a loop until the parent kills it with SIGKILL.
// Prints "ready" once loaded, waits for "go" on stdin, then "begin <op>" before
// each operation and "done <op> <ms>" after it (synchronous writes to a pipe on
// Linux: once printed, the parent has the line, so the last line says whether an
// operation was in flight). A failed operation prints "error <op> <code> <message>"
// and the loop goes on; the parent decides whether that was legitimate.
// Usage:
//   lifecycle-kill-child.ts <dir> rename <a> <b>   rename a→b, b→a, … (whichever exists)
//   lifecycle-kill-child.ts <dir> archive <id>     archive, restore, archive, …
//   lifecycle-kill-child.ts <dir> layout           migrateLayout into hashed, into flat, … (every tenant)
// Run compiled (helpers/compiled-child.ts): imports only node: built-ins and packages.
// No migrations: none of these operations opens a tenant.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { createShardines, ShardinesError } from '@shardines/core'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [dir, mode, ...ids] = process.argv.slice(2) as [string, string, ...string[]]
const open = (layout: 'flat' | 'hashed') => createShardines({ storage: sqliteStorage({ dir, layout }) })

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

function readStdinLine(): Promise<string> {
  return new Promise((resolve) => {
    let buffer = ''
    process.stdin.setEncoding('utf8')
    const onData = (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf('\n')
      if (nl < 0) return
      process.stdin.off('data', onData)
      process.stdin.pause()
      resolve(buffer.slice(0, nl))
    }
    process.stdin.on('data', onData)
  })
}

/** Runs one operation between "begin" and "done" lines; a failure is printed, not thrown. */
async function step(op: string, run: () => Promise<unknown>): Promise<void> {
  say(`begin ${op}`)
  const started = performance.now()
  try {
    await run()
  } catch (error) {
    const code = error instanceof ShardinesError ? error.code : (error as { code?: string }).code
    say(`error ${op} ${code ?? 'none'} ${String((error as Error).message).replace(/\n/g, ' ')}`)
    return
  }
  say(`done ${op} ${(performance.now() - started).toFixed(2)}`)
}

const flat = open('flat')
const hashed = open('hashed')
say('ready')
await readStdinLine()

if (mode === 'rename') {
  const [a, b] = ids as [string, string]
  for (;;) {
    const fromA = await flat.tenants.exists(a)
    await step('rename', () => (fromA ? flat.tenants.rename(a, b) : flat.tenants.rename(b, a)))
  }
} else if (mode === 'archive') {
  const [id] = ids as [string]
  for (;;) {
    if (await flat.tenants.exists(id)) await step('archive', () => flat.tenants.archive(id))
    else await step('restore', () => flat.tenants.restore(id))
  }
} else if (mode === 'layout') {
  // Start with the direction that has files to move, so the first pass does work.
  const flatCount = fs.readdirSync(path.join(dir, 'tenants')).filter((n) => n.endsWith('.sqlite3')).length
  let shard = flatCount > 0 ? hashed : flat
  for (;;) {
    await step(`layout-${shard === hashed ? 'hashed' : 'flat'}`, async () => {
      const report = await shard.tenants.migrateLayout()
      if (report.failed.length > 0) {
        throw new Error(`failed: ${report.failed.map((f) => `${f.id}: ${f.error.message}`).join('; ')}`)
      }
    })
    shard = shard === hashed ? flat : hashed
  }
} else {
  throw new Error(`unknown mode ${mode}`)
}
