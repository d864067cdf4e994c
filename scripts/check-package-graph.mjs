#!/usr/bin/env node
// The package graph points one way (DESIGN.md, "Packages"): the CLI, codegen and the adapters
// depend on core; core defines the contracts and imports none of them. This reads every
// packages/*/src/**/*.ts with TypeScript's parser (so imports in comments and strings do not
// count) and checks each module specifier: `import … from`, `import '…'`, `export … from`,
// `import x = require('…')`, `import('…')` with a literal (also in types), `require('…')`,
// `createRequire(…)('…')`, `require.resolve('…')` and `import.meta.resolve('…')`.
//
//   - core imports no `@shardines/*` package, no driver (better-sqlite3, libsql, @libsql/client)
//     and not kysely-codegen;
//   - an adapter imports only @shardines/core among the workspace's packages (no other adapter,
//     no codegen, no CLI); codegen only core; the CLI core and codegen; nothing imports the CLI;
//   - a workspace package is imported only by its name or a subpath its package.json `exports`
//     declares (no `@shardines/core/dist/…`);
//   - no relative (or absolute) specifier leaves the importing package's folder;
//   - every bare package imported is declared in that package's dependencies or
//     peerDependencies (Node builtins exempt), and the workspace packages declared there follow
//     the same direction as the imports.
//
// Usage: node scripts/check-package-graph.mjs [workspace root]   (default: this repository)
// Prints what it checked; exit 1 with each violation (file:line) when the graph is wrong.
import * as fs from 'node:fs'
import { isBuiltin } from 'node:module'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = path.resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)))
const SCOPE = '@shardines/'
const DRIVERS = ['better-sqlite3', 'libsql', '@libsql/client']

/**
 * What each package may import, by its folder under packages/. `workspace`: the `@shardines/*`
 * packages it may import (and declare); `forbidden`: other bare packages it must not import.
 * A package folder with no rule fails the check: add one here.
 */
const RULES = [
  {
    role: 'core',
    matches: (folder) => folder === 'core',
    workspace: [],
    forbidden: [...DRIVERS, 'kysely-codegen'],
    why: 'core defines the contracts the other packages implement and imports none of them, nor a driver or codegen',
  },
  {
    role: 'adapter',
    matches: (folder) => folder.startsWith('adapter-'),
    workspace: ['@shardines/core'],
    forbidden: ['kysely-codegen'],
    why: 'an adapter implements core’s StorageAdapter contract: it imports @shardines/core only, never another adapter, codegen or the CLI',
  },
  {
    role: 'codegen',
    matches: (folder) => folder === 'codegen',
    workspace: ['@shardines/core'],
    forbidden: DRIVERS,
    why: 'codegen migrates its scratch databases through the storage contract: it imports @shardines/core only (no adapter, driver or CLI)',
  },
  {
    role: 'cli',
    matches: (folder) => folder === 'cli',
    workspace: ['@shardines/core', '@shardines/codegen'],
    forbidden: DRIVERS,
    why: 'the CLI runs the instance its config exports: it imports @shardines/core and @shardines/codegen, never an adapter or driver',
  },
]

/**
 * Violations known and tracked, allowed until they are fixed. Each is printed as a known
 * exception; one whose import is gone from a file that is still there fails the check, so the
 * entry gets deleted.
 */
const KNOWN_EXCEPTIONS = [
  // Deliberate (issue 16's note): adapter-libsql's local mode is adapter-sqlite's file storage
  // (layout, pool, locks, lifecycle, doctor) on libSQL's driver, through adapter-sqlite's engine
  // entry point (@shardines/adapter-sqlite/engine), rather than a second copy of it. Moving that
  // storage into core would make core own files and pools; a shared package would be a sixth
  // package DESIGN does not list. Only these two files may import it.
  {
    package: '@shardines/adapter-libsql',
    files: ['packages/adapter-libsql/src/index.ts', 'packages/adapter-libsql/src/local/libsql-driver.ts'],
    imports: ['@shardines/adapter-sqlite'],
    issue: 'adapter-libsql local mode runs on adapter-sqlite’s engine (issue 16)',
  },
]

const rel = (file) => path.relative(root, file).split(path.sep).join('/')
const packageNameOf = (specifier) => {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** The packages under packages/*, with their manifests. */
function readPackages() {
  const dir = path.join(root, 'packages')
  if (!fs.existsSync(dir)) throw new Error(`${dir} does not exist: is ${root} the workspace root?`)
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'package.json')))
    .map((d) => {
      const folder = path.join(dir, d.name)
      const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'))
      return { folder: d.name, dir: folder, name: manifest.name, manifest }
    })
    .sort((a, b) => a.folder.localeCompare(b.folder))
}

