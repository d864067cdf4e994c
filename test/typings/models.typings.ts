// What the model API knows from the generated types: rows, inserts, updates,
// where columns and values, include names and the shapes they add.
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { apex, createShardines, defineModels, type Shardines, tenanted } from '@shardines/core'
import type { ApexDB } from './generated/apex.js'
import type { TenantDB } from './generated/tenant.js'
import { type Equal, expectType, type Simplify } from './type-assert.js'

const models = defineModels<ApexDB, TenantDB>()({
  Account: apex('accounts', { belongsTo: { plan: ['Plan', 'plan_id'] } }),
  Plan: apex('plans', { hasMany: { accounts: ['Account', 'plan_id'] } }),
  Document: tenanted('documents', {
    belongsTo: { owner: ['Account', 'owner_id'] },
    hasMany: { comments: ['Comment', 'document_id'] },
    hasOne: { firstComment: ['Comment', 'document_id'] },
  }),
  Comment: tenanted('comments', { belongsTo: { document: ['Document', 'document_id'] } }),
})

// No type arguments: ApexDB, TenantDB and the models are all inferred from `models`.
const shard = createShardines({ storage: sqliteStorage({ dir: './data' }), models })

type AccountRow = { created_at: string; email: string; id: number; plan_id: string }
type PlanRow = { id: string; name: string; price_cents: number }
type DocumentRow = {
  archived: number
  created_at: string
  id: number
  meta: string | null
  owner_id: number | null
  status: string
  title: string
}
type CommentRow = { attachment: Buffer | null; body: string; document_id: number; id: number }

export async function rows(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const doc = await t.models.Document.find(1)
    expectType<Equal<typeof doc, DocumentRow | undefined>>()
    const sure = await t.models.Document.findOrThrow(1)
    expectType<Equal<typeof sure, DocumentRow>>()
    const by = await t.models.Comment.findBy({ document_id: 1, attachment: null })
    expectType<Equal<typeof by, CommentRow | undefined>>()
    const all = await t.models.Comment.all()
    expectType<Equal<typeof all, CommentRow[]>>()
    const n = await t.models.Document.count()
    expectType<Equal<typeof n, number>>()
    const gone = await t.models.Document.delete(1)
    expectType<Equal<typeof gone, boolean>>()
    // Apex models in a scope, and their string primary key.
    const plan = await t.models.Plan.find('pro')
    expectType<Equal<typeof plan, PlanRow | undefined>>()
    // The escape hatch is Kysely, typed for the model's table.
    const titles = await t.models.Document.query().select(['id', 'title']).execute()
    expectType<Equal<typeof titles, { id: number; title: string }[]>>()

    // Transactions carry the same typed models.
    await t.transaction(async (trx) => {
      const inTrx = await trx.models.Document.find(1)
      expectType<Equal<typeof inTrx, DocumentRow | undefined>>()
    })
    // mapTenants scopes too.
    const counts = await shard.mapTenants((s) => s.models.Document.count())
    expectType<Equal<(typeof counts)[number]['value'], number | undefined>>()

    // @ts-expect-error the key of plans is a string
    t.models.Plan.find(1)
    // @ts-expect-error the key of documents is a number
    t.models.Document.find('1')
    // @ts-expect-error no such model
    t.models.Invoice
    // @ts-expect-error findBy takes columns of the model
    t.models.Document.findBy({ body: 'x' })
  })
  const account = await shard.models.Account.findOrThrow(1)
  expectType<Equal<typeof account, AccountRow>>()
}

export async function inserts(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    // Generated and defaulted columns are optional; create returns the stored row.
    const doc = await t.models.Document.create({ title: 'draft' })
    expectType<Equal<typeof doc, DocumentRow>>()
    const many = await t.models.Comment.createMany([{ document_id: doc.id, body: 'hi', attachment: null }])
    expectType<Equal<typeof many, CommentRow[]>>()
    const updated = await t.models.Document.update(doc.id, { status: 'done', owner_id: null })
    expectType<Equal<typeof updated, DocumentRow | undefined>>()

    // @ts-expect-error title is required
    t.models.Document.create({ status: 'open' })
    // @ts-expect-error a wrong type
    t.models.Document.create({ title: 42 })
    // @ts-expect-error an unknown column
    t.models.Document.create({ title: 'x', body: 'y' })
    // @ts-expect-error update with a wrong type
    t.models.Document.update(1, { owner_id: 'nobody' })
    // @ts-expect-error createMany takes insert shapes
    t.models.Comment.createMany([{ body: 'no document' }])
  })
  await shard.models.Plan.create({ id: 'pro', name: 'Pro', price_cents: 900 })
  // @ts-expect-error plans have no generated id: it is required
  shard.models.Plan.create({ name: 'Pro', price_cents: 900 })
}

