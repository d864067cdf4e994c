import { CrossDatabaseQueryError, InvalidOptionsError } from '../errors.js'
import type { StorageAdapter, StorageCapabilities } from './storage-adapter.js'

/** The methods each capability promises (what `createShardines` checks). */
const METHODS: { readonly [K in keyof StorageCapabilities]: readonly string[] } = {
  attach: [],
  syncReads: [],
  workerMigrations: ['migrateInWorkers'],
  backupToPath: ['backup'],
  exportStream: ['export'],
  rename: ['rename'],
  archive: ['archive', 'restore', 'listArchived', 'isArchived'],
  doctor: ['doctor'],
  layoutMigration: ['migrateLayout'],
  rekey: ['rekey'],
}

/** Every capability's name, in declaration order. */
export const CAPABILITIES = Object.keys(METHODS) as readonly (keyof StorageCapabilities)[]

/**
 * Checks the adapter's declared capabilities against what it implements: each
 * declared one must have its methods, and a declared `attach` a positive
 * `maxAttached`. Throws `InvalidOptionsError` naming the adapter and the gap.
 */
export function checkCapabilities(storage: StorageAdapter): void {
  const declared = storage.capabilities as StorageCapabilities | undefined
  if (declared === null || typeof declared !== 'object') {
    throw new InvalidOptionsError(
      `The ${storage.kind} storage adapter declares no capabilities (storage.capabilities); it was written for an older @shardines/core.`,
    )
  }
  const methods = storage as unknown as Record<string, unknown>
  for (const name of CAPABILITIES) {
    if (typeof declared[name] !== 'boolean') {
      throw new InvalidOptionsError(
        `The ${storage.kind} storage adapter must declare capabilities.${name} (true or false).`,
      )
    }
    if (!declared[name]) continue
    for (const method of METHODS[name]) {
      if (typeof methods[method] !== 'function') {
        throw new InvalidOptionsError(
          `The ${storage.kind} storage adapter declares capabilities.${name} but has no ${method}() method.`,
        )
      }
    }
  }
  if (declared.attach && !(storage.maxAttached > 0)) {
    throw new InvalidOptionsError(
      `The ${storage.kind} storage adapter declares capabilities.attach with maxAttached 0.`,
    )
  }
}

/** Throws `CrossDatabaseQueryError` when the adapter cannot attach (`what` names the refused call). */
export function requireAttach(storage: StorageAdapter, what: string, tenantId?: string): void {
  if (!storage.capabilities.attach) throw new CrossDatabaseQueryError(storage.kind, what, tenantId)
}
