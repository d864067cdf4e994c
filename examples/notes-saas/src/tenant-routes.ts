import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { assertTenantId, TenantExistsError } from '@shardines/core'
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { asObject, HttpError, positiveInt, text } from './http-error.js'
import { commentsOf, findNote, listNotes } from './notes-queries.js'
import { renderTenantPage } from './pages.js'
import type { NotesShard } from './shard.js'

/**
 * The routes of one tenant. The app mounts them twice: at `/` (tenant from the
 * `X-Tenant` header or the subdomain) and at `/t/:tenant` (tenant from the path).
 * `scoped` runs each handler inside `withTenant`, so `shard.db()` is the
 * tenant's database and nothing here names the tenant in a query.
 */
export function tenantRoutes(
  shard: NotesShard,
  scoped: MiddlewareHandler,
  extend?: (router: Hono, scoped: MiddlewareHandler) => void,
): Hono {
  const r = new Hono()
  const tenantId = (): string => shard.currentTenant() as string

  /** The tenant's directory entry and whether `accountId` (default: the owner) may write here. */
  const writer = async (accountId: number | undefined) => {
    const entry = await shard.apex
      .selectFrom('tenants as t')
      .innerJoin('plans as p', 'p.id', 't.plan_id')
      .select(['t.owner_id', 'p.max_notes', 'p.name as plan'])
      .where('t.id', '=', tenantId())
      .executeTakeFirst()
    if (!entry) {
      throw new HttpError(409, 'TENANT_NOT_REGISTERED', `Tenant "${tenantId()}" has a database but no directory entry.`)
    }
    const author = accountId ?? entry.owner_id
    const member = await shard.apex
      .selectFrom('memberships')
      .select('role')
      .where('tenant_id', '=', tenantId())
      .where('account_id', '=', author)
      .executeTakeFirst()
    if (!member) {
      throw new HttpError(422, 'NOT_A_MEMBER', `Account ${author} is not a member of tenant "${tenantId()}".`)
    }
    return { author, maxNotes: entry.max_notes, plan: entry.plan }
  }

  const createNote = async (input: Record<string, unknown>) => {
    const title = text(input, 'title', 200)
    const body = text(input, 'body', 20_000, true)
    const { author, maxNotes, plan } = await writer(
      input.authorId === undefined || input.authorId === '' ? undefined : positiveInt(input.authorId, 'authorId'),
    )
    // The count and the insert share one transaction (BEGIN IMMEDIATE), so concurrent writes cannot overshoot the plan.
    const id = await shard
      .db()
      .transaction()
      .execute(async (trx) => {
        const { n } = await trx
          .selectFrom('notes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
        if (Number(n) >= maxNotes) {
          throw new HttpError(402, 'PLAN_LIMIT', `The ${plan} plan allows ${maxNotes} notes; upgrade to add more.`)
        }
        const row = await trx
          .insertInto('notes')
          .values({ title, body, author_id: author })
          .returning('id')
          .executeTakeFirstOrThrow()
        return row.id
      })
    return (await findNote(shard, id)) as NonNullable<Awaited<ReturnType<typeof findNote>>>
  }

  const noteOr404 = async (c: Context) => {
    const id = positiveInt(c.req.param('id'), 'id', 404)
    const note = await findNote(shard, id)
    if (!note) throw new HttpError(404, 'NOT_FOUND', `Note ${id} does not exist in tenant "${tenantId()}".`)
    return note
  }

  /** The page's links: under /t/<id> when the tenant came from the path, else at the root. */
  const base = (c: Context) => (c.req.param('tenant') === undefined ? '' : `/t/${encodeURIComponent(tenantId())}`)

  // A plain server-rendered page: the tenant's notes and a form to add one.
  r.get('/', scoped, async (c) => {
    const notes = await listNotes(shard, { limit: 100 })
    const entry = await shard.apex
      .selectFrom('tenants')
      .select(['name'])
      .where('id', '=', tenantId())
      .executeTakeFirst()
    return c.html(renderTenantPage({ tenant: tenantId(), name: entry?.name, base: base(c), notes }))
  })

  r.get('/notes', scoped, async (c) => {
    const limit = Math.min(200, c.req.query('limit') === undefined ? 50 : positiveInt(c.req.query('limit'), 'limit'))
    return c.json({ tenant: tenantId(), notes: await listNotes(shard, { limit }) })
  })

  r.post('/notes', scoped, async (c) => {
    const form = (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')
    const input = form ? await c.req.parseBody() : asObject(await c.req.json().catch(() => null))
    const note = await createNote(input as Record<string, unknown>)
    if (form) return c.redirect(`${base(c)}/`, 303)
    return c.json({ tenant: tenantId(), note }, 201)
  })

  r.get('/notes/:id', scoped, async (c) => {
    const note = await noteOr404(c)
    return c.json({ tenant: tenantId(), note, comments: await commentsOf(shard, note.id) })
  })

  r.patch('/notes/:id', scoped, async (c) => {
    const { id } = await noteOr404(c)
    const input = asObject(await c.req.json().catch(() => null))
    const patch: { title?: string; body?: string } = {}
    if (input.title !== undefined) patch.title = text(input, 'title', 200)
    if (input.body !== undefined) patch.body = text(input, 'body', 20_000, true)
    if (Object.keys(patch).length === 0)
      throw new HttpError(400, 'BAD_REQUEST', 'Nothing to change: send title or body.')
    await shard
      .db()
      .updateTable('notes')
      .set({ ...patch, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute()
    return c.json({ tenant: tenantId(), note: await noteOr404(c) })
  })

  r.delete('/notes/:id', scoped, async (c) => {
    const { id } = await noteOr404(c)
    await shard.db().deleteFrom('notes').where('id', '=', id).execute()
    return c.body(null, 204)
  })

  r.get('/notes/:id/comments', scoped, async (c) => {
    const { id } = await noteOr404(c)
    return c.json({ tenant: tenantId(), comments: await commentsOf(shard, id) })
  })

  r.post('/notes/:id/comments', scoped, async (c) => {
    const { id } = await noteOr404(c)
    const input = asObject(await c.req.json().catch(() => null))
    const body = text(input, 'body', 5_000)
    const { author } = await writer(input.authorId === undefined ? undefined : positiveInt(input.authorId, 'authorId'))
    await shard
      .db()
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('comments').values({ note_id: id, author_id: author, body }).execute()
        await trx.updateTable('notes').set({ updated_at: new Date().toISOString() }).where('id', '=', id).execute()
      })
    return c.json({ tenant: tenantId(), comments: await commentsOf(shard, id) }, 201)
  })

  // A download of the tenant's whole database: an online backup (consistent while writes go on).
  r.get('/export', scoped, async (c) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'notes-export-'))
    try {
      const file = path.join(dir, `${tenantId()}.sqlite3`)
      await shard.tenants.backup(tenantId(), file)
      const bytes = await fs.readFile(file)
      return c.body(bytes, 200, {
        'content-type': 'application/vnd.sqlite3',
        'content-disposition': `attachment; filename="${tenantId()}-${new Date().toISOString().slice(0, 10)}.sqlite3"`,
      })
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  // A staging copy of this tenant (same notes, same members) under a new id.
  r.post('/fork', scoped, async (c) => {
    const from = tenantId()
    const raw = await c.req.text()
    const input = raw.trim() === '' ? {} : asObject(parseJson(raw))
    const to = input.to === undefined ? `${from}-staging`.slice(0, 64) : text(input, 'to', 64)
    try {
      assertTenantId(to)
    } catch (error) {
      throw new HttpError(400, 'INVALID_TENANT_ID', (error as Error).message)
    }
    const source = await shard.apex.selectFrom('tenants').selectAll().where('id', '=', from).executeTakeFirst()
    if (!source) throw new HttpError(409, 'TENANT_NOT_REGISTERED', `Tenant "${from}" has no directory entry.`)
    const listed = await shard.apex.selectFrom('tenants').select('id').where('id', '=', to).executeTakeFirst()
    if (listed) throw new HttpError(409, 'TENANT_EXISTS', `The tenant "${to}" exists already.`)
    try {
      await shard.tenants.fork(from, to)
    } catch (error) {
      if (error instanceof TenantExistsError)
        throw new HttpError(409, 'TENANT_EXISTS', `The tenant "${to}" exists already.`)
      throw error
    }
    try {
      await shard.apex.transaction().execute(async (trx) => {
        await trx
          .insertInto('tenants')
          .values({
            id: to,
            name: `${source.name} (staging)`,
            plan_id: source.plan_id,
            owner_id: source.owner_id,
            staging_of: from,
          })
          .execute()
        await trx
          .insertInto('memberships')
          .columns(['tenant_id', 'account_id', 'role'])
          .expression((eb) =>
            eb
              .selectFrom('memberships')
              .select([eb.val(to).as('tenant_id'), 'account_id', 'role'])
              .where('tenant_id', '=', from),
          )
          .execute()
      })
    } catch (error) {
      await shard.tenants.destroy(to)
      throw error
    }
    const notes = await shard.withTenant(to, (t) =>
      t.db
        .selectFrom('notes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow(),
    )
    return c.json({ tenant: to, stagingOf: from, notes: Number(notes.n) }, 201)
  })

  extend?.(r, scoped)
  return r
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    return null
  }
}
