import { match } from 'ts-pattern'
import { InvalidOptionsError, InvalidTenantIdError, ShardinesError } from '../errors.js'
import { assertTenantId } from '../tenant/tenant-id.js'
import type { FetchRequestLike, NodeRequestLike } from './tenant-request.js'
import type { TenantResolver } from './tenant-resolvers.js'

/**
 * HTTP tenant routing. Defaults, stated once:
 *
 * - The whole request runs inside `withTenant(id)`: for Node/Connect/Express
 *   the scope lasts until the response's `close` event (so handlers that
 *   answer later, after awaiting, still see their tenant); for Hono until the
 *   downstream handlers' promise settles.
 * - A missing id answers `400 TENANT_REQUIRED` (or continues without a scope
 *   with `onMissing: 'skip'`), an invalid id `400 INVALID_TENANT_ID` before
 *   the storage is asked anything, an unknown tenant `404 TENANT_NOT_FOUND`;
 *   all as JSON `{ error: { code, message, tenantId? } }`.
 * - Anything else (a resolver's own error, a failed lazy migration, a handler's
 *   throw) goes to the framework's error handling: `next(err)` for Connect and
 *   Express, a rethrow (Hono's `app.onError`) for Hono.
 */

/** What the middleware needs from the instance. */
export interface TenantScopeRunner {
  withTenant<T>(id: string, fn: () => Promise<T>): Promise<Awaited<T>>
}

export interface TenantMiddlewareOptions {
  /**
   * When the resolver finds no tenant: `'reject'` (default) answers 400
   * `TENANT_REQUIRED`; `'skip'` runs the rest of the request without a tenant
   * scope (for apps whose tenant-less routes share the middleware).
   */
  onMissing?: 'reject' | 'skip'
}

/** The JSON body of a refused request. */
export interface TenantErrorBody {
  error: {
    code: 'TENANT_REQUIRED' | 'INVALID_TENANT_ID' | 'TENANT_NOT_FOUND' | 'TENANT_BUSY' | 'POOL_EXHAUSTED'
    message: string
    tenantId?: string
  }
}

/** The parts of Node's `ServerResponse` the middleware uses. */
export interface NodeResponseLike {
  statusCode: number
  readonly headersSent: boolean
  readonly closed?: boolean
  setHeader(name: string, value: string | number): unknown
  end(body?: string): unknown
  once(event: 'close', listener: () => void): unknown
}

/** A Connect/Express-style middleware. */
export type NodeTenantMiddleware<Req = NodeRequestLike, Res = NodeResponseLike> = (
  req: Req,
  res: Res,
  next: (error?: unknown) => void,
) => void

/** The parts of Hono's `Context` the middleware uses (structural: core does not depend on Hono). */
export interface HonoContextLike {
  readonly req: { readonly raw: FetchRequestLike }
}

/** A Hono-style middleware: `app.use(shard.honoMiddleware(resolve))`. */
export type HonoTenantMiddleware<C extends HonoContextLike = HonoContextLike> = (
  c: C,
  next: () => Promise<void>,
) => Promise<Response | undefined>

/** For Hono, the resolver also gets the context (e.g. for `c.req.param('tenant')`). */
export type HonoTenantResolver<C extends HonoContextLike = HonoContextLike> = (
  req: FetchRequestLike,
  c: C,
) => ReturnType<TenantResolver>

/** Exact messages for bad arguments, as for `createShardines` options. */
function checkArguments(method: string, resolve: unknown, options: unknown): TenantMiddlewareOptions {
  if (typeof resolve !== 'function') {
    throw new InvalidOptionsError(
      `${method}(resolve): resolve must be a function of the request, e.g. fromHeader('x-tenant') or (req) => req.headers['x-tenant'].`,
    )
  }
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(`${method}(resolve, options): options must be an object like { onMissing: 'skip' }.`)
  }
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'onMissing') {
      throw new InvalidOptionsError(
        `${method}(resolve, options): unknown option "${key}"; the only option is onMissing.`,
      )
    }
    if (value !== undefined && value !== 'reject' && value !== 'skip') {
      throw new InvalidOptionsError(
        `${method}(resolve, options): onMissing must be 'reject' or 'skip', not ${JSON.stringify(value)}.`,
      )
    }
  }
  return options as TenantMiddlewareOptions
}

type Outcome =
  | { kind: 'tenant'; id: string }
  | { kind: 'skip' }
  | { kind: 'reject'; status: number; body: TenantErrorBody }

/** A client-caused (4xx) or overload (503, with `Retry-After` seconds) answer. */
interface Rejection {
  readonly status: number
  readonly body: TenantErrorBody
  readonly retryAfter?: number
}

/** Resolves and validates the id; an invalid id never reaches the storage. */
async function decide(resolved: () => ReturnType<TenantResolver>, options: TenantMiddlewareOptions): Promise<Outcome> {
  const id = await resolved()
  if (id === undefined || id === null || id === '') {
    if (options.onMissing === 'skip') return { kind: 'skip' }
    return {
      kind: 'reject',
      status: 400,
      body: {
        error: {
          code: 'TENANT_REQUIRED',
          message:
            'This request names no tenant. Name one the way this server routes tenants (a header, a subdomain or a /t/<tenant> path).',
        },
      },
    }
  }
  assertTenantId(id)
  return { kind: 'tenant', id }
}

