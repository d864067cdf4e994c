import * as path from 'node:path'
import { APEX, MigrationError } from '@shardines/core'
import type { CodegenOptions, CodegenShard } from './codegen-options.js'
import { generateSchemas } from './generate-schemas.js'
import { verifySchemas } from './verify.js'

/** The folder `shardines codegen` writes to when `--out` is not given, relative to `cwd`. */
export const DEFAULT_OUT_DIR = 'db'

/** Arguments of {@link runCodegenCommand}, as the `shardines` CLI parses them. */
export interface CodegenCommandOptions {
  /** The instance exported by `shardines.config.*`: its migrations run on scratch handles of its storage. */
  shard: CodegenShard
  /** The folder `--out` is relative to (the CLI's working directory). */
  cwd: string
  /** `--out DIR`; default {@link DEFAULT_OUT_DIR}. */
  out?: string | undefined
  /** `--verify`: compare instead of writing; exit 1 when a file is stale. */
  verify: boolean
  /** Receives each line of output. */
  log: (line: string) => void
  /** Further codegen options (storage, type names, camelCase, overrides, include/exclude, dates, json). */
  options?: Omit<CodegenOptions, 'shard' | 'migrations' | 'outDir'>
}

/**
 * `shardines codegen [--out DIR] [--verify]`: writes `DIR/apex.ts` and
 * `DIR/tenant.ts`, or with `verify` checks that they are up to date. Resolves
 * to the exit code: 0 done / up to date, 1 stale files (named in the log),
 * 2 the generation failed (bad options, a failing migration). Never throws.
 *
 * @example
 * ```ts
 * const code = await runCodegenCommand({ shard, cwd: process.cwd(), verify: true, log: console.log })
 * // db/tenant.ts is stale: run `shardines codegen` to regenerate it.
 * ```
 */
export async function runCodegenCommand(command: CodegenCommandOptions): Promise<number> {
  const { cwd, log } = command
  const outDir = path.resolve(cwd, command.out ?? DEFAULT_OUT_DIR)
  const shown = (file: string) => path.relative(cwd, path.join(outDir, file)) || file
  const options: CodegenOptions = { ...command.options, shard: command.shard, outDir }
  try {
    if (command.verify) {
      const stale = await verifySchemas(options)
      for (const file of stale) log(`${shown(file)} is stale: run \`shardines codegen\` to regenerate it.`)
      if (stale.length === 0) log(`${shown('apex.ts')} and ${shown('tenant.ts')} are up to date.`)
      return stale.length === 0 ? 0 : 1
    }
    const { files } = await generateSchemas(options)
    for (const file of files) {
      const tables = `${file.tables.length} table${file.tables.length === 1 ? '' : 's'}`
      log(`${file.changed ? 'wrote' : 'unchanged'} ${shown(file.name)} (${tables})`)
    }
    return 0
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const context =
      error instanceof MigrationError
        ? `the ${error.tenantId === APEX ? 'apex' : 'tenant'} migrations fail on a fresh scratch database: `
        : ''
    log(`codegen failed: ${context}${message}`)
    return 2
  }
}
