import type { AnyShardines, MigrationOutcome, MigrationReport } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'
import type { ParsedCommand } from '../parse-command.js'

type MigrateCommand = Extract<ParsedCommand, { kind: 'migrate' }>

/**
 * `shardines migrate [--apex | --tenant ID | --all] [--concurrency N]`. Without
 * a flag: apex, then every tenant (what a release runs). Exit 1 when anything
 * failed, with the failed tenants named.
 */
export async function migrateCommand(
  shard: AnyShardines,
  command: MigrateCommand,
  out: CliOutput,
  signal: AbortSignal,
): Promise<number> {
  const result: { apex?: unknown; tenant?: unknown; tenants?: unknown } = {}
  let code = 0
  const { target } = command
  if (target === 'apex' || target === 'default') {
    const apex = await settle(() => shard.migrate.apex(), 'apex')
    result.apex = jsonOutcome(apex)
    out.line(describe('apex', apex))
    if (apex.status === 'failed') {
      code = 1
      if (target === 'default') out.line('tenants: not migrated, because the apex migration failed.')
    }
  }
  if (typeof target === 'object') {
    const outcome = await settle(() => shard.migrate.tenant(target.tenant), target.tenant)
    result.tenant = jsonOutcome(outcome)
    out.line(describe(`tenant ${target.tenant}`, outcome))
    if (outcome.status === 'failed') code = 1
  }
  if (target === 'all' || (target === 'default' && code === 0)) {
    const started = performance.now()
    let progress: ReturnType<CliOutput['progress']> | undefined
    const report = await shard.migrate.all({
      concurrency: command.concurrency,
      signal,
      onProgress: ({ total, status }) => {
        progress ??= out.progress('migrating', total)
        progress.tick(status === 'failed')
      },
    })
    progress?.stop()
    result.tenants = jsonReport(report)
    summarise(report, (performance.now() - started) / 1000, out, signal.aborted)
    if (report.failed > 0 || signal.aborted) code = 1
  }
  if (out.json) out.result(result)
  return code
}

/** Turns a thrown MigrationError (apex, one tenant) into the failed outcome it describes. */
async function settle(run: () => Promise<MigrationOutcome>, id: string): Promise<MigrationOutcome> {
  try {
    return await run()
  } catch (error) {
    if ((error as { code?: string }).code !== 'MIGRATION_FAILED') throw error
    return { id, from: null, to: null, status: 'failed', error: error as MigrationOutcome['error'] }
  }
}

function describe(what: string, outcome: MigrationOutcome): string {
  if (outcome.status === 'failed') return `${what}: FAILED: ${outcome.error?.message ?? 'unknown error'}`
  if (outcome.status === 'up-to-date') return `${what}: up to date at ${outcome.to ?? '(no migrations)'}`
  return `${what}: migrated ${outcome.from ?? '(empty)'} → ${outcome.to}`
}

function summarise(report: MigrationReport, seconds: number, out: CliOutput, aborted: boolean): void {
  const where =
    report.runner.kind === 'workers'
      ? `${report.runner.workers} worker thread${report.runner.workers === 1 ? '' : 's'}`
      : `the main thread (${report.runner.reason})`
  out.line(
    `tenants: ${report.migrated} migrated, ${report.upToDate} up to date, ${report.failed} failed in ${seconds.toFixed(1)} s on ${where}${aborted ? ' (interrupted: run it again to finish)' : ''}`,
  )
  const failed = report.tenants.filter((t) => t.status === 'failed')
  if (failed.length === 0) return
  out.line(`failed tenants (each left at its previous version):`)
  for (const t of failed) {
    const cause = t.error?.cause instanceof Error ? t.error.cause.message : (t.error?.message ?? '')
    out.line(`  ${t.id}  at ${t.from ?? '(none)'}  ${t.error?.migration ?? ''}  ${cause}`)
  }
  out.error(`${failed.length} tenant${failed.length === 1 ? '' : 's'} failed: ${failed.map((t) => t.id).join(', ')}`)
}

export function jsonOutcome(outcome: MigrationOutcome): Record<string, unknown> {
  const { error, ...rest } = outcome
  if (error === undefined) return rest
  return {
    ...rest,
    error: {
      code: error.code,
      tenantId: error.tenantId,
      migration: error.migration ?? null,
      message: error.message,
      cause: error.cause instanceof Error ? error.cause.message : String(error.cause ?? ''),
    },
  }
}

function jsonReport(report: MigrationReport): Record<string, unknown> {
  return { ...report, tenants: report.tenants.map(jsonOutcome) }
}
