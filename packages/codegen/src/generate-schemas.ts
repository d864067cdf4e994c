import * as fs from 'node:fs'
import * as path from 'node:path'
import {
  APEX,
  InvalidOptionsError,
  kyselyOnHandle,
  loadMigrations,
  type Migration,
  type MigrationSet,
  type NamedMigration,
  runMigrations,
  type ScratchHandle,
  type StorageAdapter,
  type StorageHandle,
} from '@shardines/core'
import {
  type DatabaseMetadata,
  type GenerateOptions,
  generate,
  toKyselyCamelCase,
  toKyselyPascalCase,
} from 'kysely-codegen'
import { type CodegenOptions, type ResolvedCodegenOptions, resolveOptions } from './codegen-options.js'
import { ShardinesSerializer } from './shardines-serializer.js'
import { normaliseMetadata, ShardinesSqliteDialect } from './sqlite-column-types.js'

/** The two files codegen writes, in this order. */
export type SchemaFileName = 'apex.ts' | 'tenant.ts'

/** One generated file. */
export interface GeneratedSchemaFile {
  /** `'apex.ts'` or `'tenant.ts'`. */
  readonly name: SchemaFileName
  /** Absolute path of the file in `outDir`. */
  readonly path: string
  /** The whole file. */
  readonly content: string
  /** Tables (and views) it declares. */
  readonly tables: readonly string[]
}

/** What {@link generateSchemas} did. */
export interface GenerateSchemasResult {
  readonly files: readonly (GeneratedSchemaFile & {
    /** Whether the file on disk changed (false: it already had exactly this content). */
    readonly changed: boolean
  })[]
}

/** The name the tenant template goes by in migration errors (`tenant "template"`). */
const TEMPLATE_ID = 'template'

/**
 * Generates `apex.ts` (exporting `ApexDB`) and `tenant.ts` (exporting
 * `TenantDB`) plus one interface per table: it migrates a scratch apex
 * database and a scratch tenant template with your migrations, on two
 * private handles of your storage adapter (`storage.openScratch()`),
 * introspects each with kysely-codegen and writes the result.
 * Same migrations → byte-identical files (no timestamps, fixed ordering).
 *
 * @example
 * ```ts
 * import { generateSchemas } from '@shardines/codegen'
 * import { shard } from './shardines.config.js'
 *
 * await generateSchemas({ shard, outDir: 'db' })
 * // db/apex.ts:   export interface ApexDB { accounts: Accounts; plans: Plans }
 * // db/tenant.ts: export interface TenantDB { comments: Comments; documents: Documents }
 * ```
 */
export async function generateSchemas(options: CodegenOptions): Promise<GenerateSchemasResult> {
  const files = await renderSchemas(options)
  const outDir = path.resolve(options.outDir)
  await fs.promises.mkdir(outDir, { recursive: true })
  const written = []
  for (const file of files) {
    const current = await readIfExists(file.path)
    const changed = current !== file.content
    if (changed) await fs.promises.writeFile(file.path, file.content)
    written.push({ ...file, changed })
  }
  return { files: written }
}

/**
 * Renders the two files in memory without writing anything (what
 * {@link generateSchemas} writes and {@link verifySchemas} compares).
 */
export async function renderSchemas(options: CodegenOptions): Promise<readonly GeneratedSchemaFile[]> {
  const resolved = resolveOptions(options)
  const sources = options.shard
    ? toRecords(await options.shard.migrate.list())
    : { apex: options.migrations?.apex ?? {}, tenant: options.migrations?.tenant ?? {} }
  const sets = {
    apex: await loadMigrations(sources.apex, 'apex'),
    tenant: await loadMigrations(sources.tenant, 'tenant'),
  }
  const outDir = path.resolve(resolved.outDir)
  return withScratchDatabases(resolved.storage, sets, async ({ apex, tenant }) => [
    await renderFile(apex, 'apex', path.join(outDir, 'apex.ts'), resolved),
    await renderFile(tenant, 'tenant', path.join(outDir, 'tenant.ts'), resolved),
  ])
}

type Side = 'apex' | 'tenant'

