// The public surface of @shardines/core, chosen by hand (see STYLE.md §17).

// shardines.config.ts
export { type AnyShardines, defineConfig, type ShardinesConfig } from './config/define-config.js'
export type { ShardinesLogConfig, ShardinesLogEvent } from './connection/query-log.js'
export {
  AttachLimitError,
  CrossDatabaseQueryError,
  InvalidJobContextError,
  InvalidOptionsError,
  InvalidTenantIdError,
  MigrationError,
  NoTenantError,
  PoolExhaustedError,
  ReadOnlyAttachmentError,
  RecordNotFoundError,
  ShardinesClosedError,
  ShardinesError,
  type ShardinesErrorCode,
  type StatementRefusal,
  StatementRefusedError,
  StorageError,
  type StorageErrorOptions,
  type StorageFailure,
  TenantArchivedError,
  TenantBusyError,
  TenantExistsError,
  TenantNotFoundError,
  TenantSchemaOutdatedError,
  TenantScopeClosedError,
  TransactionLeftOpenError,
  UnknownSchemaError,
} from './errors.js'
export type {
  AttachEvent,
  BusyTimeoutEvent,
  BusyWaitEvent,
  EventOutcome,
  GuardRefusalEvent,
  LifecycleEvent,
  LifecycleOperation,
  MigrationEvent,
  MigrationTrigger,
  PoolMissEvent,
  ScopeEndEvent,
  ScopeStartEvent,
  ShardinesEvent,
  ShardinesEventError,
  ShardinesEventListener,
  ShardinesEventOf,
  ShardinesEventType,
  StatementEvent,
  StatementOperation,
} from './events/shardines-event.js'
export { EVENT_TYPES } from './events/shardines-event.js'
// For storage adapters: the statement guard's rules (adapters supply the compiled program, core judges it).
export { type AttachedNames, positionalParameterCount } from './guard/sql-tokens.js'
export { type GuardPolicy, refuseStatement } from './guard/statement-guard.js'
export {
  Does,
  judgeStatement,
  type ProgramReader,
  type ProgramStep,
  type SchemaObject,
  type StatementVerdict,
} from './guard/statement-verdict.js'
export type {
  HonoContextLike,
  HonoTenantMiddleware,
  HonoTenantResolver,
  NodeResponseLike,
  NodeTenantMiddleware,
  TenantErrorBody,
  TenantMiddlewareOptions,
} from './http/middleware.js'
export type { FetchRequestLike, NodeRequestLike, TenantRequest } from './http/tenant-request.js'
export { firstOf, fromHeader, fromPathPrefix, fromSubdomain, type TenantResolver } from './http/tenant-resolvers.js'
// For storage adapters' worker runners: what a worker posts back (core rebuilds the MigrationError).
export { serializeError, serializeOutcome } from './migration/migrate-all.js'
export type { MigrateAllOptions, MigrateApi, MigrationStatusOptions } from './migration/migrate-api.js'
export type {
  MigrationReport,
  MigrationRunnerInfo,
  RolloutStep,
  StatusReport,
  TenantStatus,
} from './migration/migration-reports.js'
// For storage adapters' worker runners: load a migration source and apply it to a handle.
export {
  loadMigrations,
  type Migration,
  type MigrationProvider,
  type MigrationSet,
  type MigrationSource,
  type NamedMigration,
} from './migration/migration-source.js'
export { type MigrationOutcome, runMigrations } from './migration/run-migrations.js'
export type { Params, PreparedArgs, PreparedQuery } from './prepared/prepared-query.js'
export {
  apex,
  type DefinedModels,
  defineModels,
  type ModelDeclaration,
  type ModelDeclarations,
  type ModelKind,
  type ModelOptions,
  type RelationKind,
  type RelationMap,
  type RelationTarget,
  tenanted,
} from './registry/model-declaration.js'
export type {
  IncludePath,
  InsertOf,
  KeyOf,
  Model,
  ModelQuery,
  ModelSchema,
  ModelsOf,
  RowOf,
  UntypedModels,
  UpdateOf,
  WhereOperator,
  WhereValues,
  WithIncludes,
} from './registry/model-types.js'
export { type CloseOptions, createShardines, type Shardines } from './shardines.js'
export type { MigrateOnOpen, ShardinesOptions } from './shardines-options.js'
// For adapters' test code: what the storage behaviour suite (test/conformance) asks of an adapter.
export type {
  StorageBehaviourTarget,
  StorageTargetOptions,
  StorageTestSupport,
  StoredFile,
} from './storage/behaviour-support.js'
export { CAPABILITIES } from './storage/capabilities.js'
export { kyselyOnHandle } from './storage/handle-kysely.js'
// For SQLite-family adapters: the engine's error codes core acts on.
export { isBusyError } from './storage/sqlite-engine.js'
export {
  APEX,
  type PoolEvictEvent,
  type PoolOpenEvent,
  type PoolRetryEvent,
  type PoolStats,
  type ScratchHandle,
  type SerializedError,
  type SerializedMigrationOutcome,
  type StorageAdapter,
  type StorageCapabilities,
  type StorageHandle,
  type StorageLocation,
  type StoragePoolEvent,
  type SyncReader,
  type TenantLease,
  type WorkerMigrationJob,
  type WorkerMigrationSource,
} from './storage/storage-adapter.js'
export type { ScopeBudgets } from './tenant/budgets.js'
export type { JobContext } from './tenant/job-context.js'
export type {
  ArchivedTenant,
  DoctorFinding,
  DoctorOptions,
  DoctorReport,
  LayoutMigrationOptions,
  LayoutMigrationReport,
} from './tenant/lifecycle-types.js'
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
export type { BackupOptions, RekeyOptions, TenantsApi } from './tenant/tenants-api.js'
