import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { AnyShardines, ShardinesConfig } from '@shardines/core'

/** The file names looked for in the working directory, in this order. */
export const CONFIG_FILES = [
  'shardines.config.ts',
  'shardines.config.mts',
  'shardines.config.js',
  'shardines.config.mjs',
] as const

/** A config that cannot be found or used: exit code 2, with what to do. */
export class CliConfigError extends Error {
  override readonly name = 'CliConfigError'
}

export interface LoadedConfig {
  readonly file: string
  readonly shard: AnyShardines
}

/**
 * Finds and imports the config module and returns the instance it exports
 * (`export default shard` or `export const shard`). TypeScript configs are
 * imported through tsx's programmatic API (`tsImport`), so `shardines` needs
 * no `--import` flag; tsx must then be installed (it is an optional peer
 * dependency of @shardines/cli).
 */
export async function loadConfig(cwd: string, explicit: string | undefined): Promise<LoadedConfig> {
  const file = explicit !== undefined ? path.resolve(cwd, explicit) : findConfig(cwd)
  if (!fs.existsSync(file)) throw new CliConfigError(`The config file ${file} does not exist.`)
  const url = pathToFileURL(file).href
  let mod: Record<string, unknown>
  try {
    mod = /\.[cm]?ts$/.test(file) ? await importTypeScript(url) : ((await import(url)) as Record<string, unknown>)
  } catch (error) {
    if (error instanceof CliConfigError) throw error
    throw new CliConfigError(`Could not load ${file}: ${(error as Error).message}`, { cause: error })
  }
  let shard = await (mod.default ?? mod.shard)
  if (!isShardines(shard) && typeof shard === 'object' && shard !== null && 'shard' in shard) {
    // defineConfig({ shard }): the instance, or a function that makes it.
    const made = (shard as ShardinesConfig).shard
    shard = typeof made === 'function' ? await made() : made
  }
  if (!isShardines(shard)) {
    throw new CliConfigError(
      `${file} must export the Shardines instance as its default export or as \`shard\` (export const shard = createShardines({ ... })), or export default defineConfig({ shard }).`,
    )
  }
  return { file, shard }
}

/**
 * The config in `cwd` or the nearest folder above it that has one (as
 * drizzle-kit and kysely-ctl look for theirs). Relative paths inside it (such
 * as `dir: './data'`) still resolve from the working directory, as in any
 * Node module: resolve them from the config's own folder when the CLI may run
 * elsewhere (`path.join(import.meta.dirname, 'data')`).
 */
function findConfig(cwd: string): string {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    for (const name of CONFIG_FILES) {
      const file = path.join(dir, name)
      if (fs.existsSync(file)) return file
    }
    if (path.dirname(dir) === dir) break
  }
  throw new CliConfigError(
    `No ${CONFIG_FILES.join(', ')} in ${cwd} or any folder above it. Create one that exports your instance (export default defineConfig({ shard: () => createShardines({ ... }) })) or pass --config PATH.`,
  )
}

async function importTypeScript(url: string): Promise<Record<string, unknown>> {
  let api: { tsImport: (specifier: string, parent: string) => Promise<unknown> }
  try {
    api = (await import('tsx/esm/api')) as typeof api
  } catch {
    throw new CliConfigError(
      'A TypeScript config needs tsx: install it (npm i -D tsx), or use shardines.config.mjs, or run `node --import tsx node_modules/.bin/shardines`.',
    )
  }
  return (await api.tsImport(url, import.meta.url)) as Record<string, unknown>
}

function isShardines(value: unknown): value is AnyShardines {
  const v = value as AnyShardines | undefined
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.migrate?.all === 'function' &&
    typeof v.tenants?.create === 'function' &&
    typeof v.close === 'function'
  )
}
