import { firstOf, fromHeader, fromPathPrefix, fromSubdomain, ShardinesError } from '@shardines/core'
import { Hono, type MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { adminRoutes } from './admin-routes.js'
import { HttpError } from './http-error.js'
import { renderLandingPage } from './pages.js'
import type { NotesShard } from './shard.js'
import { parseSignup, signup } from './signup.js'
import { tenantRoutes } from './tenant-routes.js'

export interface AppOptions {
  /** Largest request body, in bytes; a larger one is refused with 413 before any handler runs. Default 64 KiB. */
  maxBodyBytes?: number
  /** Domains whose subdomains name tenants (`acme.localhost`). Default `['localhost']`. */
  baseDomains?: string[]
  /** `/admin/*` needs `Authorization: Bearer <adminToken>`; without one configured it answers 401 to everyone. */
  adminToken?: string | undefined
  /** Adds routes to the tenant router; give them `scoped` to run inside the tenant's scope. */
  extendTenantRoutes?: (router: Hono, scoped: MiddlewareHandler) => void
  /** Where unexpected errors (500s) are reported. Default `console.error`. */
  onUnexpectedError?: (error: unknown) => void
}

/**
 * The notes-saas HTTP app (a Hono app; serve it with `startServer`).
 *
 * A tenant is named by the `/t/<tenant>` path prefix, the `X-Tenant` header, or
 * the subdomain, in that order; every tenant route runs inside `withTenant`.
 */
export function createApp(shard: NotesShard, options: AppOptions = {}): Hono {
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024
  const header = fromHeader('x-tenant')
  const subdomain = fromSubdomain(options.baseDomains ?? ['localhost'])
  const scoped: MiddlewareHandler = shard.honoMiddleware(firstOf(fromPathPrefix('/t'), header, subdomain))
  const report = options.onUnexpectedError ?? ((error: unknown) => console.error(error))

  // strict: false lets /t/acme/ and /t/acme reach the same page.
  const app = new Hono({ strict: false })
  app.use(
    '*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) =>
        c.json(
          { error: { code: 'PAYLOAD_TOO_LARGE', message: `Request bodies are limited to ${maxBodyBytes} bytes.` } },
          413,
        ),
    }),
  )

  app.onError((error, c) => {
    if (error instanceof HttpError) return c.json({ error: { code: error.code, message: error.message } }, error.status)
    if (error instanceof HTTPException) return error.getResponse()
    if (error instanceof ShardinesError) {
      const status = statusOf(error)
      if (status !== 500) return c.json({ error: { code: error.code, message: error.message } }, status)
    }
    report(error)
    return c.json({ error: { code: 'INTERNAL', message: 'Something went wrong on our side.' } }, 500)
  })
  app.notFound((c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}.` } }, 404),
  )

  // The landing page, unless the request names a tenant by header or subdomain (then it is that tenant's page).
  app.get('/', async (c, next) => {
    if ((await header(c.req.raw)) || (await subdomain(c.req.raw))) return next()
    const tenants = await shard.apex.selectFrom('tenants').select(['id', 'name']).orderBy('id').limit(100).execute()
    return c.html(renderLandingPage(tenants))
  })

  app.post('/signup', async (c) => {
    // JSON for scripts; the landing page's form posts url-encoded fields and is sent to the new tenant's page.
    const form = (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')
    const input = parseSignup(form ? await c.req.parseBody() : await c.req.json().catch(() => null))
    const result = await signup(shard, input)
    if (form) return c.redirect(`/t/${encodeURIComponent(result.tenant.id)}/`, 303)
    return c.json(result, 201)
  })

  app.route('/admin', adminRoutes(shard, options.adminToken))

  const tenant = tenantRoutes(shard, scoped, options.extendTenantRoutes)
  app.route('/t/:tenant', tenant)
  app.route('/', tenant)
  return app
}

function statusOf(error: ShardinesError): ContentfulStatusCode {
  switch (error.code) {
    case 'INVALID_TENANT_ID':
      return 400
    case 'TENANT_NOT_FOUND':
    case 'RECORD_NOT_FOUND':
      return 404
    case 'TENANT_EXISTS':
      return 409
    case 'TENANT_BUSY':
    case 'POOL_EXHAUSTED':
      return 503
    default:
      return 500
  }
}