export async function whereValues(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const open = await t.models.Document.where('status', '=', 'open')
      .where('id', 'in', [1, 2])
      .where('owner_id', 'is', null)
      .where({ title: 'x', owner_id: [1, 2] })
      .orderBy('created_at', 'desc')
      .limit(10)
      .offset(5)
      .all()
    expectType<Equal<typeof open, DocumentRow[]>>()
    const first = await t.models.Document.where('title', 'like', 'Q%').first()
    expectType<Equal<typeof first, DocumentRow | undefined>>()
    const count = await t.models.Document.where('status', '!=', 'done').count()
    expectType<Equal<typeof count, number>>()

    // @ts-expect-error unknown column
    t.models.Document.where('body', '=', 'x')
    // @ts-expect-error a value of the wrong type
    t.models.Document.where('id', '=', 'one')
    // @ts-expect-error in takes a list
    t.models.Document.where('id', 'in', 1)
    // @ts-expect-error is takes null
    t.models.Document.where('owner_id', 'is', 3)
    // @ts-expect-error an unknown operator
    t.models.Document.where('id', '===', 1)
    // @ts-expect-error the object form checks values too
    t.models.Document.where({ id: 'one' })
    // @ts-expect-error orderBy takes a column
    t.models.Document.orderBy('nope')
  })
}

export async function includes(): Promise<void> {
  await shard.withTenant('acme', async (t) => {
    const docs = await t.models.Document.where('status', '=', 'open').include('owner', 'comments').all()
    expectType<
      Equal<
        Simplify<(typeof docs)[number]>,
        Simplify<DocumentRow & { owner: AccountRow | null; comments: CommentRow[] }>
      >
    >()
    const one = await t.models.Document.include('firstComment').first()
    expectType<Equal<Simplify<NonNullable<typeof one>>, Simplify<DocumentRow & { firstComment: CommentRow | null }>>>()

    // Nested: two and three levels.
    const nested = await t.models.Comment.include('document.owner.plan').all()
    type Nested = (typeof nested)[number]
    expectType<Equal<keyof NonNullable<Nested['document']>, keyof DocumentRow | 'owner'>>()
    type Owner = NonNullable<NonNullable<Nested['document']>['owner']>
    expectType<Equal<Owner['plan'], PlanRow | null>>()
    expectType<Equal<Owner['email'], string>>()
    const deep = await t.models.Document.include('comments.document', 'owner').all()
    expectType<Equal<(typeof deep)[number]['comments'][number]['document'], DocumentRow | null>>()

    // @ts-expect-error an unknown relation
    t.models.Document.include('author')
    // @ts-expect-error an unknown nested relation
    t.models.Document.include('comments.author')
    // @ts-expect-error a relation that was not included is not on the row
    ;(await t.models.Document.include('owner').all())[0]?.comments
  })
  const plans = await shard.models.Plan.include('accounts').all()
  expectType<Equal<(typeof plans)[number]['accounts'], AccountRow[]>>()
}

export function declarationsAreChecked(): void {
  defineModels<ApexDB, TenantDB>()({
    // @ts-expect-error a table that is not in TenantDB
    Invoice: tenanted('invoices'),
  })
  defineModels<ApexDB, TenantDB>()({
    Account: apex('accounts'),
    // @ts-expect-error a belongsTo foreign key that is not a column
    Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner'] } }),
  })
  defineModels<ApexDB, TenantDB>()({
    // @ts-expect-error a relation to a model that is not declared
    Document: tenanted('documents', { belongsTo: { owner: ['Acount', 'owner_id'] } }),
  })
}

// The DESIGN.md call shape: explicit <ApexDB, TenantDB> and an inline models
// object. TypeScript cannot infer the models' types here (no partial
// inference), so `t.models` is loosely typed; it compiles and works.
export async function designCallShape(): Promise<void> {
  const loose = createShardines<ApexDB, TenantDB>({
    storage: sqliteStorage({ dir: './data' }),
    models: {
      Account: apex('accounts'),
      Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
    },
  })
  await loose.withTenant('acme', async (t) => {
    await t.models.Document.find(1)
    await t.models.Document.where('status', '=', 'open').include('owner').all()
  })
  const n: number = await loose.withTenant('acme', (t) => t.models.Document.count())
  void n
  loose.models.Account
  // The same call with the declarations' type as the third argument is fully typed.
  const decls = {
    Account: apex('accounts'),
    Document: tenanted('documents', { belongsTo: { owner: ['Account', 'owner_id'] } }),
  }
  const typed = createShardines<ApexDB, TenantDB, typeof decls>({
    storage: sqliteStorage({ dir: './data' }),
    models: decls,
  })
  await typed.withTenant('acme', async (t) => {
    const rows = await t.models.Document.include('owner').all()
    expectType<Equal<(typeof rows)[number]['owner'], AccountRow | null>>()
    // @ts-expect-error typed: no such model
    t.models.Comment
  })
  const s: Shardines<ApexDB, TenantDB> = loose
  void s
}
