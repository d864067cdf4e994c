// Holds a tenant file's write lock from another process: opens the file directly
// with better-sqlite3, begins a transaction (`exclusive` blocks readers too under
// the rollback journal; under WAL it is a plain write lock), inserts one
// document titled <title>, prints "locked", waits <holdMs> with its event loop
// free, commits, prints "released" and exits.
// Usage: lock-holder-child.ts <file> <exclusive|immediate> <holdMs> <title>
import Database from 'better-sqlite3'

// Never outlive a parent that stopped watching (a failed or timed-out test).
setTimeout(() => process.exit(3), 60_000).unref()

const [file, mode, holdMs, title] = process.argv.slice(2)
if (mode !== 'exclusive' && mode !== 'immediate') throw new Error(`unknown lock mode ${mode}`)
const db = new Database(file!, { fileMustExist: true })
db.exec(`begin ${mode}`)
db.prepare('insert into documents (title) values (?)').run(title)
// A synchronous write to a pipe on Linux: once printed, the parent has it.
process.stdout.write('locked\n')
setTimeout(() => {
  db.exec('commit')
  db.close()
  process.stdout.write('released\n')
  process.exit(0)
}, Number(holdMs))
