/** Files this process holds open, read from Linux `/proc/self/fd`. */
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Whether this platform lets the tests list open descriptors. */
export const HAS_PROC_FD = fs.existsSync('/proc/self/fd')

/** A database file's path for one of its side files (-wal, -shm, -journal), or the path itself. */
export function mainFileOf(file: string): string {
  return file.replace(/-(wal|shm|journal)$/, '')
}

/**
 * The paths under `dir` this process holds descriptors on (one entry per
 * descriptor; side files included), or undefined without `/proc/self/fd`.
 */
export function openPathsUnder(dir: string): string[] | undefined {
  if (!HAS_PROC_FD) return undefined
  const root = fs.realpathSync(dir)
  const found: string[] = []
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue
    }
    if (target.startsWith(root + path.sep)) found.push(target)
  }
  return found
}
