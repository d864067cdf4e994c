import type { AnyShardines } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'
import type { ParsedCommand } from '../parse-command.js'

/**
 * `shardines doctor [--fix] [--full | --no-check] [--grace MINUTES]`: prints
 * each finding; exits 1 when something is left for a person.
 */
export async function doctorCommand(
  shard: AnyShardines,
  command: Extract<ParsedCommand, { kind: 'doctor' }>,
  out: CliOutput,
): Promise<number> {
  const report = await shard.tenants.doctor({
    fix: command.fix,
    check: command.check,
    ...(command.graceMs === undefined ? {} : { graceMs: command.graceMs }),
  })
  for (const finding of report.findings) {
    const mark = finding.fixed ? 'fixed' : finding.needsPerson ? 'NEEDS A PERSON' : 'note'
    out.line(`${mark.padEnd(14)} ${finding.kind.padEnd(11)} ${finding.path}: ${finding.detail}`)
  }
  out.line(
    `${report.tenants} tenant${report.tenants === 1 ? '' : 's'} checked; ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'}, ${report.needsPerson} needing a person${command.fix ? '' : report.findings.some((f) => !f.needsPerson && f.kind !== 'behind') ? ' (run with --fix to repair the rest)' : ''}`,
  )
  if (out.json) out.result(report)
  return report.needsPerson > 0 ? 1 : 0
}

/** `shardines layout migrate`: moves tenant files into the configured layout. */
export async function layoutCommand(
  shard: AnyShardines,
  _command: Extract<ParsedCommand, { kind: 'layout-migrate' }>,
  out: CliOutput,
): Promise<number> {
  let last = 0
  const report = await shard.tenants.migrateLayout({
    onProgress: ({ done }) => {
      if (done - last >= 1000) {
        last = done
        out.error(`layout migrate: ${done} tenants`)
      }
    },
  })
  for (const { id, error } of report.failed) out.error(`could not move tenant ${id}: ${error.message}`)
  out.line(
    `moved ${report.moved} tenant file${report.moved === 1 ? '' : 's'}; ${report.inPlace} already in place; ${report.failed.length} failed`,
  )
  if (out.json)
    out.result({ ...report, failed: report.failed.map(({ id, error }) => ({ id, message: error.message })) })
  return report.failed.length > 0 ? 1 : 0
}
