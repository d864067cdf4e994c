/**
 * Children that start fast: a `.ts` child transpiled once to a temporary
 * `.mjs` and run by plain `node`, without tsx. Under `--import tsx` every
 * module a child loads goes through the loader's hooks thread: starting a child
 * that imports `@shardines/core` costs about two CPU-seconds instead of a
 * third of one, which a test spawning one child per SIGKILL cannot afford.
 *
 * The child may import only `node:` built-ins and packages (its bare
 * specifiers are resolved from here, then written as file URLs); type-only
 * imports are dropped.
 */
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { type TsChild, wrapChild } from './child-process.js'
import { tempDir } from './temp-dir.js'

/** Transpiles `script` (a `.ts` file URL) into a temporary `.mjs` file and returns its path. */
export function compileChild(script: URL): string {
  const file = fileURLToPath(script)
  const { outputText } = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  })
  const code = outputText.replace(/(\bfrom\s+|\bimport\s*\(?\s*)'([^']+)'/g, (whole, keyword: string, spec: string) => {
    if (spec.startsWith('node:')) return whole
    if (spec.startsWith('.') || spec.startsWith('/')) {
      throw new Error(`${file}: a compiled child may import only node: built-ins and packages, not "${spec}"`)
    }
    return `${keyword}'${import.meta.resolve(spec)}'`
  })
  const out = path.join(tempDir('shardines-child-'), `${path.basename(file, '.ts')}.mjs`)
  fs.writeFileSync(out, code)
  return out
}

/** Runs a compiled child (`compileChild`) under plain `node`; its output split into lines like `spawnTsChild`'s. */
export function spawnCompiledChild(file: string, args: readonly string[]): TsChild {
  return wrapChild(spawn(process.execPath, [file, ...args], { stdio: 'pipe' }), file)
}