function sourceFiles(pkg) {
  const src = path.join(pkg.dir, 'src')
  if (!fs.existsSync(src)) return []
  return fs
    .readdirSync(src, { recursive: true })
    .map(String)
    .filter((f) => /\.[cm]?tsx?$/.test(f) && !f.split(path.sep).includes('node_modules'))
    .map((f) => path.join(src, f))
    .sort()
}

/** Every module specifier of a file, with its kind and line; computed dynamic imports apart. */
function specifiersOf(file) {
  const text = fs.readFileSync(file, 'utf8')
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found = []
  const computed = []
  const line = (node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
  const unwrap = (node) => {
    let n = node
    while (n && (ts.isParenthesizedExpression(n) || ts.isAsExpression(n) || ts.isSatisfiesExpression(n))) {
      n = n.expression
    }
    return n
  }
  const literal = (node) => {
    const n = unwrap(node)
    return n && ts.isStringLiteralLike(n) ? n.text : undefined
  }
  const add = (specifier, kind, node) => found.push({ specifier, kind, line: line(node) })
  const isImportMeta = (n) => ts.isMetaProperty(n) && n.keywordToken === ts.SyntaxKind.ImportKeyword
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      add(literal(node.moduleSpecifier), ts.isImportDeclaration(node) ? 'import' : 'export from', node)
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(literal(node.moduleReference.expression), 'import = require', node)
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) add(arg.literal.text, 'import() type', node)
    } else if (ts.isCallExpression(node)) {
      const callee = unwrap(node.expression)
      const first = node.arguments[0]
      let kind
      if (callee.kind === ts.SyntaxKind.ImportKeyword) kind = 'import()'
      else if (ts.isIdentifier(callee) && callee.text === 'require') kind = 'require()'
      else if (
        ts.isCallExpression(callee) &&
        ts.isIdentifier(callee.expression) &&
        callee.expression.text === 'createRequire'
      )
        kind = 'createRequire()()'
      else if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'resolve') {
        if (isImportMeta(callee.expression)) kind = 'import.meta.resolve()'
        else if (ts.isIdentifier(callee.expression) && callee.expression.text === 'require') kind = 'require.resolve()'
      }
      if (kind !== undefined && first !== undefined) {
        const specifier = literal(first)
        if (specifier === undefined) computed.push({ kind, line: line(node) })
        else add(specifier, kind, node)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return { found: found.filter((f) => f.specifier !== undefined), computed }
}

/** Whether `subpath` ('.' or './x') is one of the package's `exports` (patterns with one `*` included). */
function isExported(manifest, subpath) {
  const { exports } = manifest
  if (exports === undefined) return subpath === '.'
  if (typeof exports === 'string' || Array.isArray(exports)) return subpath === '.'
  const keys = Object.keys(exports)
  if (!keys.some((k) => k.startsWith('.'))) return subpath === '.' // a conditions object: the root only
  return keys.some((key) => {
    if (!key.includes('*')) return key === subpath
    const [before, after] = key.split('*')
    return subpath.startsWith(before) && subpath.endsWith(after) && subpath.length >= before.length + after.length
  })
}

const packages = readPackages()
const byName = new Map(packages.map((p) => [p.name, p]))
const violations = []
const exceptionsUsed = new Set()
let totalFiles = 0
let totalSpecifiers = 0
const report = []

function exceptionFor(pkg, file, imported) {
  const index = KNOWN_EXCEPTIONS.findIndex(
    (e) => e.package === pkg.name && (file === undefined || e.files.includes(file)) && e.imports.includes(imported),
  )
  if (index === -1) return undefined
  if (file !== undefined) exceptionsUsed.add(`${index}:${file}:${imported}`)
  return KNOWN_EXCEPTIONS[index]
}

