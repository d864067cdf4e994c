/**
 * What keeping connections open costs raw better-sqlite3 itself, with no
 * Shardines in the process: the floor under issue 15's bar (a pool miss ≤ 1.25×
 * raw open + read one row + close).
 *
 * Each configuration runs in a child process of its own (nothing else open in
 * it), over copies of one tenant file (20 rows):
 *
 * - raw: open + read one row + close, with no other connection open;
 * - held N: the same, while N other connections stay open and untouched (what
 *   SQLite's unix VFS pays per open for the files the process already has open:
 *   it looks every opened file up in a list of all of them);
 * - LRU N: open + read one row, keeping an LRU of N connections and closing the
 *   oldest, as a pool of N does on a miss (the list above, plus closing a
 *   connection that went cold while the others were used).
 *
 * The configurations run in a rotating order, round after round; each round's
 * times are divided by that round's raw time, and the median over the rounds is
 * reported, so the machine's drift between rounds cancels.
 *
 * Env: BENCH_ROUNDS (default 5), BENCH_SIZES (default `16,64,256`),
 * BENCH_ITERATIONS (per child, default 15000).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { copiedTenantSet } from './lib/fixture.js'
import { median } from './lib/measure.js'
import { POINT_SELECT, rawOpenCase } from './lib/raw-opens.js'
import { printHeader, printTable, ratio, us } from './lib/table.js'

const ROWS = 20
const BAR = 1.25

interface Config {
  readonly kind: 'raw' | 'held' | 'lru'
  readonly size: number
}

const label = (c: Config) => (c.kind === 'raw' ? 'raw' : `${c.kind} ${c.size}`)

if (process.env.BENCH_RAW_LRU_CHILD !== undefined) {
  const config = JSON.parse(process.env.BENCH_RAW_LRU_CHILD) as Config
  const files = JSON.parse(process.env.BENCH_RAW_LRU_FILES as string) as string[]
  const iterations = Number(process.env.BENCH_ITERATIONS ?? 15_000)
  // Held connections use the files at the end of the list; the measured opens cycle over the rest.
  const held = config.kind === 'held' ? files.slice(files.length - config.size) : []
  const ring = files.slice(0, files.length - (config.kind === 'held' ? config.size : 0))
  const kept = held.map((file) => {
    const db = new Database(file, { fileMustExist: true })
    db.prepare(POINT_SELECT).get(1)
    return db
  })
  const measured = rawOpenCase(label(config), ring, {
    rows: ROWS,
    keep: config.kind === 'lru' ? config.size : undefined,
  })
  measured.run(2_000)
  const started = process.hrtime.bigint()
  measured.run(iterations)
  const ns = Number(process.hrtime.bigint() - started) / iterations
  measured.close()
  for (const db of kept) db.close()
  process.stdout.write(JSON.stringify({ ns }))
  process.exit(0)
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SIZES = (process.env.BENCH_SIZES ?? '16,64,256').split(',').map(Number)
const configs: Config[] = [
  { kind: 'raw', size: 0 },
  ...SIZES.map((size) => ({ kind: 'held' as const, size })),
  ...SIZES.map((size) => ({ kind: 'lru' as const, size })),
]

printHeader(`raw better-sqlite3: what keeping connections open costs an open + read + close (child processes)`)
const largest = Math.max(...SIZES)
const { files } = await copiedTenantSet('raw-lru', largest * 3 + 600, (i) => `t${String(i).padStart(5, '0')}`, ROWS)
const fileList = JSON.stringify([...files.values()])
const self = fileURLToPath(import.meta.url)

function runChild(config: Config): number {
  const result = spawnSync(process.execPath, ['--import', 'tsx', self], {
    env: {
      ...process.env,
      NODE_NO_WARNINGS: '1',
      BENCH_RAW_LRU_CHILD: JSON.stringify(config),
      BENCH_RAW_LRU_FILES: fileList,
    },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  })
  if (result.status !== 0) throw new Error(`child ${label(config)} failed: ${result.stderr}`)
  return (JSON.parse(result.stdout) as { ns: number }).ns
}

const times = new Map<string, number[]>(configs.map((c) => [label(c), []]))
for (let round = 0; round < ROUNDS; round++) {
  const order = configs.map((_, i) => configs[(i + round) % configs.length] as Config)
  for (const config of order) (times.get(label(config)) as number[]).push(runChild(config))
  console.error(`round ${round + 1}/${ROUNDS} done`)
}

const rawTimes = times.get('raw') as number[]
const rows = configs.map((config) => {
  const t = times.get(label(config)) as number[]
  const paired = median(t.map((ns, r) => ns / (rawTimes[r] as number)))
  const describe =
    config.kind === 'raw'
      ? 'open + read one row + close, nothing else open'
      : config.kind === 'held'
        ? `the same, ${config.size} other connections held open`
        : `LRU of ${config.size}: open + read one row + close the oldest`
  return [
    describe,
    us(median(t)),
    ratio(paired, 1),
    `${ratio(Math.min(...t.map((ns, r) => ns / (rawTimes[r] as number))), 1)}–${ratio(Math.max(...t.map((ns, r) => ns / (rawTimes[r] as number))), 1)}`,
  ]
})
printTable(
  `per open (median of ${ROUNDS} rounds; ratio paired per round)`,
  ['case', 'per open', 'vs raw', 'round range'],
  rows,
)
const lru = median((times.get(`lru ${largest}`) as number[]).map((ns, r) => ns / (rawTimes[r] as number)))
console.log(
  `  issue 15's bar (a Shardines miss ≤ ${BAR}× raw) leaves a pool of ${largest} ${lru < BAR ? `${(((BAR - lru) / lru) * 100).toFixed(0)} % over this LRU for all of its own work` : 'nothing: raw better-sqlite3 with the same LRU is already over it'}`,
)
