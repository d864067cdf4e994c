// The public surface of @shardines/core/testing: helpers for the test suites of apps built on
// Shardines. Built on core's public API only; depends on no test framework (node:test, vitest…).

export {
  type AccessedStatement,
  type CapturedTenantAccess,
  type ExpectOnlyTenantOptions,
  expectOnlyTenant,
  type RecordTenantAccessOptions,
  recordTenantAccess,
  type TenantAccess,
  type TenantAccessRecorder,
} from './tenant-access-recorder.js'
export { DEFAULT_TEST_PREFIX, MAX_TEST_PREFIX_LENGTH } from './test-tenant-ids.js'
export {
  createTestTenants,
  disposeTestTenants,
  sharedTestTenants,
  type TestTenantStrategy,
  type TestTenants,
  type TestTenantsOptions,
  withTestTenant,
} from './test-tenants.js'
