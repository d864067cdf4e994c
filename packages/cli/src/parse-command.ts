import { parseArgs } from 'node:util'
import { match, P } from 'ts-pattern'

/** What `shardines <args>` asked for: one case per command, checked before anything is opened. */
export type ParsedCommand =
  | {
      readonly kind: 'migrate'
      readonly target: 'default' | 'apex' | 'all' | { readonly tenant: string }
      readonly concurrency: number | undefined
    }
  | { readonly kind: 'status' }
  | { readonly kind: 'tenants-list' }
  | { readonly kind: 'tenants-create'; readonly id: string }
  | { readonly kind: 'tenants-destroy'; readonly id: string; readonly yes: boolean }
  | { readonly kind: 'tenants-rename'; readonly from: string; readonly to: string }
  | { readonly kind: 'tenants-archive'; readonly id: string }
  | { readonly kind: 'tenants-rekey'; readonly id: string; readonly previousKeyEnv: string }
  | { readonly kind: 'tenants-restore'; readonly id: string }
  | { readonly kind: 'tenants-archived' }
  | {
      readonly kind: 'doctor'
      readonly fix: boolean
      readonly check: 'quick' | 'full' | 'none'
      readonly graceMs: number | undefined
    }
  | { readonly kind: 'layout-migrate' }
  | { readonly kind: 'backup'; readonly id: string; readonly dest: string; readonly overwrite: boolean }
  | { readonly kind: 'codegen'; readonly out: string | undefined; readonly verify: boolean }
  | { readonly kind: 'help'; readonly command?: string }
  | { readonly kind: 'version' }

/** Options every command takes. */
export interface GlobalOptions {
  /** `--config PATH`; default: `shardines.config.{ts,mts,js,mjs}` in the working directory. */
  readonly config: string | undefined
  /** `--json`: machine-readable output on stdout, no progress. */
  readonly json: boolean
}

export interface ParsedInvocation {
  readonly command: ParsedCommand
  readonly global: GlobalOptions
}

/** A command line that does not parse: printed with the usage, exit code 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError'
}

export const USAGE = `Usage: shardines <command> [options]

Commands:
  migrate [--apex | --tenant ID | --all] [--concurrency N]
                          apply pending migrations (no flag: apex, then every tenant)
  status                  each tenant's version, pending migrations and schema drift
  tenants list            every tenant id
  tenants create ID       create a tenant (migrated to the latest version)
  tenants destroy ID      delete a tenant's database (asks to confirm; --yes skips)
  tenants rename FROM TO  give a tenant another id (waits for its running scopes)
  tenants archive ID      move a tenant out of the live set, compressed, into archive/
  tenants restore ID      bring an archived tenant back
  tenants archived        the archived tenants, with their versions
  tenants rekey ID --previous-key-env NAME
                          re-encrypt a tenant with the key the config's resolver now gives it; its
                          current key is read from the environment variable NAME (never from argv)
  doctor [--fix] [--full | --no-check] [--grace MINUTES]
                          check the data folder: leftovers of killed operations, stale locks, stray
                          files, damaged tenants, unknown versions; --fix removes and completes what is
                          safe to (exit 1 when something needs a person)
  layout migrate          move tenant files into the configured layout (resumable, safe while the app runs)
  backup ID DEST [--overwrite]
                          online backup of a tenant (or "apex") to the file DEST, outside the data folder
                          (an existing DEST only with --overwrite, and never a live database)
  codegen [--out DIR] [--verify]
                          generate (or check) the ApexDB / TenantDB types (@shardines/codegen)

Options:
  --config PATH           the config module (default: shardines.config.{ts,mts,js,mjs} in the working directory)
  --json                  machine-readable output on stdout, no progress bar
  -h, --help              show this help
  --version               print the version

Exit codes: 0 done, 1 something failed (named in the output), 2 bad usage or config.`

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  apex: { type: 'boolean', default: false },
  tenant: { type: 'string' },
  all: { type: 'boolean', default: false },
  concurrency: { type: 'string' },
  yes: { type: 'boolean', short: 'y', default: false },
  out: { type: 'string' },
  verify: { type: 'boolean', default: false },
  overwrite: { type: 'boolean', default: false },
  fix: { type: 'boolean', default: false },
  full: { type: 'boolean', default: false },
  'no-check': { type: 'boolean', default: false },
  grace: { type: 'string' },
  'previous-key-env': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
} as const

type Flag = keyof typeof OPTIONS
const GLOBAL_FLAGS: readonly Flag[] = ['config', 'json', 'help', 'version']

/**
 * Parses `argv` (without node and the script) into a {@link ParsedInvocation}.
 *
 * @example
 * ```ts
 * parseCommand(['migrate', '--all', '--concurrency', '4'])
 * // { command: { kind: 'migrate', target: 'all', concurrency: 4 }, global: { config: undefined, json: false } }
 * ```
 */
