import type { EventHub } from '../events/event-hub.js'
import { errorCodeOf } from '../events/event-hub.js'
import type { MigrationTrigger } from '../events/shardines-event.js'
import type { MigrationOutcome } from './run-migrations.js'

/**
 * Runs one database's migrations (`run` never throws for a failing migration:
 * its outcome says so) and reports the outcome as a `migration` event, timed,
 * when someone listens.
 */
export async function observeMigration(
  events: EventHub,
  trigger: MigrationTrigger,
  run: () => Promise<MigrationOutcome>,
): Promise<MigrationOutcome> {
  if (events.emit === null) return run()
  const started = performance.now()
  const outcome = await run()
  emitMigration(events, trigger, outcome, performance.now() - started)
  return outcome
}

/** Reports one database's migration outcome as a `migration` event (when someone listens). */
export function emitMigration(
  events: EventHub,
  trigger: MigrationTrigger,
  outcome: MigrationOutcome,
  durationMs: number,
  progress?: { readonly done: number; readonly total: number },
): void {
  const emit = events.emit
  if (emit === null) return
  const { id, from, to, status, error } = outcome
  emit({
    type: 'migration',
    tenantId: id,
    trigger,
    from,
    to,
    status,
    durationMs,
    ...(error === undefined ? {} : { migration: error.migration, errorCode: errorCodeOf(error) }),
    ...(progress === undefined ? {} : { progress }),
  })
}
