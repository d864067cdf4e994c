#!/usr/bin/env node
// Typechecks the TypeScript code blocks of README.md and docs/*.md ("docs that are tested").
//
//   node scripts/check-doc-snippets.mjs      (pnpm docs:check; the last step of pnpm typecheck)
//
// Every fenced block whose info string is `ts` or `typescript` is written to its own ES module
// under test/.tmp/doc-snippets/ (git-ignored by the `.tmp/` line of .gitignore; inside test/ so
// that the workspace packages, kysely, better-sqlite3, hono and express linked into
// test/node_modules resolve), named after its source and line (docs_cli_md_L22.ts), and all of
// them are typechecked in one program: NodeNext, strict, noEmit, skipLibCheck, types: ["node"].
//
// The line just before a fence may say how to treat the block:
//   <!-- fragment -->               not checked: a type listing, a shape, pseudo-code
//   <!-- prelude: shard -->         checked after importing what the named prelude exports
//   <!-- prelude: shard, core -->   several preludes
//
// A prelude is scripts/doc-snippet-preludes/<name>.ts. That folder is copied as the root of the
// snippets' folder, so it also holds the app the snippets are written against: db/apex.ts and
// db/tenant.ts (generated-style types), src/db/shard.ts (the instance), shardines.config.ts,
// migrations/tenant.ts; a snippet's `import type { ApexDB } from './db/apex.js'` finds them. A
// snippet with preludes gets one import line in front, naming each name a prelude exports that
// the snippet does not declare or import itself (so a snippet may redefine `shard`).
//
// Skipped as checked elsewhere: the README's two "A short tour" blocks, whose first line is
// `// examples/tour/src/…`. They are copies of examples/tour/src/shard.ts and tour.ts (a test
// compares them verbatim), and `tsc -p examples/tour/tsconfig.json` typechecks those files.
//
// Prints each failing block (file, line, the compiler's diagnostics at doc lines); exits 1 on any failure.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const preludeDir = path.join(root, 'scripts', 'doc-snippet-preludes')
const outDir = path.join(root, 'test', '.tmp', 'doc-snippets')
const TOUR_COPY = '// examples/tour/src/'

const compilerOptions = {
  target: 'ES2022',
  lib: ['ES2023'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: ['node'],
}

/** The ts/typescript blocks of one Markdown file. */
function extractBlocks(file) {
  const rel = path.relative(root, file).split(path.sep).join('/')
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const blocks = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i])
    if (open === null) continue
    const [, indent, fence, info] = open
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`)
    let end = i + 1
    while (end < lines.length && !close.test(lines[end])) end++
    const lang = info.toLowerCase()
    if (lang === 'ts' || lang === 'typescript') {
      const code = lines.slice(i + 1, end).map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      const before = i > 0 ? lines[i - 1].trim() : ''
      const prelude = /^<!--\s*prelude:\s*([\w\s,-]+?)\s*-->$/.exec(before)
      blocks.push({
        file: rel,
        line: i + 1, // the fence's line, 1-based
        code,
        fragment: /^<!--\s*fragment\s*-->$/.test(before),
        preludes: prelude === null ? [] : prelude[1].split(',').map((name) => name.trim()),
      })
    }
    i = end
  }
  return blocks
}

/** Names a module binds at its top level (declarations and imports). */
function declaredNames(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const names = new Set()
  const addBinding = (name) => {
    if (ts.isIdentifier(name)) names.add(name.text)
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) addBinding(element.name)
  }
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && statement.importClause !== undefined) {
      const clause = statement.importClause
      if (clause.name !== undefined) names.add(clause.name.text)
      const bindings = clause.namedBindings
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) names.add(bindings.name.text)
      else if (bindings !== undefined) for (const element of bindings.elements) names.add(element.name.text)
    } else if (ts.isImportEqualsDeclaration(statement)) {
      names.add(statement.name.text)
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) addBinding(declaration.name)
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement) ||
        ts.isModuleDeclaration(statement)) &&
      statement.name !== undefined &&
      ts.isIdentifier(statement.name)
    ) {
      names.add(statement.name.text)
    }
  }
  return names
}

/** Names a prelude module exports (declarations with `export`, and `export { … }` lists). */
function exportedNames(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const names = []
  const isExported = (node) => ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Export
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement)) {
      if (statement.exportClause === undefined || !ts.isNamedExports(statement.exportClause)) {
        throw new Error(`${fileName}: list a prelude's exports by name (no export *)`)
      }
      for (const element of statement.exportClause.elements) names.push(element.name.text)
    } else if (ts.isVariableStatement(statement) && isExported(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        if (ts.isIdentifier(declaration.name)) names.push(declaration.name.text)
      }
    } else if ('name' in statement && statement.name !== undefined && isExported(statement)) {
      names.push(statement.name.text)
    }
  }
  return names
}

