/**
 * Tenant rows joined with apex rows (issue 3): one query through ATTACH
 * (`t.db…innerJoin('apex.accounts as a', …)`) against two queries joined in
 * JavaScript (the tenant's rows, then `shard.apex…where('id', 'in', owners)`,
 * then a Map join), for 10, 1,000 and 100,000 tenant rows. Apex holds 1,000
 * accounts; every document has an owner among them.
 *
 * Both run inside one scope per batch (the apex attachment is made once and
 * kept for the connection's life, as in an application); the ratio is ATTACH
 * against the JavaScript join (1.0×) for each size.
 */
import { sql } from 'kysely'
import { openShard, tempDir } from './lib/fixture.js'
import { compare, type Measurement } from './lib/measure.js'
import { printHeader, printTable, ratio, us } from './lib/table.js'
import { seededRandom } from './lib/zipf.js'

const SIZES = (process.env.BENCH_JOIN_SIZES ?? '10,1000,100000').split(',').map(Number)
const ACCOUNTS = 1000

printHeader('tenant rows joined with apex rows: ATTACH vs two queries joined in JavaScript')
const shard = await openShard(tempDir('join'))
await shard.apex.transaction().execute(async (trx) => {
  for (let i = 1; i <= ACCOUNTS; i++) {
    await trx
      .insertInto('accounts')
      .values({ id: i, email: `user${i}@example.com` })
      .execute()
  }
})
const random = seededRandom(7)
for (const size of SIZES) {
  const id = `rows-${size}`
  await shard.tenants.create(id)
  await shard.withTenant(id, (t) =>
    t.transaction(async (trx) => {
      for (let start = 1; start <= size; start += 500) {
        const rows = []
        for (let i = start; i < Math.min(size + 1, start + 500); i++) {
          rows.push({ id: i, title: `document ${i}`, owner_id: 1 + Math.floor(random() * ACCOUNTS) })
        }
        await trx.db.insertInto('documents').values(rows).execute()
      }
    }),
  )
}

interface Joined {
  id: number
  title: string
  email: string
}

function attachJoin(): Promise<Joined[]> {
  return shard
    .db()
    .selectFrom('documents as d')
    .innerJoin('apex.accounts as a', 'a.id', 'd.owner_id')
    .select(['d.id', 'd.title', 'a.email'])
    .execute() as Promise<Joined[]>
}

async function jsJoin(): Promise<Joined[]> {
  const docs = await shard.db().selectFrom('documents').select(['id', 'title', 'owner_id']).execute()
  const owners = [...new Set(docs.map((d) => d.owner_id).filter((o): o is number => o !== null))]
  const emails = new Map<number, string>()
  // Chunks stay under SQLite's bound-parameter limit (32,766).
  for (let i = 0; i < owners.length; i += 10_000) {
    const accounts = await shard.apex
      .selectFrom('accounts')
      .select(['id', 'email'])
      .where('id', 'in', owners.slice(i, i + 10_000))
      .execute()
    for (const a of accounts) emails.set(a.id, a.email)
  }
  const out: Joined[] = []
  for (const d of docs) {
    const email = d.owner_id === null ? undefined : emails.get(d.owner_id)
    if (email !== undefined) out.push({ id: d.id, title: d.title, email })
  }
  return out
}

const rows: (string | number)[][] = []
for (const size of SIZES) {
  const tenant = `rows-${size}`
  // Same rows both ways (order aside), checked once.
  await shard.withTenant(tenant, async () => {
    const a = (await attachJoin()).sort((x, y) => x.id - y.id)
    const b = (await jsJoin()).sort((x, y) => x.id - y.id)
    if (a.length !== size || JSON.stringify(a) !== JSON.stringify(b)) {
      throw new Error(`the two joins disagree for ${size} rows (${a.length} vs ${b.length})`)
    }
    const { rows: plan } = await sql<{
      detail: string
    }>`explain query plan select d.id from main.documents d join apex.accounts a on a.id = d.owner_id`.execute(
      shard.db(),
    )
    if (size === SIZES[0]) console.log(`query plan of the ATTACH join: ${plan.map((p) => p.detail).join('; ')}`)
  })
  const inScope = (fn: () => Promise<unknown>) => (n: number) =>
    shard.withTenant(tenant, async () => {
      for (let i = 0; i < n; i++) await fn()
    })
  const [js, attach] = (await compare(
    [
      { name: 'two queries + Map join', run: inScope(jsJoin) },
      { name: 'one query via ATTACH', run: inScope(() => attachJoin()) },
    ],
    { rounds: Number(process.env.BENCH_ROUNDS ?? (size >= 100_000 ? 7 : 15)), batchMs: size >= 100_000 ? 400 : 60 },
  )) as [Measurement, Measurement]
  rows.push([
    size,
    us(js.median),
    us(attach.median),
    ratio(attach.median, js.median),
    `${us(attach.min)}–${us(attach.max)}`,
    us(attach.median / size),
  ])
}
printTable(
  'median time per joined read (rounds interleaved; ratio = ATTACH / JavaScript join)',
  ['tenant rows', 'JS join (1.0×)', 'ATTACH', 'ratio', 'ATTACH round range', 'ATTACH per row'],
  rows,
)
await shard.close()
