import * as os from 'node:os'

/** Plain-text tables and number formats for benchmark output. */

export type Cell = string | number

/** Prints a table with a title; numbers and ratio-like strings are right-aligned. */
export function printTable(title: string, headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = rows.map((row) => row.map((cell) => String(cell)))
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => (row[i] ?? '').length)))
  const right = headers.map((_, i) => i > 0)
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (right[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  console.log(`\n${title}`)
  console.log(line(headers))
  console.log(line(widths.map((w) => '-'.repeat(w))))
  for (const row of text) console.log(line(row))
}

/** Nanoseconds as microseconds, e.g. `12.34 µs`. */
export function us(ns: number): string {
  return `${(ns / 1e3).toFixed(ns < 10_000 ? 2 : 1)} µs`
}

/** Nanoseconds as milliseconds, e.g. `1.234 ms`. */
export function ms(ns: number): string {
  return `${(ns / 1e6).toFixed(3)} ms`
}

/** A ratio, e.g. `0.81×`. */
export function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}×`
}

/** Bytes as MiB, e.g. `41.2 MiB`. */
export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/** `ok` or `MISSED` for a bar, with the bar itself. */
export function bar(value: number, limit: number, label: string): string {
  return `${value <= limit ? 'ok    ' : 'MISSED'} ${label} (bar ≤ ${limit})`
}

/** A header line naming the machine, so figures are read in context. */
export function printHeader(name: string): void {
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')
  console.log(
    `# ${name}  (node ${process.version}, ${process.platform}, ${os.availableParallelism()} cores, load average ${load})`,
  )
}
