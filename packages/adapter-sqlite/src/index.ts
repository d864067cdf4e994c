export { sqliteStorage } from './sqlite-storage.js'
export type { SqliteStorageOptions, JournalMode } from './sqlite-storage-config.js'
