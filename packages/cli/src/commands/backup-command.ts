import * as path from 'node:path'
import type { AnyShardines } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'
import type { ParsedCommand } from '../parse-command.js'

/** `shardines backup ID DEST [--overwrite]`: an online, consistent copy of a live tenant (or `apex`) at DEST. */
export async function backupCommand(
  shard: AnyShardines,
  command: Extract<ParsedCommand, { kind: 'backup' }>,
  out: CliOutput,
  cwd: string,
): Promise<number> {
  const dest = path.resolve(cwd, command.dest)
  const started = performance.now()
  await shard.tenants.backup(command.id, dest, { overwrite: command.overwrite })
  const ms = performance.now() - started
  out.line(`backed up ${command.id} to ${dest} in ${ms.toFixed(0)} ms`)
  if (out.json) out.result({ backup: command.id, dest })
  return 0
}
