export { sqliteStorage } from './sqlite-storage.js'
export type { JournalMode, SqliteStorageOptions } from './sqlite-storage-config.js'
