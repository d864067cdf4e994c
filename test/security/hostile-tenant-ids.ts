/**
 * Tenant ids an attacker (or a careless caller) might pass: every one must be
 * refused with `InvalidTenantIdError` before anything touches the filesystem.
 *
 * `root` is a folder the test watches: absolute-path ids point into it, so a
 * leak would show up as a new file there.
 */
export interface HostileId {
  /** What the id tries; shown in test names. */
  readonly label: string
  readonly id: unknown
}

export function hostileTenantIds(root: string): HostileId[] {
  const ids: HostileId[] = []
  const add = (label: string, ...values: unknown[]) => {
    for (const id of values) ids.push({ label, id })
  }

  add('path traversal', '..', '.', '...', '../x', '../../x', '../../../../etc/passwd', 'a/../b', '..%2fx', '%2e%2e')
  add('path traversal (backslash)', '..\\x', 'a\\..\\b', '..\\..\\windows')
  add('separator', 'a/b', 'a\\b', '/', '\\', 'a/', '/a', 'tenants/a', 'a//b')
  add('absolute path', `${root}/abs-evil`, `${root}/abs-evil.sqlite3`, '/tmp/evil', 'C:\\evil', 'C:/evil', 'c:evil')
  add('UNC path', '\\\\server\\share', '//server/share')
  add('home / shell', '~', '~root', '$HOME', '`id`', '$(id)', 'a|b', 'a;b', 'a&b', 'a>b', 'a<b', '*', 'a?', 'a!')
  add('NUL', '\0', 'a\0', '\0a', 'acme\0.sqlite3', `acme\0/../../${'x'}`)
  add(
    'control characters',
    '\n',
    'a\nb',
    'acme\n',
    'a\rb',
    'a\tb',
    'a\x01',
    '\x1b[31mred',
    'a\x7f',
    'a\x85b',
    'a\u2028b',
  )
  add(
    'bidi and invisible',
    '\u202e',
    'abc\u202egpj',
    '\u2066a',
    'a\u200fb',
    'a\u200bb',
    '\ufeffacme',
    'acme\u200d',
    'a\u00adb',
  )
  add(
    'Unicode look-alikes',
    '\u0430cme',
    'ac\u043ce',
    '\uff41\uff43\uff4d\uff45',
    'acm\u03bf',
    '\u0131d',
    '\u212aelvin',
  )
  add(
    'Unicode look-alike separators',
    'a\u2044b',
    'a\u2215b',
    'a\uff0fb',
    'a\u29f8b',
    '\uff0e\uff0e',
    'a\u2024b',
    'a\uff3cb',
  )
  add('combining and composed', 'acme\u0301', 'caf\u00e9', 'e\u0301', '\ufb01le', 'a\u0338')
  add('emoji', '\u{1f600}', 'a\u{1f600}', '\u{1f468}\u200d\u{1f469}')
  add('uppercase', 'Acme', 'ACME', 'acmE', 'A', 'Z9')
  add('reserved name', 'apex', 'main', 'temp')
  add('empty', '')
  add(
    'too long (65+ characters)',
    'a'.repeat(65),
    '1'.repeat(65),
    `a${'-'.repeat(64)}`,
    'a'.repeat(1000),
    'a'.repeat(100_000),
  )
  add(
    'SQL quotes and syntax',
    "a'b",
    'a"b',
    "'; drop table documents; --",
    '"main"',
    'a`b',
    '[a]',
    'a,b',
    'a(b)',
    'a=b',
  )
  add('dots and extensions', 'a.b', 'acme.sqlite3', 'apex.sqlite3', '.hidden', '.creating-acme', 'acme.sqlite3-wal')
  add('bad first character', '_a', '-a', '-rf', '--', '_', '-')
  add('whitespace', ' ', 'a b', ' acme', 'acme ', '\u00a0acme', 'a\u3000b')
  add('URL and percent', 'a%20b', 'a%00', 'file:acme', 'a:b', 'a@b', 'a+b', 'a#b')
  add('non-string', undefined, null, 0, 42, Number.NaN, true, 1n, {}, [], ['acme'], { toString: () => 'acme' })
  add('non-string (boxed string, symbol, function)', new String('acme'), Symbol('acme'), () => 'acme')
  return ids
}

/** A printable form of a hostile id for test names (escapes everything outside printable ASCII). */
export function showId(id: unknown): string {
  if (typeof id === 'symbol') return 'Symbol()'
  if (typeof id === 'function') return '(function)'
  if (typeof id === 'bigint') return `${id}n`
  if (typeof id !== 'string') {
    try {
      return `(${typeof id}) ${JSON.stringify(id) ?? String(id)}`
    } catch {
      return `(${typeof id})`
    }
  }
  const shown = id.length > 40 ? `${id.slice(0, 40)}…(${id.length} chars)` : id
  return JSON.stringify(shown).replace(/[^\x20-\x7e]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
}
