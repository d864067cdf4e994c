import * as fs from 'node:fs'
import type { CodegenOptions } from './codegen-options.js'
import { renderSchemas, type SchemaFileName } from './generate-schemas.js'

/**
 * Regenerates the schema files in memory and compares them, byte for byte,
 * with those in `outDir`. Resolves to the names of the files that are stale
 * or missing (`[]` when everything is up to date); writes nothing. Use it in
 * CI so that a migration merged without regenerating fails the build.
 *
 * @example
 * ```ts
 * const stale = await verifySchemas({ shard, outDir: 'db' })
 * if (stale.length > 0) throw new Error(`stale: ${stale.join(', ')}; run shardines codegen`)
 * ```
 */
export async function verifySchemas(options: CodegenOptions): Promise<SchemaFileName[]> {
  const files = await renderSchemas(options)
  const stale: SchemaFileName[] = []
  for (const file of files) {
    let current: string | undefined
    try {
      current = await fs.promises.readFile(file.path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (current !== file.content) stale.push(file.name)
  }
  return stale
}
