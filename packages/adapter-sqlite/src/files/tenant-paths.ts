import * as path from 'node:path'
import { isValidTenantId } from '@shardines/core'

export const TENANT_SUFFIX = '.sqlite3'

/** The file layout: `<dir>/apex.sqlite3` and `<dir>/tenants/<id>.sqlite3`. */
export class TenantPaths {
  readonly dir: string
  readonly tenantsDir: string
  readonly apex: string

  constructor(dir: string) {
    this.dir = path.resolve(dir)
    this.tenantsDir = path.join(this.dir, 'tenants')
    this.apex = path.join(this.dir, `apex${TENANT_SUFFIX}`)
  }

  /** The file of a tenant. `id` must already be validated (core does so before any adapter call). */
  tenant(id: string): string {
    return path.join(this.tenantsDir, `${id}${TENANT_SUFFIX}`)
  }

  /** A private temporary file beside the tenants, invisible to `list()` (leading dot). */
  temporary(purpose: string, id: string): string {
    const nonce = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
    return path.join(this.tenantsDir, `.${purpose}-${id}-${nonce}${TENANT_SUFFIX}`)
  }

  /** The id for a file name in the tenants folder, or undefined for anything else (including names no API would accept). */
  idOf(fileName: string): string | undefined {
    if (fileName.startsWith('.') || !fileName.endsWith(TENANT_SUFFIX)) return undefined
    const id = fileName.slice(0, -TENANT_SUFFIX.length)
    return isValidTenantId(id) ? id : undefined
  }
}

/** A database file and the side files SQLite may keep next to it. */
export function withSideFiles(file: string): string[] {
  return [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]
}
