import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { after } from 'node:test'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** A TypeScript child process (`node --import tsx`), its output split into lines. */
export interface TsChild {
  readonly process: ChildProcessWithoutNullStreams
  /** Every complete stdout line so far. */
  readonly lines: string[]
  /** Everything written to stderr so far. */
  stderr(): string
  /** Resolves with the first stdout line (seen or future) that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Writes one line to the child's stdin. */
  send(line: string): void
}

/**
 * Spawns `script` (a `.ts` file URL, resolved relative to the calling test
 * with `new URL('./children/x.ts', import.meta.url)`) under `node --import tsx`.
 * With `fileLimit`, runs it under `ulimit -n <fileLimit>` through bash.
 */
export function spawnTsChild(script: URL, args: readonly string[], options: { fileLimit?: number } = {}): TsChild {
  const file = fileURLToPath(script)
  const node = process.execPath
  const proc =
    options.fileLimit === undefined
      ? spawn(node, ['--import', 'tsx', file, ...args], { cwd: repoRoot, stdio: 'pipe' })
      : spawn('bash', ['-c', `ulimit -n ${options.fileLimit}; exec "$0" --import tsx "$@"`, node, file, ...args], {
          cwd: repoRoot,
          stdio: 'pipe',
        })
  return wrapChild(proc, file)
}

/**
 * A spawned child as a {@link TsChild}: killed when the test (or the process)
 * ends, its stdout split into lines, waitable by line and by exit.
 */
export function wrapChild(proc: ChildProcessWithoutNullStreams, file: string): TsChild {
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

/** Reads one line from stdin (for children waiting on a start signal). */
export function readStdinLine(): Promise<string> {
  return new Promise((resolve) => {
    let buffer = ''
    process.stdin.setEncoding('utf8')
    const onData = (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf('\n')
      if (nl < 0) return
      process.stdin.off('data', onData)
      process.stdin.pause()
      resolve(buffer.slice(0, nl))
    }
    process.stdin.on('data', onData)
  })
}
