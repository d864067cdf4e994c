// Holds a database file's exclusive lock for a while, as another process would:
// node hold-lock.mjs <file> <ms>. Prints "locked" once it holds the lock.
import Database from 'better-sqlite3'

const [file, ms] = process.argv.slice(2)
const db = new Database(file, { timeout: 10_000 })
db.exec('begin exclusive')
db.prepare("insert into documents (title, owner_id) values ('from the other process', 2)").run()
process.stdout.write('locked\n')
setTimeout(() => {
  db.exec('commit')
  db.close()
}, Number(ms))