function snippetFileName(block) {
  return `${block.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.line}.ts`
}

// 1. Collect the blocks.
const docsDir = path.join(root, 'docs')
const markdown = [
  path.join(root, 'README.md'),
  ...fs
    .readdirSync(docsDir)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => path.join(docsDir, name)),
]
const blocks = markdown.flatMap(extractBlocks)
const fragments = blocks.filter((block) => block.fragment)
const tourCopies = blocks.filter(
  (block) => !block.fragment && block.code.find((l) => l.trim() !== '')?.startsWith(TOUR_COPY),
)
const checked = blocks.filter((block) => !block.fragment && !tourCopies.includes(block))

// 2. Write the snippets' folder: the preludes' folder, then one module per block.
fs.rmSync(outDir, { recursive: true, force: true })
fs.cpSync(preludeDir, outDir, { recursive: true })
fs.writeFileSync(
  path.join(outDir, 'tsconfig.json'),
  `${JSON.stringify({ compilerOptions, include: ['**/*.ts'] }, null, 2)}\n`,
)

const problems = [] // { block?, text }
const preludeExports = new Map()
const exportsOf = (name) => {
  if (!preludeExports.has(name)) {
    const file = path.join(preludeDir, `${name}.ts`)
    preludeExports.set(name, fs.existsSync(file) ? exportedNames(file, fs.readFileSync(file, 'utf8')) : undefined)
  }
  return preludeExports.get(name)
}

const byFile = new Map() // snippet path -> { block, headerLines }
for (const block of checked) {
  const text = `${block.code.join('\n')}\n`
  const fileName = path.join(outDir, snippetFileName(block))
  const own = declaredNames(fileName, text)
  const header = []
  const taken = new Set(own)
  for (const name of block.preludes) {
    const names = exportsOf(name)
    if (names === undefined) {
      problems.push({ block, text: `unknown prelude "${name}" (no scripts/doc-snippet-preludes/${name}.ts)` })
      continue
    }
    const wanted = names.filter((n) => !taken.has(n))
    for (const n of wanted) taken.add(n)
    if (wanted.length > 0) header.push(`import { ${wanted.join(', ')} } from './${name}.js'`)
  }
  fs.writeFileSync(fileName, `${header.join('\n')}${header.length > 0 ? '\n' : ''}${text}`)
  byFile.set(path.resolve(fileName), { block, headerLines: header.length })
}

// 3. Typecheck them all at once.
const configFile = path.join(outDir, 'tsconfig.json')
const config = ts.getParsedCommandLineOfConfigFile(
  configFile,
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    },
  },
)
const program = ts.createProgram({ rootNames: config.fileNames, options: config.options })
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    ')
  const code = `TS${diagnostic.code}`
  if (diagnostic.file === undefined) {
    problems.push({ text: `${code}: ${message}` })
    continue
  }
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
  const snippet = byFile.get(path.resolve(diagnostic.file.fileName))
  if (snippet === undefined) {
    const where = path.relative(outDir, diagnostic.file.fileName)
    problems.push({ text: `scripts/doc-snippet-preludes/${where}:${line + 1}:${character + 1} ${code}: ${message}` })
    continue
  }
  const { block, headerLines } = snippet
  const docLine = line < headerLines ? block.line : block.line + 1 + line - headerLines
  const source = line < headerLines ? ' (prelude import)' : `\n    | ${block.code[line - headerLines] ?? ''}`
  problems.push({ block, text: `${block.file}:${docLine}:${character + 1} ${code}: ${message}${source}` })
}

// 4. Report.
const failing = new Map()
for (const problem of problems) {
  const key =
    problem.block === undefined ? 'preludes' : `${problem.block.file}, the block at line ${problem.block.line}`
  if (!failing.has(key)) failing.set(key, [])
  failing.get(key).push(problem.text)
}
for (const [key, texts] of failing) {
  console.error(`✗ ${key}`)
  for (const text of texts) console.error(`  ${text}`)
}
const summary =
  `docs:check: ${checked.length} TypeScript blocks checked, ${fragments.length} marked <!-- fragment -->, ` +
  `${tourCopies.length} tour copies checked in examples/tour (${path.relative(root, outDir)})`
if (failing.size > 0) {
  const blockCount = [...failing.keys()].filter((key) => key !== 'preludes').length
  console.error(
    `${summary}\ndocs:check: ${blockCount} block(s) failed${failing.has('preludes') ? ', and the preludes' : ''}`,
  )
  process.exit(1)
}
console.log(summary)
