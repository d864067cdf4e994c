import { InvalidOptionsError } from '../errors.js'
import { headerOf, hostOf, pathOf, type TenantRequest } from './tenant-request.js'

/**
 * Finds the tenant id a request is for: a string, or `undefined`/`null` when
 * the request names none. The middleware validates what it returns (an
 * invalid id answers 400 before anything touches the filesystem).
 */
export type TenantResolver<Req = TenantRequest> = (
  req: Req,
) => string | null | undefined | Promise<string | null | undefined>

/**
 * Reads the tenant id from a header (default `X-Tenant`).
 *
 * @example
 * ```ts
 * app.use(shard.middleware(fromHeader()))          // curl -H 'X-Tenant: acme' …
 * app.use(shard.middleware(fromHeader('x-org')))
 * ```
 */
export function fromHeader(name = 'x-tenant'): TenantResolver<TenantRequest> {
  if (typeof name !== 'string' || !/^[A-Za-z0-9-]+$/.test(name)) {
    throw new InvalidOptionsError(`fromHeader(name): ${JSON.stringify(name)} is not a header name.`)
  }
  const header = name.toLowerCase()
  return (req) => headerOf(req, header) || undefined
}

/**
 * Reads the tenant id from the first label of the host under `baseDomain`:
 * `acme.localhost:3000` → `acme` with `fromSubdomain('localhost')`. The host is
 * lower-cased (host names are case-insensitive); the bare base domain, an IP
 * address or another domain name no tenant; a deeper name (`a.b.localhost`)
 * gives `a.b`, which the middleware refuses as an invalid id.
 *
 * @example
 * ```ts
 * app.use(shard.middleware(fromSubdomain(['localhost', 'notes.example.com'])))
 * // curl -H 'Host: acme.localhost:3000' http://127.0.0.1:3000/notes
 * ```
 */
export function fromSubdomain(baseDomain: string | readonly string[]): TenantResolver<TenantRequest> {
  const bases = (Array.isArray(baseDomain) ? baseDomain : [baseDomain]).map((base: unknown) => {
    if (typeof base !== 'string' || base.replace(/^\./, '') === '') {
      throw new InvalidOptionsError(
        `fromSubdomain(baseDomain): ${JSON.stringify(base)} is not a domain; pass e.g. 'localhost' or 'example.com'.`,
      )
    }
    return `.${base.replace(/^\./, '').toLowerCase()}`
  })
  return (req) => {
    const host = hostOf(req)
    if (host === undefined) return undefined
    for (const base of bases) {
      if (host.length > base.length && host.endsWith(base)) return host.slice(0, -base.length)
    }
    return undefined
  }
}

/**
 * Reads the tenant id from the path segment after `prefix`: `/t/acme/notes` →
 * `acme` with the default prefix `/t`. The segment is percent-decoded, so
 * `/t/%2e%2e/notes` yields `..`, which the middleware refuses as invalid.
 *
 * @example
 * ```ts
 * app.use(shard.middleware(fromPathPrefix('/t')))  // curl http://127.0.0.1:3000/t/acme/notes
 * ```
 */
export function fromPathPrefix(prefix = '/t'): TenantResolver<TenantRequest> {
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) {
    throw new InvalidOptionsError(`fromPathPrefix(prefix): ${JSON.stringify(prefix)} must start with "/", e.g. '/t'.`)
  }
  const start = `${prefix.replace(/\/+$/, '')}/`
  return (req) => {
    const path = pathOf(req)
    if (!path.startsWith(start)) return undefined
    const rest = path.slice(start.length)
    const end = rest.indexOf('/')
    const segment = end === -1 ? rest : rest.slice(0, end)
    if (segment === '') return undefined
    try {
      return decodeURIComponent(segment)
    } catch {
      return segment // malformed escapes stay as they are and fail validation
    }
  }
}

/**
 * Tries resolvers in order and returns the first tenant id found.
 *
 * @example
 * ```ts
 * const resolve = firstOf(fromPathPrefix('/t'), fromHeader(), fromSubdomain('localhost'))
 * ```
 */
export function firstOf<Req>(...resolvers: readonly TenantResolver<Req>[]): TenantResolver<Req> {
  for (const resolver of resolvers) {
    if (typeof resolver !== 'function') throw new InvalidOptionsError('firstOf(...resolvers) takes functions.')
  }
  return async (req) => {
    for (const resolver of resolvers) {
      const id = await resolver(req)
      if (id !== undefined && id !== null && id !== '') return id
    }
    return undefined
  }
}
