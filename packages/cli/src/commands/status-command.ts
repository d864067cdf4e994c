import type { AnyShardines } from '@shardines/core'
import type { CliOutput } from '../cli-output.js'

/**
 * `shardines status [--json]`: tenants per version (a rollout's progress), the
 * tenants whose schema drifted, and those that could not be read. Exit 1 when
 * a tenant drifted or could not be read (so CI can gate on it), 0 otherwise.
 */
export async function statusCommand(shard: AnyShardines, out: CliOutput): Promise<number> {
  let progress: ReturnType<CliOutput['progress']> | undefined
  const report = await shard.migrate.status({
    onProgress: ({ total }) => {
      progress ??= out.progress('inspecting', total)
      progress.tick(false)
    },
  })
  progress?.stop()
  const unreadable = report.tenants.filter((t) => t.error !== undefined)
  const drifted = report.tenants.filter((t) => t.drift)
  if (out.json) {
    out.result(report)
  } else {
    out.line(`latest: ${report.latest ?? '(no tenant migrations)'}`)
    out.line(`tenants: ${report.tenants.length}`)
    if (report.rollout.length > 0) {
      out.line('rollout (tenants per version):')
      const width = Math.max(...report.rollout.map((r) => (r.version ?? '(none)').length))
      for (const step of report.rollout) {
        const label = step.version === report.latest ? 'latest' : step.version === null ? 'empty' : 'behind'
        out.line(`  ${(step.version ?? '(none)').padEnd(width)}  ${String(step.tenants).padStart(7)}  ${label}`)
      }
    }
    out.line(
      drifted.length === 0
        ? 'drift: none'
        : `drift: ${drifted.length} tenant${drifted.length === 1 ? '' : 's'} differ from the template at their version: ${drifted.map((t) => t.id).join(', ')}`,
    )
    for (const t of unreadable) out.line(`unreadable: ${t.id}: ${t.error}`)
  }
  return drifted.length > 0 || unreadable.length > 0 ? 1 : 0
}
