import cliProgress from 'cli-progress'

/**
 * Where a command writes. Results go to stdout (JSON alone with `--json`);
 * progress and diagnostics go to stderr, so `--json` output stays parseable.
 */
export interface CliOutput {
  readonly json: boolean
  /** A line of human output (stdout); dropped with `--json`. */
  line(text: string): void
  /** The single JSON document of `--json` (stdout). */
  result(value: unknown): void
  /** A diagnostic (stderr), shown in every mode. */
  error(text: string): void
  /** A progress display for `total` items: a bar on a terminal, plain lines otherwise, nothing with `--json`. */
  progress(label: string, total: number): CliProgress
}

export interface CliProgress {
  tick(failed: boolean): void
  stop(): void
}

export interface CliStreams {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
}

/** Plain progress lines at most this often when stderr is not a terminal. */
const PLAIN_INTERVAL_MS = 1000

export function createCliOutput(streams: CliStreams, json: boolean): CliOutput {
  return {
    json,
    line: (text) => {
      if (!json) streams.stdout.write(`${text}\n`)
    },
    result: (value) => {
      streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
    },
    error: (text) => {
      streams.stderr.write(`${text}\n`)
    },
    progress: (label, total) => {
      if (json || total === 0) return { tick: () => {}, stop: () => {} }
      return streams.stderr.isTTY ? barProgress(streams, label, total) : plainProgress(streams, label, total)
    },
  }
}

/** A cli-progress bar: counts, rate, ETA and failures. */
function barProgress(streams: CliStreams, label: string, total: number): CliProgress {
  const started = performance.now()
  let failed = 0
  const bar = new cliProgress.SingleBar(
    {
      stream: streams.stderr as NodeJS.WritableStream,
      format: `${label} {bar} {value}/{total} | {rate}/s | ETA {eta_formatted} | failed {failed}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0, { rate: '0', failed: 0 })
  let done = 0
  return {
    tick: (isFailure) => {
      done++
      if (isFailure) failed++
      bar.update(done, { rate: rate(done, started), failed })
    },
    stop: () => bar.stop(),
  }
}

/** One line per second (and a last one): what CI logs and pipes want. */
function plainProgress(streams: CliStreams, label: string, total: number): CliProgress {
  const started = performance.now()
  let last = started
  let done = 0
  let failed = 0
  const print = () => streams.stderr.write(`${label} ${done}/${total} (${rate(done, started)}/s, failed ${failed})\n`)
  return {
    tick: (isFailure) => {
      done++
      if (isFailure) failed++
      const now = performance.now()
      if (now - last >= PLAIN_INTERVAL_MS) {
        last = now
        print()
      }
    },
    stop: () => print(),
  }
}

function rate(done: number, started: number): string {
  const seconds = (performance.now() - started) / 1000
  return seconds > 0 ? (done / seconds).toFixed(0) : '0'
}