for (const pkg of packages) {
  const rule = RULES.find((r) => r.matches(pkg.folder))
  const where = `packages/${pkg.folder}`
  if (rule === undefined) {
    violations.push(
      `${where} (${pkg.name}): no rule for this package in scripts/check-package-graph.mjs; add one saying what it may import`,
    )
    continue
  }
  const declared = new Set([
    ...Object.keys(pkg.manifest.dependencies ?? {}),
    ...Object.keys(pkg.manifest.peerDependencies ?? {}),
  ])
  const notes = []
  const fail = (at, message) => violations.push(`${at}: ${pkg.name} ${message}`)
  const exempt = (at, file, imported, message) => {
    const known = exceptionFor(pkg, file, imported)
    if (known === undefined) fail(at, message)
    else notes.push(`  known exception (${known.issue}): ${at}: ${pkg.name} ${message}`)
  }

  // The manifest: workspace packages it depends on follow the same direction as the imports.
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const dep of Object.keys(pkg.manifest[field] ?? {})) {
      if (dep.startsWith(SCOPE) && !rule.workspace.includes(dep)) {
        exempt(`${where}/package.json`, undefined, dep, `declares ${dep} in ${field}: ${rule.why}`)
      }
    }
  }

  const files = sourceFiles(pkg)
  const bare = new Set()
  const computed = []
  let count = 0
  for (const file of files) {
    const relFile = rel(file)
    const { found, computed: dynamic } = specifiersOf(file)
    for (const c of dynamic) computed.push(`${relFile}:${c.line} (${c.kind})`)
    for (const { specifier, kind, line } of found) {
      count++
      const at = `${relFile}:${line}`
      const isPath =
        specifier.startsWith('.') ||
        specifier.startsWith('/') ||
        specifier.startsWith('file:') ||
        path.isAbsolute(specifier)
      if (isPath) {
        const target = specifier.startsWith('file:')
          ? fileURLToPath(specifier)
          : path.resolve(path.dirname(file), specifier)
        const inside = path.relative(pkg.dir, target)
        if (inside.startsWith('..') || path.isAbsolute(inside)) {
          const other = packages.find((p) => !path.relative(p.dir, target).startsWith('..'))
          fail(
            at,
            `imports '${specifier}' (${kind}), which leaves ${where}${other ? ` for packages/${other.folder}` : ''}: import other packages by their name, never by path`,
          )
        }
        continue
      }
      if (isBuiltin(specifier)) continue
      const name = packageNameOf(specifier)
      bare.add(name)
      if (name === pkg.name) continue
      if (name.startsWith(SCOPE)) {
        if (!rule.workspace.includes(name)) {
          exempt(at, relFile, name, `imports '${specifier}' (${kind}): ${rule.why}`)
        }
        const target = byName.get(name)
        const subpath = `.${specifier.slice(name.length)}`
        if (target !== undefined && !isExported(target.manifest, subpath)) {
          fail(
            at,
            `imports '${specifier}' (${kind}), a path inside ${name} that its package.json "exports" does not declare: import '${name}'${
              Object.keys(target.manifest.exports ?? {}).filter((k) => k !== '.' && k !== './package.json').length > 0
                ? ` or one of its subpaths (${Object.keys(target.manifest.exports)
                    .filter((k) => k !== '.')
                    .join(', ')})`
                : ''
            }`,
          )
        }
      } else if (rule.forbidden.includes(name)) {
        exempt(at, relFile, name, `imports '${specifier}' (${kind}): ${rule.why}`)
      }
      if (!declared.has(name)) {
        fail(
          at,
          `imports '${specifier}' (${kind}) but ${where}/package.json does not declare ${name} in dependencies or peerDependencies`,
        )
      }
    }
  }
  totalFiles += files.length
  totalSpecifiers += count
  report.push(
    `${pkg.name} (${where}, ${rule.role}): ${files.length} files, ${count} specifiers; packages imported: ${[...bare].sort().join(', ') || 'none'}; may import from the workspace: ${rule.workspace.join(', ') || 'nothing'}; never: ${[...(rule.role === 'core' ? [`${SCOPE}*`] : []), ...rule.forbidden].join(', ')}`,
  )
  if (computed.length > 0) {
    report.push(`  not checkable (computed specifier, resolved at run time): ${computed.join(', ')}`)
  }
  report.push(...notes)
}

// An exception whose import is gone from its files (those still there): delete the entry.
KNOWN_EXCEPTIONS.forEach((e, index) => {
  const present = e.files.filter((file) => fs.existsSync(path.join(root, file)))
  if (!byName.has(e.package) || present.length === 0) return
  for (const imported of e.imports) {
    if (!present.some((file) => exceptionsUsed.has(`${index}:${file}:${imported}`))) {
      violations.push(
        `scripts/check-package-graph.mjs: the known exception (${e.issue}) for ${e.package} importing ${imported} is no longer needed (not imported by ${present.join(', ')} any more): delete it from KNOWN_EXCEPTIONS`,
      )
    }
  }
})

console.log(
  `package graph of ${root}: ${packages.length} packages, ${totalFiles} files, ${totalSpecifiers} module specifiers (import/export from, import(), require, import.meta.resolve)`,
)
for (const line of report) console.log(line)
if (violations.length > 0) {
  console.error(`\npackage graph: ${violations.length} violation${violations.length === 1 ? '' : 's'}`)
  for (const v of violations) console.error(`  ${v}`)
  console.error(
    '\nDependencies point one way: the CLI, codegen and the adapters depend on core (DESIGN.md, "Packages").',
  )
  process.exit(1)
}
console.log('package graph: ok')
