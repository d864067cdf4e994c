// The small schema the prepared-query type tests declare a shard over.
import type { Generated } from 'kysely'

export interface ApexDB {
  accounts: { id: Generated<number>; email: string }
}

export interface TenantDB {
  items: { id: Generated<number>; name: string; price: number | null }
}
