/** Raw better-sqlite3 baselines for a pool miss: open a file, read one row, then close it or keep it in an LRU. */
import Database from 'better-sqlite3'
import type { Case } from './measure.js'

/** The point select the miss benchmarks read with (`documents` of the benchmark schema). */
export const POINT_SELECT = 'select * from "documents" where "id" = ?'

/**
 * A case that walks `files` in a ring: opens the next file, reads row
 * `(i % rows) + 1`, and closes it, or with `keep` set keeps it in an LRU of
 * `keep` connections and closes the oldest (what a pool of `keep` does on a miss).
 * `close()` closes what the LRU still holds.
 */
export function rawOpenCase(
  name: string,
  files: readonly string[],
  options: { readonly rows: number; readonly keep?: number },
): Case & { close(): void } {
  const { rows, keep } = options
  let at = 0
  const lru: Database.Database[] = []
  return {
    name,
    run(n) {
      for (let i = 0; i < n; i++) {
        const db = new Database(files[at] as string, { fileMustExist: true })
        db.prepare(POINT_SELECT).get((i % rows) + 1)
        if (keep === undefined) {
          db.close()
        } else {
          lru.push(db)
          if (lru.length > keep) lru.shift()?.close()
        }
        at = (at + 1) % files.length
      }
    },
    close() {
      for (const db of lru.splice(0)) db.close()
    },
  }
}
