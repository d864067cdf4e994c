export { sqliteStorage } from './sqlite-storage.js'
export type { JournalMode, SqliteStorageOptions, TenantLayout } from './sqlite-storage-config.js'
export { NATIVE_BUSY_WAIT_MS } from './sqlite-storage-config.js'
