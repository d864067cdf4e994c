import * as http from 'node:http'
import type { StorageAdapter } from '@shardines/core'

export interface HttpResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  text: string
  json: any
}

export interface RequestOptions {
  headers?: Record<string, string>
  /** A JSON value (sent as application/json) or a raw string/Buffer. */
  body?: unknown
  agent?: http.Agent
  /** Send the body with chunked transfer encoding (no content-length), in 16 KiB chunks. */
  chunked?: boolean
}

/**
 * One request over real HTTP with node:http, which (unlike fetch) sends the path
 * exactly as given and lets a test set the Host header.
 */
export function request(
  base: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<HttpResponse> {
  const url = new URL(base)
  const headers: Record<string, string> = { ...options.headers }
  let payload: Buffer | undefined
  if (options.body !== undefined) {
    if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) {
      payload = Buffer.from(options.body as string | Buffer)
    } else {
      payload = Buffer.from(JSON.stringify(options.body))
      headers['content-type'] ??= 'application/json'
    }
    if (!options.chunked) headers['content-length'] = String(payload.length)
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, agent: options.agent },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          const text = body.toString('utf8')
          let json: unknown
          if ((res.headers['content-type'] ?? '').includes('json') && text !== '') json = JSON.parse(text)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json })
        })
      },
    )
    req.on('error', reject)
    if (options.chunked && payload) {
      for (let i = 0; i < payload.length; i += 16 * 1024) req.write(payload.subarray(i, i + 16 * 1024))
      req.end()
    } else {
      req.end(payload)
    }
  })
}

/** Calls to the storage adapter that take a tenant id, by method. */
export interface StorageCalls {
  readonly ids: string[]
  readonly byMethod: Map<string, string[]>
}

/**
 * The real storage adapter with a record of every call that names a tenant, to
 * prove that a refused id never reached the storage layer (and so the filesystem).
 */
export function recordingStorage(inner: StorageAdapter): { storage: StorageAdapter; calls: StorageCalls } {
  const calls: StorageCalls = { ids: [], byMethod: new Map() }
  const tenantMethods = new Set(['acquire', 'exists', 'create', 'destroy', 'backup', 'fork'])
  const storage = new Proxy(inner, {
    get(target, key) {
      const value = Reflect.get(target, key)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (typeof key === 'string' && tenantMethods.has(key)) {
          for (const arg of args.slice(0, key === 'fork' ? 2 : 1)) {
            calls.ids.push(String(arg))
            calls.byMethod.set(key, [...(calls.byMethod.get(key) ?? []), String(arg)])
          }
        }
        return value.apply(target, args)
      }
    },
  })
  return { storage, calls }
}
