/**
 * Values and statements as better-sqlite3 accepts them, checked before they
 * reach libSQL (whose native code aborts the process on some values, and
 * silently drops a second statement in one string).
 */

/** better-sqlite3's refusal of a value it cannot bind; libSQL's native code aborts the process on some. */
function unbindable(value: unknown): TypeError {
  return new TypeError(
    `SQLite3 can only bind numbers, strings, bigints, buffers, and null (got ${value === undefined ? 'undefined' : typeof value}).`,
  )
}

/**
 * The parameters as one array (or one object of named parameters), each
 * checked: libSQL 0.5 aborts the whole process (a Rust panic) when asked to
 * bind a boolean or a Buffer passed as a bare argument, so nothing it cannot
 * bind ever reaches it.
 */
export function bindable(parameters: readonly unknown[]): unknown {
  let values = parameters
  if (parameters.length === 1) {
    const only = parameters[0]
    if (Array.isArray(only)) values = only
    else if (typeof only === 'object' && only !== null && !ArrayBuffer.isView(only)) {
      const named: Record<string, unknown> = {}
      for (const [key, value] of Object.entries(only)) named[key] = bindValue(value)
      return named
    }
  }
  const out = new Array<unknown>(values.length)
  for (let i = 0; i < values.length; i++) out[i] = bindValue(values[i])
  return out
}

export function bindValue(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
    case 'string':
    case 'bigint':
      return value
    case 'object':
      if (value === null) return null
      if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      throw unbindable(value)
    default:
      throw unbindable(value)
  }
}

/**
 * The tokens that decide where a statement ends: lower-cased words, `;`, and
 * `x` for anything else (strings, quoted names, numbers, punctuation).
 * Comments and whitespace are skipped.
 */
function endTokens(sql: string): string[] {
  const tokens: string[] = []
  const n = sql.length
  let i = 0
  while (i < n) {
    const c = sql[i] as string
    if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i + 2)
      i = end === -1 ? n : end + 1
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? n : end + 2
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c
      let j = i + 1
      for (;;) {
        const k = sql.indexOf(close, j)
        if (k === -1) {
          j = n
          break
        }
        if (close !== ']' && sql[k + 1] === close) {
          j = k + 2
          continue
        }
        j = k + 1
        break
      }
      tokens.push('x')
      i = j
    } else if (/\s/.test(c)) {
      i++
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1
      while (j < n && /[A-Za-z0-9_$]/.test(sql[j] as string)) j++
      tokens.push(sql.slice(i, j).toLowerCase())
      i = j
    } else {
      tokens.push(c === ';' ? ';' : 'x')
      i++
    }
  }
  return tokens
}

/**
 * Whether `sql` holds a second statement after the first (better-sqlite3
 * refuses those; libSQL would silently run only the first). As SQLite's own
 * `sqlite3_complete` does, a `CREATE [TEMP] TRIGGER` ends only at a `;` right
 * after `END`: the `;` of its body do not end it.
 */
export function hasTail(sql: string): boolean {
  const tokens = endTokens(sql)
  let t = 0
  if (tokens[t] === 'explain') {
    t++
    if (tokens[t] === 'query' && tokens[t + 1] === 'plan') t += 2
  }
  let trigger = false
  if (tokens[t] === 'create') {
    let k = t + 1
    if (tokens[k] === 'temp' || tokens[k] === 'temporary') k++
    trigger = tokens[k] === 'trigger'
  }
  let end = -1
  for (let i = t; i < tokens.length; i++) {
    if (tokens[i] !== ';') continue
    if (!trigger || tokens[i - 1] === 'end') {
      end = i
      break
    }
  }
  if (end === -1) return false
  for (let i = end + 1; i < tokens.length; i++) if (tokens[i] !== ';') return true
  return false
}

/** `path` as an SQLite URI filename (`%`, `?` and `#` escaped), opened in `mode`. */
export function fileUri(path: string, mode: 'ro' | 'rw' | 'rwc'): string {
  const escaped = path.replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return `file:${escaped}?mode=${mode}`
}
