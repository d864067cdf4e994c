// Kysely's own migration module: at the root of `kysely` in 0.28, in `kysely/migration` in
// 0.29 (whose root keeps only type errors pointing there). The tests and benchmarks that run
// Kysely's `Migrator` against Shardines load it from wherever the installed Kysely has it.

import type { Migration, MigrationProvider } from '@shardines/core'
import type { Kysely } from 'kysely'
import * as kysely from 'kysely'

export interface MigrationResult {
  readonly migrationName: string
  readonly direction: 'Up' | 'Down'
  readonly status: 'Success' | 'Error' | 'NotExecuted'
}

export interface MigrationResultSet {
  readonly error?: unknown
  readonly results?: MigrationResult[]
}

export interface MigratorProps {
  readonly db: Kysely<any>
  readonly provider: MigrationProvider
  readonly migrationTableName?: string
  readonly migrationLockTableName?: string
  readonly disableTransactions?: boolean
}

export interface MigrationInfo {
  readonly name: string
  readonly migration: Migration
  readonly executedAt: Date | undefined
}

export interface MigratorLike {
  getMigrations(): Promise<readonly MigrationInfo[]>
  migrateToLatest(): Promise<MigrationResultSet>
  migrateTo(target: string | typeof NO_MIGRATIONS): Promise<MigrationResultSet>
  migrateUp(): Promise<MigrationResultSet>
  migrateDown(): Promise<MigrationResultSet>
}

interface MigrationModule {
  readonly Migrator: new (props: MigratorProps) => MigratorLike
  readonly NO_MIGRATIONS: unknown
  readonly FileMigrationProvider: new (props: {
    fs: unknown
    path: unknown
    migrationFolder: string
  }) => MigrationProvider
}

const root = kysely as unknown as Partial<MigrationModule>
// A string held in a variable: TypeScript does not look for `kysely/migration` under 0.28's types.
const subpath = 'kysely/migration'
const module: MigrationModule =
  typeof root.Migrator === 'function' ? (root as MigrationModule) : ((await import(subpath)) as MigrationModule)

export const Migrator = module.Migrator
export const NO_MIGRATIONS = module.NO_MIGRATIONS as { readonly __noMigrations__: true }
export const FileMigrationProvider = module.FileMigrationProvider
export type { Migration }
