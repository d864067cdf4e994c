// The public surface of @shardines/core, chosen by hand (see STYLE.md §17).
export { createShardines, type Shardines } from './shardines.js'
export type { ShardinesOptions, MigrateOnOpen } from './shardines-options.js'
export {
  ShardinesError,
  type ShardinesErrorCode,
  NoTenantError,
  InvalidTenantIdError,
  TenantNotFoundError,
  TenantExistsError,
  RecordNotFoundError,
  ReadOnlyAttachmentError,
  TenantScopeClosedError,
  AttachLimitError,
  MigrationError,
  TenantSchemaOutdatedError,
  ShardinesClosedError,
  InvalidOptionsError,
  UnknownSchemaError,
  StorageError,
} from './errors.js'
export { assertTenantId, isValidTenantId, RESERVED_TENANT_IDS, MAX_TENANT_ID_LENGTH } from './tenant/tenant-id.js'
export type {
  TenantScope,
  TenantTransaction,
  TenantsScope,
  TenantScopeDB,
  TenantsScopeDB,
  Qualified,
} from './tenant/scope-types.js'
export type { TenantsApi } from './tenant/tenants-api.js'
export type { MapTenantsOptions, MapTenantsResult } from './tenant/map-tenants.js'
export type { MigrateApi, MigrateAllOptions, MigrationReport } from './migration/migrate-api.js'
export type { MigrationOutcome } from './migration/run-migrations.js'
export type { MigrationSource } from './migration/migration-source.js'
export type { ShardinesLogConfig, ShardinesLogEvent } from './connection/query-log.js'
export { APEX, type StorageAdapter, type StorageHandle, type TenantLease, type PoolStats } from './storage/storage-adapter.js'
