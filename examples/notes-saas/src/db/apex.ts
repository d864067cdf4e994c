// Hand-written in the shape @shardines/codegen generates; replace with `shardines codegen` output.

import type { ColumnType } from 'kysely'

export type Generated<T> =
  T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>

export interface Accounts {
  created_at: Generated<string>
  email: string
  id: Generated<number>
  name: string
}

export interface Memberships {
  account_id: number
  role: string
  tenant_id: string
}

export interface Plans {
  id: string
  max_notes: number
  monthly_price_cents: number
  name: string
}

export interface Tenants {
  created_at: Generated<string>
  id: string
  name: string
  owner_id: number
  plan_id: string
  staging_of: string | null
}

export interface ApexDB {
  accounts: Accounts
  memberships: Memberships
  plans: Plans
  tenants: Tenants
}
