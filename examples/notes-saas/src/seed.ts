import type { NotesShard } from './shard.js'
import { signup } from './signup.js'

interface DemoTenant {
  tenant: string
  company: string
  plan: string
  owner: { email: string; name: string }
  member: { email: string; name: string }
  notes: { title: string; body: string; comments: string[] }[]
}

/** The demo data: three companies, each with an owner, a member, notes and comments. */
export const DEMO_TENANTS: readonly DemoTenant[] = [
  {
    tenant: 'acme',
    company: 'Acme Corp',
    plan: 'team',
    owner: { email: 'ada@acme.test', name: 'Ada Lovelace' },
    member: { email: 'charles@acme.test', name: 'Charles Babbage' },
    notes: [
      { title: 'Q3 roadmap', body: 'Ship the analytical engine v2.', comments: ['Needs a budget line.', 'Agreed.'] },
      { title: 'Hiring plan', body: 'Two engineers, one designer.', comments: [] },
    ],
  },
  {
    tenant: 'globex',
    company: 'Globex',
    plan: 'business',
    owner: { email: 'hank@globex.test', name: 'Hank Scorpio' },
    member: { email: 'homer@globex.test', name: 'Homer Simpson' },
    notes: [{ title: 'Launch checklist', body: 'Hammocks for everyone.', comments: ['Ordered.'] }],
  },
  {
    tenant: 'initech',
    company: 'Initech',
    plan: 'free',
    owner: { email: 'bill@initech.test', name: 'Bill Lumbergh' },
    member: { email: 'peter@initech.test', name: 'Peter Gibbons' },
    notes: [
      { title: 'TPS reports', body: 'New cover sheets from Monday.', comments: ['Did you get the memo?'] },
      { title: 'Red stapler', body: '', comments: [] },
    ],
  },
]

/**
 * Brings the data folder up to date and adds the demo tenants that are missing:
 * migrates apex and every existing tenant, then signs up each demo company not
 * yet in the directory. Running it again changes nothing.
 */
export async function seed(shard: NotesShard, log: (line: string) => void = () => {}): Promise<void> {
  const apex = await shard.migrate.apex()
  if (apex.status === 'migrated') log(`apex: migrated ${apex.from ?? '(empty)'} → ${apex.to}`)
  const report = await shard.migrate.all()
  if (report.migrated > 0) log(`tenants: ${report.migrated} migrated, ${report.upToDate} up to date`)
  if (report.failed > 0) log(`tenants: ${report.failed} failed to migrate (see \`shard.migrate.status()\`)`)

  for (const demo of DEMO_TENANTS) {
    const listed = await shard.apex.selectFrom('tenants').select('id').where('id', '=', demo.tenant).executeTakeFirst()
    if (listed) continue
    const { account } = await signup(shard, {
      ...demo.owner,
      company: demo.company,
      tenant: demo.tenant,
      plan: demo.plan,
    })
    const member = await shard.apex.transaction().execute(async (trx) => {
      const row = await trx.insertInto('accounts').values(demo.member).returning('id').executeTakeFirstOrThrow()
      await trx
        .insertInto('memberships')
        .values({ tenant_id: demo.tenant, account_id: row.id, role: 'member' })
        .execute()
      return row
    })
    await shard.withTenant(demo.tenant, (t) =>
      t.transaction(async ({ db }) => {
        for (const note of demo.notes) {
          const { id } = await db
            .insertInto('notes')
            .values({ title: note.title, body: note.body, author_id: account.id })
            .returning('id')
            .executeTakeFirstOrThrow()
          for (const body of note.comments) {
            await db.insertInto('comments').values({ note_id: id, author_id: member.id, body }).execute()
          }
        }
      }),
    )
    log(`seeded tenant ${demo.tenant} (${demo.company}, ${demo.plan} plan): ${demo.notes.length} notes`)
  }
}
