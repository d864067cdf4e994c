import type { AnyShardines } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'
import type { ParsedCommand } from '../parse-command.js'

/**
 * `shardines codegen [--out DIR] [--verify]`: hands over to `@shardines/codegen`, a dependency
 * of the CLI. Imported when this command runs (a literal specifier, so it is typed and the
 * package-graph check sees it), because it loads kysely-codegen and the TypeScript compiler,
 * about 1.5 s that every other command would pay at startup.
 */
export async function codegenCommand(
  shard: AnyShardines,
  command: Extract<ParsedCommand, { kind: 'codegen' }>,
  out: CliOutput,
  cwd: string,
): Promise<number> {
  const { runCodegenCommand } = await import('@shardines/codegen')
  const lines: string[] = []
  const code = await runCodegenCommand({
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
