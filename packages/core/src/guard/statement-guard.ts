import { match } from 'ts-pattern'
import {
  ReadOnlyAttachmentError,
  type ShardinesError,
  type StatementRefusal,
  StatementRefusedError,
} from '../errors.js'
import { Does, type StatementVerdict } from './statement-verdict.js'

/**
 * What one connection user may run: the {@link Does} bits it is refused, the
 * bits that must be noticed when they run (`watch`: refused ones, plus temp
 * writes, which leave state on the connection), and the label its errors name.
 * Handles check `verdict.flags & policy.watch` before each statement: one AND
 * on the hot path.
 */
export interface GuardPolicy {
  readonly denied: number
  readonly watch: number
  /** The tenant id, `'apex'`, or a label such as `withTenants(a, b)`. */
  readonly label: string
}

/** Refused in every scope: what reaches outside the scope's own database or changes the connection. */
const OUTSIDE =
  Does.WRITE_ATTACHED |
  Does.READ_UNNAMED |
  Does.ATTACH |
  Does.DETACH |
  Does.VACUUM_INTO |
  Does.PRAGMA |
  Does.TRANSACTION |
  Does.FUNCTION

/** Refused where nothing may be written at all (`withTenants`, synchronous reads). */
const ANY_WRITE = OUTSIDE | Does.WRITE_MAIN | Does.WRITE_TEMP | Does.VACUUM | Does.SCHEMA_CHANGE

/**
 * Shardines' own statements (its attach and transaction control, migrations,
 * version stamps, status reads): nothing refused. Temp writes are still noted
 * (a migration may leave a temp object, which must not reach a scope). Never
 * handed to user code: it is only passed by core's internal bindings.
 */
export const INTERNAL_GUARD: GuardPolicy = Object.freeze({ denied: 0, watch: Does.WRITE_TEMP, label: 'shardines' })

/** A tenant scope: its own database and temp only; temp writes mark the connection. */
export function scopeGuard(label: string): GuardPolicy {
  return Object.freeze({ denied: OUTSIDE, watch: OUTSIDE | Does.WRITE_TEMP, label })
}

/**
 * `shard.apex`: the apex database, and no temp objects. The apex connection
 * is shared by every request of the process and never ends with a scope, so a
 * temp trigger made there would fire on every later tenant's apex writes.
 */
export function apexGuard(): GuardPolicy {
  return SHARED_APEX
}

const SHARED_APEX: GuardPolicy = Object.freeze({
  denied: OUTSIDE | Does.WRITE_TEMP,
  watch: OUTSIDE | Does.WRITE_TEMP,
  label: 'apex',
})

/** A connection that may only read (`withTenants`, the separate reader of synchronous reads). */
export function readOnlyGuard(label: string): GuardPolicy {
  return Object.freeze({ denied: ANY_WRITE, watch: ANY_WRITE, label })
}

/** The first refused kind in a verdict's refused bits, in the order that explains the statement best. */
function refusalKind(refused: number, policy: GuardPolicy): StatementRefusal | 'write-attached' {
  if (refused & Does.TRANSACTION) return 'transaction-control'
  if (refused & Does.ATTACH) return 'attach'
  if (refused & Does.DETACH) return 'detach'
  if (refused & Does.VACUUM_INTO) return 'vacuum-into'
  if (refused & Does.PRAGMA) return 'pragma'
  if (refused & Does.FUNCTION) return 'function'
  if (refused & Does.WRITE_ATTACHED) return 'write-attached'
  if (refused & Does.READ_UNNAMED) return 'fall-through'
  return policy === SHARED_APEX ? 'temp-on-shared-connection' : 'read-only-scope'
}

/**
 * The typed error for a statement `policy` refuses (`verdict.flags & policy.denied`
 * is not 0). Writes to an attached database are a {@link ReadOnlyAttachmentError},
 * as when the ATTACH compiler refuses them; everything else a
 * {@link StatementRefusedError} naming what to do instead.
 */
export function refuseStatement(verdict: StatementVerdict, policy: GuardPolicy): ShardinesError {
  const kind = refusalKind(verdict.flags & policy.denied, policy)
  return match(kind)
    .with(
      'write-attached',
      () => new ReadOnlyAttachmentError(verdict.written[0] ?? 'attached', undefined, policy.label),
    )
    .otherwise(
      (kind) =>
        new StatementRefusedError(kind, verdict.sql, policy.label, {
          schema: kind === 'fall-through' ? verdict.unnamed[0] : undefined,
          pragma: verdict.pragma,
          fn: verdict.fn,
        }),
    )
}
