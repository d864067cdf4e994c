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
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import type { TsChild } from './child-process.js'
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
  const proc = spawn(process.execPath, [file, ...args], { stdio: 'pipe' })
  // A child never outlives its test, even one that timed out or threw before killing it.
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
  }
  after(kill)
  process.once('exit', kill)
  const lines: string[] = []
  const listeners = new Set<(line: string) => void>()
  let partial = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => {
    partial += chunk
    let nl = partial.indexOf('\n')
    while (nl >= 0) {
      const line = partial.slice(0, nl)
      partial = partial.slice(nl + 1)
      lines.push(line)
      for (const listener of listeners) listener(line)
      nl = partial.indexOf('\n')
    }
  })
  proc.stderr.setEncoding('utf8')
  proc.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal }))
  })
  return {
    process: proc,
    lines,
    stderr: () => stderr,
    exited,
    send: (line) => {
      proc.stdin.write(`${line}\n`)
    },
    waitForLine(match, timeoutMs = 30_000) {
      const seen = lines.find(match)
      if (seen !== undefined) return Promise.resolve(seen)
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener)
          reject(new Error(`child ${file} printed no matching line in ${timeoutMs} ms; stderr:\n${stderr}`))
        }, timeoutMs)
        const listener = (line: string) => {
          if (!match(line)) return
          clearTimeout(timer)
          listeners.delete(listener)
          resolve(line)
        }
        listeners.add(listener)
        void exited.then(() => {
          if (!listeners.has(listener)) return
          clearTimeout(timer)
          listeners.delete(listener)
          reject(new Error(`child ${file} exited before printing a matching line; stderr:\n${stderr}`))
        })
      })
    },
  }
}
