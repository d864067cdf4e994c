// scripts/check-package-graph.mjs (part of `pnpm packages:check`): dependencies point one way.
// It fails on a fake workspace that breaks each rule, and passes on this repository.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/temp-dir.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = path.join(root, 'scripts', 'check-package-graph.mjs')

function check(workspace?: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [SCRIPT, ...(workspace === undefined ? [] : [workspace])], {
    encoding: 'utf8',
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** A workspace of packages/<folder>/{package.json, src/*.ts}. */
function workspace(packages: Record<string, { manifest: object; files: Record<string, string> }>): string {
  const dir = tempDir('shardines-graph-')
  for (const [folder, { manifest, files }] of Object.entries(packages)) {
    const pkg = path.join(dir, 'packages', folder)
    fs.mkdirSync(path.join(pkg, 'src'), { recursive: true })
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify(manifest))
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(pkg, 'src', name)), { recursive: true })
      fs.writeFileSync(path.join(pkg, 'src', name), text)
    }
  }
  return dir
}

const core = (files: Record<string, string>) => ({
  manifest: {
    name: '@shardines/core',
    exports: { '.': './dist/index.js', './testing': './dist/testing.js', './package.json': './package.json' },
    dependencies: { 'ts-pattern': '^5' },
    peerDependencies: { kysely: '*' },
  },
  files,
})
const adapter = (files: Record<string, string>) => ({
  manifest: {
    name: '@shardines/adapter-sqlite',
    dependencies: { '@shardines/core': 'workspace:*' },
    peerDependencies: { 'better-sqlite3': '*', kysely: '*' },
  },
  files,
})

test('a workspace that follows the rules passes; imports in comments do not count', () => {
  const dir = workspace({
    core: core({
      'index.ts': `import { match } from 'ts-pattern'
import type { Kysely } from 'kysely'
import * as fs from 'node:fs'
import { helper } from './helpers/helper.js'
/** @example import { sqliteStorage } from '@shardines/adapter-sqlite' */
export { match, fs, helper }
export type K = Kysely<unknown>
`,
      'helpers/helper.ts': `export const helper = 1\nconst late = () => import('../index.js')\n`,
    }),
    'adapter-sqlite': adapter({
      'index.ts': `import Database from 'better-sqlite3'
import { createShardines } from '@shardines/core'
import type { Fixture } from '@shardines/core/testing'
export { Database, createShardines }
`,
    }),
  })
  const run = check(dir)
  assert.equal(run.code, 0, run.stdout + run.stderr)
  assert.match(run.stdout, /2 packages, 3 files/)
  assert.match(run.stdout, /package graph: ok/)
})

test('the check fails, naming file, line and rule, on each kind of violating import', () => {
  const dir = workspace({
    core: core({
      'index.ts': `import { x } from 'ts-pattern'
import { sqliteStorage } from '@shardines/adapter-sqlite'
export const load = () => import('better-sqlite3')
export { tenantFiles } from '../../adapter-sqlite/src/index.js'
`,
    }),
    'adapter-sqlite': adapter({
      'index.ts': `import { generate } from '@shardines/codegen'
import { StorageError } from '@shardines/core/dist/errors.js'
import chalk from 'chalk'
export type Driver = typeof import('libsql')
`,
    }),
    codegen: {
      manifest: { name: '@shardines/codegen', dependencies: { '@shardines/core': 'workspace:*' } },
      files: { 'index.ts': `export { runCli } from '@shardines/cli'\n` },
    },
  })
  const run = check(dir)
  assert.equal(run.code, 1, run.stdout + run.stderr)
  const expected = [
    // core imports an adapter, a driver (dynamically) and another package's folder by path
    /packages\/core\/src\/index\.ts:2: @shardines\/core imports '@shardines\/adapter-sqlite' \(import\): core defines the contracts/,
    /packages\/core\/src\/index\.ts:3: @shardines\/core imports 'better-sqlite3' \(import\(\)\)/,
    /packages\/core\/src\/index\.ts:4: @shardines\/core imports '\.\.\/\.\.\/adapter-sqlite\/src\/index\.js' \(export from\), which leaves packages\/core for packages\/adapter-sqlite/,
    // an adapter imports codegen, a deep path of core, an undeclared package
    /packages\/adapter-sqlite\/src\/index\.ts:1: @shardines\/adapter-sqlite imports '@shardines\/codegen' \(import\): an adapter implements/,
    /packages\/adapter-sqlite\/src\/index\.ts:1: @shardines\/adapter-sqlite imports '@shardines\/codegen' \(import\) but packages\/adapter-sqlite\/package\.json does not declare @shardines\/codegen/,
    /packages\/adapter-sqlite\/src\/index\.ts:2: @shardines\/adapter-sqlite imports '@shardines\/core\/dist\/errors\.js' \(import\), a path inside @shardines\/core that its package\.json "exports" does not declare/,
    /packages\/adapter-sqlite\/src\/index\.ts:3: @shardines\/adapter-sqlite imports 'chalk' \(import\) but packages\/adapter-sqlite\/package\.json does not declare chalk/,
    /packages\/adapter-sqlite\/src\/index\.ts:4: @shardines\/adapter-sqlite imports 'libsql' \(import\(\) type\) but/,
    // codegen imports the CLI
    /packages\/codegen\/src\/index\.ts:1: @shardines\/codegen imports '@shardines\/cli' \(export from\): codegen migrates/,
  ]
  for (const pattern of expected) assert.match(run.stderr, pattern)
  assert.match(run.stderr, /package graph: 12 violations/)
})

test('a package folder without a rule fails until the script says what it may import', () => {
  const dir = workspace({
    core: core({ 'index.ts': 'export const x = 1\n' }),
    plugins: { manifest: { name: '@shardines/plugins' }, files: { 'index.ts': 'export const y = 2\n' } },
  })
  const run = check(dir)
  assert.equal(run.code, 1)
  assert.match(run.stderr, /packages\/plugins \(@shardines\/plugins\): no rule for this package/)
})

test('this repository passes, printing its known exceptions', () => {
  const run = check()
  assert.equal(run.code, 0, run.stdout + run.stderr)
  assert.match(run.stdout, /@shardines\/core \(packages\/core, core\): \d+ files/)
  assert.match(run.stdout, /@shardines\/cli \(packages\/cli, cli\): \d+ files/)
  assert.match(run.stdout, /package graph: ok/)
  // Only the one deliberate exception: the libSQL adapter's local mode on adapter-sqlite's engine.
  const exceptions = run.stdout.split('\n').filter((line) => line.includes('known exception'))
  assert.ok(exceptions.length > 0, 'the libSQL exception is printed')
  for (const line of exceptions) {
    assert.match(
      line,
      /known exception \(adapter-libsql local mode runs on adapter-sqlite’s engine \(issue 16\)\): packages\/adapter-libsql\/.*@shardines\/adapter-sqlite/,
    )
  }
})
