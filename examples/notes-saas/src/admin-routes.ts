import { timingSafeEqual } from 'node:crypto'
import { Hono } from 'hono'
import { HttpError, positiveInt } from './http-error.js'
import type { NotesShard } from './shard.js'

/**
 * The operator's routes, across every tenant. `GET /admin/report` visits each
 * tenant's file through `shard.mapTenants` (bounded concurrency; a tenant that
 * fails is reported, never stops the others) and joins the result with the
 * apex directory.
 */
export function adminRoutes(shard: NotesShard, adminToken: string | undefined): Hono {
  const r = new Hono()
  // Secure by default: with no token configured the admin routes answer 401 to everyone.
  r.use('*', async (c, next) => {
    if (adminToken === undefined || adminToken === '') {
      throw new HttpError(
        401,
        'UNAUTHORIZED',
        'The admin routes are off: start the app with ADMIN_TOKEN set, then send "Authorization: Bearer <ADMIN_TOKEN>".',
      )
    }
    if (!sameSecret(c.req.header('authorization') ?? '', `Bearer ${adminToken}`)) {
      throw new HttpError(401, 'UNAUTHORIZED', 'The admin routes need "Authorization: Bearer <ADMIN_TOKEN>".')
    }
    await next()
  })

  r.get('/report', async (c) => {
    const concurrency =
      c.req.query('concurrency') === undefined ? 8 : positiveInt(c.req.query('concurrency'), 'concurrency')
    const started = performance.now()
    const results = await shard.mapTenants(
      async (t) => {
        const row = await t.db
          .selectFrom('notes')
          .select((eb) => [
            eb.fn.countAll<number>().as('notes'),
            eb.fn.max('updated_at').as('last_activity'),
            eb.selectFrom('comments').select(eb.fn.countAll<number>().as('n')).as('comments'),
          ])
          .executeTakeFirstOrThrow()
        return { notes: Number(row.notes), comments: Number(row.comments ?? 0), lastActivity: row.last_activity }
      },
      { concurrency },
    )
    const directory = await shard.apex
      .selectFrom('tenants as t')
      .innerJoin('accounts as a', 'a.id', 't.owner_id')
      .select(['t.id', 't.name', 't.plan_id', 't.staging_of', 'a.email as owner'])
      .execute()
    const byId = new Map(directory.map((d) => [d.id, d]))
    const tenants = results.flatMap((r) =>
      r.value !== undefined
        ? [
            {
              id: r.id,
              name: byId.get(r.id)?.name ?? null,
              plan: byId.get(r.id)?.plan_id ?? null,
              owner: byId.get(r.id)?.owner ?? null,
              stagingOf: byId.get(r.id)?.staging_of ?? null,
              ...r.value,
            },
          ]
        : [],
    )
    const failed = results.flatMap((r) =>
      r.value !== undefined ? [] : [{ id: r.id, error: r.error instanceof Error ? r.error.message : String(r.error) }],
    )
    return c.json({
      tenants,
      failed,
      totals: {
        tenants: results.length,
        notes: tenants.reduce((sum, t) => sum + t.notes, 0),
        comments: tenants.reduce((sum, t) => sum + t.comments, 0),
      },
      ms: Math.round(performance.now() - started),
    })
  })
  return r
}

/** Compares a presented secret with the expected one in constant time. */
function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
