// `@shardines/adapter-sqlite/engine`: the file-based storage for any SQLite-family
// engine, for adapters on another driver (`@shardines/adapter-libsql`'s local mode).
// Applications use `sqliteStorage` from the package's main entry instead.
export {
  betterSqlite3Driver,
  type DriverConnection,
  type DriverOpenOptions,
  type DriverRunResult,
  type DriverStatement,
  type SqliteDriver,
} from './driver/sqlite-driver.js'
export { createSqliteFamilyStorage, type SqliteFamily } from './sqlite-storage.js'