export function parseCommand(argv: readonly string[]): ParsedInvocation {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true })
  } catch (error) {
    throw new CliUsageError(usageProblem(error as Error & { code?: string }, argv))
  }
  const { values, positionals } = parsed
  const global: GlobalOptions = { config: values.config, json: values.json }
  const given = (Object.keys(values) as Flag[]).filter(
    (flag) => values[flag] !== undefined && values[flag] !== false && !GLOBAL_FLAGS.includes(flag),
  )
  const only = (command: string, allowed: readonly Flag[]) => {
    const stray = given.filter((flag) => !allowed.includes(flag))
    if (stray.length > 0) {
      throw new CliUsageError(`${command} does not take ${stray.map((f) => `--${f}`).join(', ')}.`)
    }
  }
  const arity = (command: string, names: readonly string[], rest: readonly string[]) => {
    if (rest.length !== names.length) {
      throw new CliUsageError(
        `${command} takes ${names.length === 0 ? 'no arguments' : names.join(' ')}${rest.length > names.length ? `, not "${rest.slice(names.length).join(' ')}"` : ''}.`,
      )
    }
  }
  if (values.version) return { command: { kind: 'version' }, global }
  if (values.help || positionals.length === 0) {
    const topic = positionals[0]
    return { command: topic === undefined ? { kind: 'help' } : { kind: 'help', command: topic }, global }
  }
  const [name, ...rest] = positionals as [string, ...string[]]

  const command = match<[string, readonly string[]], ParsedCommand>([name, rest])
    .with(['migrate', P._], () => {
      only('migrate', ['apex', 'tenant', 'all', 'concurrency'])
      arity('migrate', [], rest)
      const targets = [values.apex && 'apex', values.tenant !== undefined && 'tenant', values.all && 'all'].filter(
        Boolean,
      )
      if (targets.length > 1) throw new CliUsageError('migrate takes one of --apex, --tenant ID, --all.')
      return {
        kind: 'migrate',
        target: values.apex
          ? 'apex'
          : values.all
            ? 'all'
            : values.tenant !== undefined
              ? { tenant: values.tenant }
              : 'default',
        concurrency: parseConcurrency(values.concurrency),
      }
    })
    .with(['status', P._], () => {
      only('status', [])
      arity('status', [], rest)
      return { kind: 'status' }
    })
    .with(['tenants', ['list']], () => {
      only('tenants list', [])
      return { kind: 'tenants-list' }
    })
    .with(['tenants', ['create', P.string]], ([, [, id]]) => {
      only('tenants create', [])
      return { kind: 'tenants-create', id }
    })
    .with(['tenants', ['destroy', P.string]], ([, [, id]]) => {
      only('tenants destroy', ['yes'])
      return { kind: 'tenants-destroy', id, yes: values.yes }
    })
    .with(['tenants', ['rename', P.string, P.string]], ([, [, from, to]]) => {
      only('tenants rename', [])
      return { kind: 'tenants-rename', from, to }
    })
    .with(['tenants', ['archive', P.string]], ([, [, id]]) => {
      only('tenants archive', [])
      return { kind: 'tenants-archive', id }
    })
    .with(['tenants', ['restore', P.string]], ([, [, id]]) => {
      only('tenants restore', [])
      return { kind: 'tenants-restore', id }
    })
    .with(['tenants', ['rekey', P.string]], ([, [, id]]) => {
      only('tenants rekey', ['previous-key-env'])
      const previousKeyEnv = values['previous-key-env']
      if (previousKeyEnv === undefined || previousKeyEnv === '') {
        throw new CliUsageError(
          'tenants rekey ID needs --previous-key-env NAME: the environment variable holding the key the tenant is encrypted with now.',
        )
      }
      return { kind: 'tenants-rekey', id, previousKeyEnv }
    })
    .with(['tenants', ['archived']], () => {
      only('tenants archived', [])
      return { kind: 'tenants-archived' }
    })
    .with(['tenants', P._], () => {
      throw new CliUsageError(
        'tenants takes: list | create ID | destroy ID [--yes] | rename FROM TO | archive ID | restore ID | archived | rekey ID --previous-key-env NAME.',
      )
    })
    .with(['doctor', P._], () => {
      only('doctor', ['fix', 'full', 'no-check', 'grace'])
      arity('doctor', [], rest)
      if (values.full && values['no-check']) throw new CliUsageError('doctor takes one of --full, --no-check.')
      return {
        kind: 'doctor',
        fix: values.fix,
        check: values.full ? 'full' : values['no-check'] ? 'none' : 'quick',
        graceMs: parseGrace(values.grace),
      }
    })
    .with(['layout', ['migrate']], () => {
      only('layout migrate', [])
      return { kind: 'layout-migrate' }
    })
    .with(['layout', P._], () => {
      throw new CliUsageError('layout takes: migrate.')
    })
    .with(['backup', P._], () => {
      only('backup', ['overwrite'])
      arity('backup', ['ID', 'DEST'], rest)
      return { kind: 'backup', id: rest[0] as string, dest: rest[1] as string, overwrite: values.overwrite }
    })
    .with(['codegen', P._], () => {
      only('codegen', ['out', 'verify'])
      arity('codegen', [], rest)
      return { kind: 'codegen', out: values.out, verify: values.verify }
    })
    .with(['help', P._], () => (rest[0] === undefined ? { kind: 'help' } : { kind: 'help', command: rest[0] }))
    .otherwise(() => {
      throw new CliUsageError(`Unknown command "${name}".`)
    })
  return { command, global }
}

