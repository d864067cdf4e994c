/**
 * ApexDB of the app the docs' snippets are written against (`import type { ApexDB } from './db/apex.js'`),
 * in the shape `shardines codegen` writes: accounts on plans.
 */

import type { ColumnType } from 'kysely'

export type Generated<T> =
  T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>

export interface Accounts {
  email: string
  id: Generated<number>
  plan_id: string | null
}

export interface Plans {
  id: string
  name: string
}

export interface ApexDB {
  accounts: Accounts
  plans: Plans
}
