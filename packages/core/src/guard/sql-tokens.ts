/**
 * A small SQLite lexer: enough to read a statement's leading keywords and the
 * schema names it writes as qualifiers (`apex.accounts`, `"apex"."accounts"`),
 * skipping comments, string literals and quoting as SQLite does. It never
 * decides what a statement does — SQLite's compiled program does that — it
 * only answers what the text itself says.
 */

/** A word (keyword or identifier, unquoted), a quoted identifier, a string, or one punctuation character. */
export interface SqlToken {
  readonly kind: 'word' | 'quoted' | 'string' | 'punct'
  /** Words: lower-cased; quoted identifiers: unquoted, case kept; punctuation: the character. */
  readonly text: string
}

/** Whether a UTF-16 code unit can be part of an unquoted word (SQLite: letters, digits, `_`, `$`, anything non-ASCII). */
function isWordCode(code: number): boolean {
  return (
    (code >= 97 && code <= 122) ||
    (code >= 65 && code <= 90) ||
    (code >= 48 && code <= 57) ||
    code === 95 ||
    code === 36 ||
    code >= 0x80
  )
}

/** Tokens of `sql`, in order, without whitespace and comments (a `;` is a punctuation token like any other). */
export function tokenize(sql: string, limit = Number.POSITIVE_INFINITY): SqlToken[] {
  const tokens: SqlToken[] = []
  const n = sql.length
  let i = 0
  while (i < n && tokens.length < limit) {
    const code = sql.charCodeAt(i)
    if (code === 32 || (code >= 9 && code <= 13)) {
      i++
    } else if (code === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf('\n', i + 2)
      i = end === -1 ? n : end + 1
    } else if (code === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      const end = sql.indexOf('*/', i + 2)
      i = end === -1 ? n : end + 2
    } else if (code === 39 /* ' */ || code === 34 /* " */ || code === 96 /* ` */) {
      const quote = sql[i] as string
      const [text, next] = readQuoted(sql, i, quote)
      tokens.push({ kind: code === 39 ? 'string' : 'quoted', text })
      i = next
    } else if (code === 91 /* [ */) {
      const end = sql.indexOf(']', i + 1)
      const stop = end === -1 ? n : end
      tokens.push({ kind: 'quoted', text: sql.slice(i + 1, stop) })
      i = stop + 1
    } else if (isWordCode(code)) {
      let j = i + 1
      while (j < n && isWordCode(sql.charCodeAt(j))) j++
      tokens.push({ kind: 'word', text: sql.slice(i, j).toLowerCase() })
      i = j
    } else {
      tokens.push({ kind: 'punct', text: sql[i] as string })
      i++
    }
  }
  return tokens
}

/** Reads a quoted token starting at `start` (doubled quotes escape); returns its text and the index after it. */
function readQuoted(sql: string, start: number, quote: string): [string, number] {
  let text = ''
  let i = start + 1
  for (;;) {
    const end = sql.indexOf(quote, i)
    if (end === -1) return [text + sql.slice(i), sql.length]
    text += sql.slice(i, end)
    if (sql[end + 1] === quote) {
      text += quote
      i = end + 2
    } else {
      return [text, end + 1]
    }
  }
}

/** The identifier a token names (a word or a quoted identifier), lower-cased as SQLite compares names; else undefined. */
function identifierOf(token: SqlToken | undefined): string | undefined {
  if (token === undefined) return undefined
  if (token.kind === 'word') return token.text
  if (token.kind === 'quoted') return token.text.toLowerCase()
  return undefined
}

/**
 * The schema names `sql` writes as qualifiers: every identifier directly
 * followed by `.` and another identifier or `*` (`apex.accounts`,
 * `"acme"."documents"`, `apex.*`), lower-cased. Strings and comments are not
 * read. A column qualifier (`d.title`) is returned too: callers only ask
 * whether a given schema is among them.
 */
export function qualifiersIn(sql: string): Set<string> {
  const tokens = tokenize(sql)
  const names = new Set<string>()
  for (let i = 0; i + 1 < tokens.length; i++) {
    const dot = tokens[i + 1]
    if (dot?.kind !== 'punct' || dot.text !== '.') continue
    const name = identifierOf(tokens[i])
    if (name !== undefined) names.add(name)
  }
  return names
}

/**
 * How many positional parameters `sql` has as SQLite counts them: one per
 * `?`, or the highest `?NNN`. (Named ones, `:x` `@x` `$x`, are not counted.)
 */
export function positionalParameterCount(sql: string): number {
  const tokens = tokenize(sql)
  let count = 0
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken
    if (token.kind !== 'punct' || token.text !== '?') continue
    const next = tokens[i + 1]
    const number = next?.kind === 'word' && /^[0-9]+$/.test(next.text) ? Number(next.text) : undefined
    count = number === undefined ? count + 1 : Math.max(count, number)
  }
  return count
}

