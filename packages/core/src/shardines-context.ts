import type { KyselyPlugin } from 'kysely'
import type { QueryLogger } from './connection/query-log.js'
import type { EventHub } from './events/event-hub.js'
import type { MigrationSet } from './migration/migration-source.js'
import type { MigrateOnOpen } from './shardines-options.js'
import type { StorageAdapter, TenantLease } from './storage/storage-adapter.js'

/**
 * What the instance's parts (scopes, migrations, models, HTTP, CLI) share.
 * Internal: not exported from the package.
 */
export interface ShardinesContext {
  readonly storage: StorageAdapter
  readonly log: QueryLogger | null
  /** The instance's event stream (`shard.on`); check `events.emit` before building an event. */
  readonly events: EventHub
  readonly plugins: readonly KyselyPlugin[]
  readonly migrateOnOpen: MigrateOnOpen
  /** The loaded migration sets (loaded once, on first need). */
  migrationSets(): Promise<{ readonly apex: MigrationSet; readonly tenant: MigrationSet }>
  /** The migration sets if `migrationSets()` has loaded them already, else undefined. */
  loadedMigrationSets(): { readonly apex: MigrationSet; readonly tenant: MigrationSet } | undefined
  /** Pins a tenant's handle; with `ready`, also applies `migrateOnOpen`. */
  acquire(tenantId: string, ready: boolean): Promise<TenantLease>
  /** Throws `ShardinesClosedError` after `close()`. */
  assertOpen(): void
  /** Whether the calling code runs inside a scope of `tenantId` (directly or nested). */
  insideScopeOf(tenantId: string): boolean
}
