import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** An error a client caused; `app.onError` answers it as `{ error: { code, message } }` with `status`. */
export class HttpError extends Error {
  readonly status: ContentfulStatusCode
  readonly code: string
  constructor(status: ContentfulStatusCode, code: string, message: string) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
  }
}

/** A JSON object body, or a 400. */
export function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'BAD_REQUEST', 'The request body must be a JSON object.')
  }
  return body as Record<string, unknown>
}

/** A trimmed, non-empty string of at most `max` characters, or a 400 naming the field. */
export function text(body: Record<string, unknown>, field: string, max: number, optional = false): string {
  const value = body[field]
  if (value === undefined && optional) return ''
  if (typeof value !== 'string' || value.trim() === '') {
    throw new HttpError(400, 'BAD_REQUEST', `"${field}" must be a non-empty string.`)
  }
  if (value.length > max) throw new HttpError(400, 'BAD_REQUEST', `"${field}" is longer than ${max} characters.`)
  return value.trim()
}

/** A positive integer (from a JSON number or a path segment), or a 400/404. */
export function positiveInt(value: unknown, field: string, status: 400 | 404 = 400): number {
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new HttpError(status, status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', `"${field}" must be a positive integer.`)
  }
  return n
}