/**
 * The `schema.object` pairs `sql` writes (`apex.accounts`, `"acme"."documents"`),
 * lower-cased and joined with a dot. Column references (`d.title`) are among
 * them too: callers only ask whether a given pair is.
 */
export function qualifiedNamesIn(sql: string): Set<string> {
  const tokens = tokenize(sql)
  const names = new Set<string>()
  for (let i = 0; i + 2 < tokens.length; i++) {
    const dot = tokens[i + 1]
    if (dot?.kind !== 'punct' || dot.text !== '.') continue
    const schema = identifierOf(tokens[i])
    const name = identifierOf(tokens[i + 2])
    if (schema !== undefined && name !== undefined) names.add(`${schema}.${name}`)
  }
  return names
}

/** What a statement's text opens with, for the checks that must run before SQLite prepares it. */
export interface StatementHead {
  /** The first keyword after any `explain` / `explain query plan` (lower-cased), or '' for none. */
  readonly keyword: string
  /** Whether the statement is an `EXPLAIN` (which runs nothing, but a pragma still acts when prepared). */
  readonly explain: boolean
  /** The tokens from `keyword` on (the first few: see HEAD_TOKENS). */
  readonly tokens: readonly SqlToken[]
}

/**
 * How many tokens a head holds: enough for `explain query plan pragma schema . name = value`
 * (the longest head anything reads), not the whole statement.
 */
const HEAD_TOKENS = 12

/** Reads the head of a statement: its first keyword, past comments and `explain [query plan]`. */
export function statementHead(sql: string): StatementHead {
  let tokens = tokenize(sql, HEAD_TOKENS)
  let explain = false
  if (tokens[0]?.kind === 'word' && tokens[0].text === 'explain') {
    explain = true
    tokens = tokens.slice(1)
    if (tokens[0]?.text === 'query' && tokens[1]?.text === 'plan') tokens = tokens.slice(2)
  }
  const first = tokens[0]
  return { keyword: first?.kind === 'word' ? first.text : '', explain, tokens }
}

/**
 * A pragma statement's parts: `pragma [schema.]name [= value | (argument)]`.
 * `name` is lower-cased; `form` says whether it sets (`=`), takes an argument
 * (`(…)`, which for most pragmas also sets) or only reads.
 */
export interface PragmaParts {
  readonly schema: string | undefined
  readonly name: string
  readonly form: 'read' | 'assign' | 'call'
}

/** Parses the tokens of a pragma (from `statementHead(sql).tokens`); undefined when they are not one. */
export function pragmaParts(tokens: readonly SqlToken[]): PragmaParts | undefined {
  if (tokens[0]?.text !== 'pragma') return undefined
  let i = 1
  let schema: string | undefined
  let name = identifierOf(tokens[i])
  if (name === undefined) return undefined
  if (tokens[i + 1]?.kind === 'punct' && tokens[i + 1]?.text === '.') {
    schema = name
    i += 2
    name = identifierOf(tokens[i])
    if (name === undefined) return undefined
  }
  const next = tokens[i + 1]
  const form =
    next === undefined || (next.kind === 'punct' && next.text === ';')
      ? 'read'
      : next.kind === 'punct' && next.text === '('
        ? 'call'
        : 'assign'
  return { schema, name, form }
}

/** What a name written in a statement could resolve to outside `main` (all names lower-cased). */
export interface AttachedNames {
  /** The attached databases' names. */
  readonly schemas: ReadonlySet<string>
  /** Every object of an attached database. */
  readonly objects: ReadonlySet<string>
  /** Whether temp holds objects: its triggers may fire on a write, so writes are judged from their program. */
  readonly tempObjects: boolean
}

/**
 * How `sql` can reach the attached databases whose names are given:
 * - `'unqualified'`: some name it writes without a `schema.` in front (a word,
 *   a quoted identifier, or a string, which SQLite also takes as a table name)
 *   is the name of an object in an attached database, so it could resolve
 *   there when main has no such object;
 * - `'qualified'`: otherwise, it names an attached schema (as a qualifier or a string);
 * - `'none'`: it names neither, so every name it writes resolves in main or temp.
 * Conservative by design: a column or alias that happens to share a name counts.
 */
export function mentionsAttached(sql: string, attached: AttachedNames): 'none' | 'qualified' | 'unqualified' {
  const tokens = tokenize(sql)
  let mention: 'none' | 'qualified' = 'none'
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as SqlToken
    if (token.kind === 'punct') continue
    const name = token.kind === 'word' ? token.text : token.text.toLowerCase()
    const before = tokens[i - 1]
    const qualified = before !== undefined && before.kind === 'punct' && before.text === '.'
    if (!qualified && attached.objects.has(name)) return 'unqualified'
    if (attached.schemas.has(name)) mention = 'qualified'
  }
  return mention
}