function parseGrace(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const minutes = Number(value)
  if (!Number.isFinite(minutes) || minutes < 0)
    throw new CliUsageError(`--grace takes minutes (a number of at least 0), not "${value}".`)
  return minutes * 60_000
}

function parseConcurrency(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new CliUsageError(`--concurrency must be a whole number of at least 1, not "${value}".`)
  return n
}

/** parseArgs' complaint, said for this CLI (which command, which flag, where to look). */
function usageProblem(error: Error & { code?: string }, argv: readonly string[]): string {
  const command = argv.find((a) => !a.startsWith('-'))
  const flag = /'(-[^']*)'/.exec(error.message)?.[1]
  const help = command === undefined ? 'shardines --help' : `shardines ${command} --help`
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag !== undefined)
    return `Unknown option ${flag}${command === undefined ? '' : ` for ${command}`}. See ${help}.`
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag !== undefined)
    return `Option ${flag.split(' ')[0]} needs a value. See ${help}.`
  return `${error.message} See ${help}.`
}

/**
 * The usage of one command (`shardines tenants --help`): its lines of
 * {@link USAGE} and the options every command takes; undefined for an unknown command.
 */
export function commandUsage(command: string): string | undefined {
  const lines = USAGE.split('\n')
  const start = lines.indexOf('Commands:')
  const end = lines.indexOf('', start)
  const picked: string[] = []
  let taking = false
  for (const line of lines.slice(start + 1, end)) {
    if (/^ {2}\S/.test(line)) taking = line.trimStart().startsWith(`${command} `) || line.trim() === command
    if (taking) picked.push(line)
  }
  if (picked.length === 0) return undefined
  const options = lines.slice(lines.indexOf('Options:'))
  return [`Usage: shardines ${command} …`, '', ...picked, '', ...options].join('\n')
}
