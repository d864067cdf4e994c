/**
 * The few request fields the tenant resolvers read, declared structurally so
 * core depends on no HTTP framework: Node's `IncomingMessage` (and Express's or
 * Connect's request) fits {@link NodeRequestLike}; the Fetch `Request` (Hono's
 * `c.req.raw`, Bun, Deno, workers) fits {@link FetchRequestLike}.
 */
export type TenantRequest = NodeRequestLike | FetchRequestLike

/** A Node request: lower-cased header names, `url` holding the path and query. */
export interface NodeRequestLike {
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  readonly url?: string | undefined
  /** Express keeps the unmounted path here when a router is mounted under a prefix. */
  readonly originalUrl?: string | undefined
}

/** A Fetch API request: `headers.get`, an absolute `url`. */
export interface FetchRequestLike {
  readonly headers: { get(name: string): string | null }
  readonly url: string
}

function isFetchRequest(req: TenantRequest): req is FetchRequestLike {
  return typeof (req.headers as FetchRequestLike['headers']).get === 'function'
}

/** A header's value (the first, when repeated), or `undefined`. */
export function headerOf(req: TenantRequest, name: string): string | undefined {
  if (isFetchRequest(req)) return req.headers.get(name) ?? undefined
  const value = (req as NodeRequestLike).headers[name.toLowerCase()]
  return typeof value === 'string' ? value : value?.[0]
}

/** The request's path, without the query string. Express's `originalUrl` wins over a mounted `url`. */
export function pathOf(req: TenantRequest): string {
  if (isFetchRequest(req)) {
    try {
      return new URL(req.url).pathname
    } catch {
      return '/'
    }
  }
  const url = (req as NodeRequestLike).originalUrl ?? (req as NodeRequestLike).url ?? '/'
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** The host the client asked for, lower-cased and without the port (`Host` header, else the URL's host). */
export function hostOf(req: TenantRequest): string | undefined {
  let host = headerOf(req, 'host')
  if (host === undefined && isFetchRequest(req)) {
    try {
      host = new URL(req.url).host
    } catch {
      return undefined
    }
  }
  if (host === undefined || host === '') return undefined
  // IPv6 literals ("[::1]:3000") have no subdomain; drop the port of everything else.
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase()
  const colon = host.lastIndexOf(':')
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase()
}
