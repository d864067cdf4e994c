import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { CliOutput } from '../cli-output.js'
import { type AnyShardines, CliConfigError } from '../load-config.js'
import type { ParsedCommand } from '../parse-command.js'

/** The contract of `@shardines/codegen` that the CLI calls. */
interface CodegenModule {
  runCodegenCommand(options: {
    shard: AnyShardines
    cwd: string
    out?: string | undefined
    verify: boolean
    log: (line: string) => void
  }): Promise<number>
}

/**
 * `shardines codegen [--out DIR] [--verify]`: hands over to `@shardines/codegen`,
 * imported on demand (core does not depend on it), from core's own dependencies
 * or else from the project that holds the config.
 */
export async function codegenCommand(
  shard: AnyShardines,
  command: Extract<ParsedCommand, { kind: 'codegen' }>,
  out: CliOutput,
  cwd: string,
  configFile: string,
): Promise<number> {
  const codegen = await importCodegen(configFile)
  const lines: string[] = []
  const code = await codegen.runCodegenCommand({
    shard,
    cwd,
    out: command.out,
    verify: command.verify,
    log: (line) => {
      lines.push(line)
      out.line(line)
    },
  })
  if (out.json) out.result({ exitCode: code, lines })
  return code
}

async function importCodegen(configFile: string): Promise<CodegenModule> {
  try {
    return (await import('@shardines/codegen' as string)) as CodegenModule
  } catch (error) {
    if ((error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error
  }
  const entry = resolveFrom(configFile)
  if (entry === undefined) {
    throw new CliConfigError(
      'shardines codegen needs @shardines/codegen: install it in your project (npm i -D @shardines/codegen) and run the command again.',
    )
  }
  return (await import(pathToFileURL(entry).href)) as CodegenModule
}

/** Resolves the package's ESM entry from the config's folder (its `import` export, or `main`). */
function resolveFrom(configFile: string): string | undefined {
  let manifestPath: string
  try {
    manifestPath = createRequire(configFile).resolve('@shardines/codegen/package.json')
  } catch {
    return undefined
  }
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as {
    exports?: Record<string, { import?: string; default?: string } | string>
    main?: string
  }
  const root = manifest.exports?.['.']
  const relative = typeof root === 'string' ? root : (root?.import ?? root?.default ?? manifest.main ?? 'index.js')
  return path.join(path.dirname(manifestPath), relative)
}
