import * as fs from 'node:fs'
import * as path from 'node:path'

/**
 * Every file and folder under `root`, as sorted relative paths (folders end
 * in `/`), with file sizes: compare two snapshots to prove nothing was created,
 * removed or grown.
 */
export function snapshotTree(root: string, options: { sizes?: boolean } = {}): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    let entries: fs.Dirent[]
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name)
      const rel = path.relative(root, full)
      if (entry.isDirectory()) {
        out.push(`${rel}/`)
        walk(full)
      } else {
        out.push(options.sizes ? `${rel} ${fs.statSync(full).size}` : rel)
      }
    }
  }
  walk(root)
  return out.sort()
}

/** Files under `root` whose name contains `needle` (e.g. a tenant id and its side files). */
export function filesMentioning(root: string, needle: string): string[] {
  return snapshotTree(root).filter((p) => !p.endsWith('/') && path.basename(p).includes(needle))
}