async function renderFile(
  handle: StorageHandle,
  side: Side,
  target: string,
  options: ResolvedCodegenOptions,
): Promise<GeneratedSchemaFile> {
  const typeName = side === 'apex' ? options.apexTypeName : options.tenantTypeName
  const overrides = options.overrides[side]
  const tables: string[] = []
  // Kysely's SQLite introspector, run on the scratch handle through the storage contract.
  const db = kyselyOnHandle(handle)
  // kysely-codegen is CommonJS, so TypeScript sees it using Kysely's CJS declarations: the same class at runtime.
  const codegenDb = db as unknown as GenerateOptions['db']
  try {
    const content = await generate({
      db: codegenDb,
      dialect: new ShardinesSqliteDialect(options.dates, options.json),
      outFile: null,
      camelCase: options.camelCase,
      includePattern: options.include[side],
      excludePattern: options.exclude[side],
      overrides: { columns: { ...overrides } },
      serializer: new ShardinesSerializer(typeName, header(side, typeName)),
      postprocess: async ({ metadata }) => {
        const normalised = normaliseMetadata(metadata)
        checkOverrides(normalised, overrides, side)
        checkTypeName(normalised, typeName, options.camelCase, side)
        tables.push(...normalised.tables.map((table) => table.name).sort())
        return normalised
      },
    })
    return Object.freeze({ name: `${side}.ts` as const, path: target, content, tables: Object.freeze(tables) })
  } finally {
    await db.destroy()
  }
}

function header(side: Side, typeName: string): string {
  const which = side === 'apex' ? 'the apex database' : 'every tenant database (the tenant template)'
  return [
    '/**',
    ` * ${typeName}: the tables of ${which},`,
    ` * generated by @shardines/codegen (kysely-codegen) from the ${side} migrations.`,
    ' * Do not edit: run `shardines codegen` after changing a migration;',
    ' * `shardines codegen --verify` fails when this file is stale.',
    ' */',
    '',
  ].join('\n')
}

/** An override naming no column is a typo that would silently do nothing: refuse it. */
function checkOverrides(metadata: DatabaseMetadata, overrides: Readonly<Record<string, string>>, side: Side): void {
  const columns = new Set(metadata.tables.flatMap((t) => t.columns.map((c) => `${t.name}.${c.name}`)))
  for (const key of Object.keys(overrides)) {
    if (!columns.has(key)) {
      throw new InvalidOptionsError(
        `overrides.${side}[${JSON.stringify(key)}] names no column of the ${side} schema; use '<table>.<column>' with the names in the database (before camelCase).`,
      )
    }
  }
}

/** A table whose interface would be called like the database interface would make the file invalid. */
function checkTypeName(metadata: DatabaseMetadata, typeName: string, camelCase: boolean, side: Side): void {
  const clash = metadata.tables.find((table) => pascal(table.name, camelCase) === typeName)
  if (clash) {
    throw new InvalidOptionsError(
      `The ${side} table "${clash.name}" would be generated as interface ${typeName}, the name of the database interface; pass options.${side}TypeName to choose another.`,
    )
  }
}

/** kysely-codegen's table interface naming (see its `SymbolCollection.set`). */
function pascal(name: string, camelCase: boolean): string {
  const id = camelCase ? toKyselyCamelCase(name) : name
  return toKyselyPascalCase(id.replaceAll(/[^\w$\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF]/g, '_'))
}

function toRecords(list: { readonly apex: readonly NamedMigration[]; readonly tenant: readonly NamedMigration[] }): {
  apex: Record<string, Migration>
  tenant: Record<string, Migration>
} {
  const record = (set: readonly NamedMigration[]) => Object.fromEntries(set.map((m) => [m.name, m.migration]))
  return { apex: record(list.apex), tenant: record(list.tenant) }
}

/**
 * Opens two private scratch handles on `storage` (`openScratch()`), applies
 * the apex migrations to one and the tenant migrations to the other with
 * core's migration runner (the code path an app's databases go through, so
 * the migrations run exactly as in production), hands both to `fn`, and
 * closes them. A failing migration rejects with its `MigrationError`.
 */
async function withScratchDatabases<T>(
  storage: StorageAdapter,
  sets: { readonly apex: MigrationSet; readonly tenant: MigrationSet },
  fn: (handles: { apex: StorageHandle; tenant: StorageHandle }) => Promise<T>,
): Promise<T> {
  const opened: ScratchHandle[] = []
  try {
    const apex = await storage.openScratch()
    opened.push(apex)
    const tenant = await storage.openScratch()
    opened.push(tenant)
    await migrate(apex, APEX, sets.apex)
    await migrate(tenant, TEMPLATE_ID, sets.tenant)
    return await fn({ apex, tenant })
  } finally {
    for (const handle of opened.reverse()) await handle.close()
  }
}

async function migrate(handle: StorageHandle, label: string, set: MigrationSet): Promise<void> {
  const outcome = await runMigrations(handle, label, set, null)
  if (outcome.error) throw outcome.error
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}
