// The generated interfaces themselves: rows, inserts and updates.
import type { Insertable, Selectable, Updateable } from 'kysely'
import type { Accounts, ApexDB, Plans } from './generated/apex.js'
import type { Comments, Documents, TenantDB } from './generated/tenant.js'
import { type Equal, expectType, type Simplify } from './type-assert.js'

expectType<Equal<keyof ApexDB, 'accounts' | 'plans'>>()
expectType<Equal<keyof TenantDB, 'comments' | 'documents'>>()

// INTEGER PRIMARY KEY is a number in rows (never null) and optional on insert.
expectType<
  Equal<
    Selectable<Documents>,
    {
      archived: number
      created_at: string
      id: number
      meta: string | null
      owner_id: number | null
      status: string
      title: string
    }
  >
>()
expectType<
  Equal<
    Simplify<Insertable<Documents>>,
    {
      archived?: number
      created_at?: string
      id?: number
      meta?: string | null
      owner_id?: number | null
      status?: string
      title: string
    }
  >
>()
expectType<Equal<Updateable<Comments>['attachment'], Buffer | null | undefined>>()
// AUTOINCREMENT is typed like a plain rowid alias.
expectType<Equal<Selectable<Comments>['id'], number>>()
// A text primary key declared NOT NULL is required; SQLite allows NULL in one that is not.
expectType<Equal<Insertable<Plans>['id'], string>>()
expectType<Equal<Selectable<Accounts>['created_at'], string>>()

const row: Selectable<Documents> = {
  archived: 0,
  created_at: '2026-01-01 00:00:00',
  id: 1,
  meta: null,
  owner_id: null,
  status: 'open',
  title: 't',
}
// @ts-expect-error a row's id is never null
row.id = null
// @ts-expect-error title is required on insert
const missingTitle: Insertable<Documents> = { status: 'open' }
