// Runs the built `shardines` executable as a user would, for the CLI suites.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const coreIndex = import.meta.resolve('@shardines/core')
export const adapterIndex = import.meta.resolve('@shardines/adapter-sqlite')
export const cliIndex = import.meta.resolve('@shardines/cli')
/** The `bin` of @shardines/cli (the committed shim that imports its dist/main.js). */
export const SHARDINES_BIN = fileURLToPath(
  new URL('bin/shardines.js', import.meta.resolve('@shardines/cli/package.json')),
)

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `shardines <args>` in `cwd` (stdin is not a terminal) and collects its output and exit code. */
export function shardines(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [SHARDINES_BIN, ...args], {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    })
    proc.stdin.end()
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    proc.on('error', reject)
    proc.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}