/** The response for an error that a client caused, or `undefined` for the framework's error handler. */
function rejectionOf(error: unknown): Rejection | undefined {
  if (!(error instanceof ShardinesError)) return undefined
  const status = match(error.code)
    .with('INVALID_TENANT_ID', () => 400)
    .with('TENANT_NOT_FOUND', () => 404)
    // A scope budget, the process's scope slots or another connection's lock: retry later.
    .with('TENANT_BUSY', 'POOL_EXHAUSTED', () => 503)
    .otherwise(() => undefined)
  if (status === undefined) return undefined
  const code = error.code as TenantErrorBody['error']['code']
  const body: TenantErrorBody = { error: { code, message: error.message } }
  if (error.tenantId !== undefined && !(error instanceof InvalidTenantIdError)) body.error.tenantId = error.tenantId
  if (status !== 503) return { status, body }
  const waited = (error as { waitedMs?: number }).waitedMs ?? 1000
  return { status, body, retryAfter: Math.max(1, Math.ceil(waited / 1000)) }
}

function sendJson(res: NodeResponseLike, status: number, body: TenantErrorBody, retryAfter?: number): void {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.statusCode = status
  if (retryAfter !== undefined) res.setHeader('retry-after', String(retryAfter))
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(text))
  res.end(text)
}

/**
 * A Connect/Express-style middleware that runs the rest of the request inside
 * `withTenant(resolve(req))`. See {@link Shardines.middleware}.
 */
export function nodeTenantMiddleware<Req extends NodeRequestLike, Res extends NodeResponseLike>(
  shard: TenantScopeRunner,
  resolve: TenantResolver<Req>,
  given?: TenantMiddlewareOptions,
): NodeTenantMiddleware<Req, Res> {
  const options = checkArguments('middleware', resolve, given)
  return (req, res, next) => {
    // next() of a bare node:http chain may throw: give the error to next(err) once, and never leave a
    // rejected promise behind (it would be unhandled).
    const pass = (error?: unknown): void => {
      try {
        next(error)
      } catch (thrown) {
        if (error === undefined) {
          pass(thrown)
          return
        }
        if (!res.headersSent) {
          res.statusCode = 500
          res.end()
        }
      }
    }
    void (async () => {
      let outcome: Outcome
      try {
        outcome = await decide(() => resolve(req), options)
      } catch (error) {
        const rejection = rejectionOf(error)
        return rejection ? sendJson(res, rejection.status, rejection.body, rejection.retryAfter) : pass(error)
      }
      if (outcome.kind === 'skip') return pass()
      if (outcome.kind === 'reject') return sendJson(res, outcome.status, outcome.body)
      let entered = false
      try {
        await shard.withTenant(outcome.id, () => {
          entered = true
          // The scope (and its pinned handle) lives until the response is done, not until next() returns:
          // Connect handlers answer asynchronously.
          return new Promise<void>((done) => {
            res.once('close', () => done())
            if (res.closed) return done()
            pass()
          })
        })
      } catch (error) {
        if (entered) return pass(error)
        const rejection = rejectionOf(error)
        return rejection ? sendJson(res, rejection.status, rejection.body, rejection.retryAfter) : pass(error)
      }
    })()
  }
}

/**
 * A Hono middleware that runs the downstream handlers inside
 * `withTenant(resolve(c.req.raw, c))`. See {@link Shardines.honoMiddleware}.
 */
export function honoTenantMiddleware<C extends HonoContextLike>(
  shard: TenantScopeRunner,
  resolve: HonoTenantResolver<C>,
  given?: TenantMiddlewareOptions,
): HonoTenantMiddleware<C> {
  const options = checkArguments('honoMiddleware', resolve, given)
  return async (c, next) => {
    let outcome: Outcome
    try {
      outcome = await decide(() => resolve(c.req.raw, c), options)
    } catch (error) {
      const rejection = rejectionOf(error)
      if (rejection) return jsonResponse(rejection.status, rejection.body, rejection.retryAfter)
      throw error
    }
    if (outcome.kind === 'skip') {
      await next()
      return undefined
    }
    if (outcome.kind === 'reject') return jsonResponse(outcome.status, outcome.body)
    let entered = false
    try {
      await shard.withTenant(outcome.id, async () => {
        entered = true
        await next()
      })
      return undefined
    } catch (error) {
      // Hono turns a handler's throw into app.onError's response before it gets here;
      // whatever still arrives belongs to the framework, not to us.
      const rejection = entered ? undefined : rejectionOf(error)
      if (rejection) return jsonResponse(rejection.status, rejection.body, rejection.retryAfter)
      throw error
    }
  }
}

function jsonResponse(status: number, body: TenantErrorBody, retryAfter?: number): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter)
  return new Response(JSON.stringify(body), { status, headers })
}
