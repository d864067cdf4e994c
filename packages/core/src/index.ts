// The public surface of @shardines/core, chosen by hand (see STYLE.md §17).

export type { Params, PreparedQuery, PreparedArgs } from './prepared/prepared-query.js'
export type { ShardinesLogConfig, ShardinesLogEvent } from './connection/query-log.js'
export {
  AttachLimitError,
  InvalidOptionsError,
  InvalidTenantIdError,
  MigrationError,
  NoTenantError,
  ReadOnlyAttachmentError,
  RecordNotFoundError,
  ShardinesClosedError,
  ShardinesError,
  type ShardinesErrorCode,
  StorageError,
  TenantExistsError,
  TenantNotFoundError,
  TenantSchemaOutdatedError,
  TenantScopeClosedError,
  UnknownSchemaError,
} from './errors.js'
export type { MigrateAllOptions, MigrateApi, MigrationReport } from './migration/migrate-api.js'
export type { MigrationSource, NamedMigration } from './migration/migration-source.js'
export type { MigrationOutcome } from './migration/run-migrations.js'
export { createShardines, type Shardines } from './shardines.js'
export type { MigrateOnOpen, ShardinesOptions } from './shardines-options.js'
export {
  APEX,
  type PoolStats,
  type StorageAdapter,
  type StorageHandle,
  type TenantLease,
} from './storage/storage-adapter.js'
export type { MapTenantsOptions, MapTenantsResult } from './tenant/map-tenants.js'
export type {
  Qualified,
  TenantScope,
  TenantScopeDB,
  TenantsScope,
  TenantsScopeDB,
  TenantTransaction,
} from './tenant/scope-types.js'
export { assertTenantId, isValidTenantId, MAX_TENANT_ID_LENGTH, RESERVED_TENANT_IDS } from './tenant/tenant-id.js'
export type { TenantsApi } from './tenant/tenants-api.js'
