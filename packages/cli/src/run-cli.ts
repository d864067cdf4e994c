import { readFileSync } from 'node:fs'
import { ShardinesError } from '@shardines/core'
import { match } from 'ts-pattern'
import { type CliStreams, createCliOutput } from './cli-output.js'
import { backupCommand } from './commands/backup-command.js'
import { codegenCommand } from './commands/codegen-command.js'
import { doctorCommand, layoutCommand } from './commands/doctor-command.js'
import { migrateCommand } from './commands/migrate-command.js'
import { statusCommand } from './commands/status-command.js'
import { tenantsCommand } from './commands/tenants-command.js'
import { CliConfigError, loadConfig } from './load-config.js'
import { CliUsageError, commandUsage, parseCommand, USAGE } from './parse-command.js'

/** Exit codes of `shardines`. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2 })

export interface CliEnvironment extends CliStreams {
  readonly cwd: string
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  /** Aborted on Ctrl-C: `migrate --all` stops handing out tenants and reports what ran. */
  readonly signal: AbortSignal
}

/**
 * Runs one `shardines` command line and resolves to its exit code; never throws.
 *
 * @example
 * ```ts
 * const code = await runCli(['status', '--json'], { cwd, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, signal })
 * ```
 */
export async function runCli(argv: readonly string[], env: CliEnvironment): Promise<number> {
  let parsed: ReturnType<typeof parseCommand>
  try {
    parsed = parseCommand(argv)
  } catch (error) {
    const topic = argv.find((a) => !a.startsWith('-'))
    const usage = (topic === undefined ? undefined : commandUsage(topic)) ?? USAGE
    env.stderr.write(`shardines: ${(error as Error).message}\n\n${usage}\n`)
    return EXIT.usage
  }
  const { command, global } = parsed
  if (command.kind === 'help') {
    if (command.command !== undefined) {
      const usage = commandUsage(command.command)
      if (usage === undefined) {
        env.stderr.write(`shardines: Unknown command "${command.command}".\n\n${USAGE}\n`)
        return EXIT.usage
      }
      env.stdout.write(`${usage}\n`)
      return EXIT.ok
    }
    env.stdout.write(`${USAGE}\n`)
    return EXIT.ok
  }
  if (command.kind === 'version') {
    env.stdout.write(`${version()}\n`)
    return EXIT.ok
  }
  const out = createCliOutput(env, global.json)
  let loaded: Awaited<ReturnType<typeof loadConfig>>
  try {
    loaded = await loadConfig(env.cwd, global.config)
  } catch (error) {
    out.error(`shardines: ${(error as Error).message}`)
    return EXIT.usage
  }
  const { shard } = loaded
  try {
    return await match(command)
      .with({ kind: 'migrate' }, (c) => migrateCommand(shard, c, out, env.signal))
      .with({ kind: 'status' }, () => statusCommand(shard, out))
      .with(
        { kind: 'tenants-list' },
        { kind: 'tenants-create' },
        { kind: 'tenants-destroy' },
        { kind: 'tenants-rename' },
        { kind: 'tenants-archive' },
        { kind: 'tenants-restore' },
        { kind: 'tenants-rekey' },
        { kind: 'tenants-archived' },
        (c) => tenantsCommand(shard, c, out, env),
      )
      .with({ kind: 'doctor' }, (c) => doctorCommand(shard, c, out))
      .with({ kind: 'layout-migrate' }, (c) => layoutCommand(shard, c, out))
      .with({ kind: 'backup' }, (c) => backupCommand(shard, c, out, env.cwd))
      .with({ kind: 'codegen' }, (c) => codegenCommand(shard, c, out, env.cwd))
      .exhaustive()
  } catch (error) {
    if (error instanceof CliUsageError || error instanceof CliConfigError) {
      out.error(`shardines: ${error.message}`)
      return EXIT.usage
    }
    const code = error instanceof ShardinesError || typeof (error as { code?: unknown }).code === 'string'
    out.error(`shardines: ${code ? '' : 'unexpected error: '}${(error as Error).message ?? String(error)}`)
    if (out.json) out.result({ error: { code: (error as { code?: string }).code, message: (error as Error).message } })
    return EXIT.failed
  } finally {
    await shard.close()
  }
}

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return manifest.version
}
