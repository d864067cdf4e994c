import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidOptionsError, isValidTenantId } from '@shardines/core'

/**
 * Creates, removes and lists tenant databases where the client mode cannot do
 * it through SQL (a Turso organisation, a set of sqld namespaces). Tenant ids
 * given to it are validated already.
 *
 * For `file:` URL templates the adapter uses its own file provisioner; for
 * `libsql://` and `http(s)://` URLs you supply one, e.g. on Turso's platform
 * API (see the package README).
 */
export interface TenantProvisioner {
  /**
   * Creates an empty database for the tenant. Rejects (with anything; the
   * adapter reports `TenantExistsError` when {@link exists} then says yes)
   * if it exists.
   */
  create(tenantId: string): Promise<void>
  /** Removes the tenant's database; resolves to whether it existed. */
  destroy(tenantId: string): Promise<boolean>
  exists(tenantId: string): Promise<boolean>
  /** Every tenant id (any order: the adapter sorts them). */
  list(): AsyncIterable<string> | Iterable<string> | Promise<Iterable<string>>
}

/** A `file:` URL template resolved: the folder and the file name around `{tenant}`. */
export interface FileTemplate {
  readonly dir: string
  readonly prefix: string
  readonly suffix: string
}

export const TENANT_PLACEHOLDER = '{tenant}'

/** The file path of a `file:` URL (`file:/abs/x.db`, `file:///abs/x.db` or `file:relative/x.db`). */
export function filePathOf(url: string): string {
  const query = url.indexOf('?')
  const bare = query === -1 ? url : url.slice(0, query)
  if (bare.startsWith('file://')) return fileURLToPath(bare)
  return path.resolve(decodeURIComponent(bare.slice('file:'.length)))
}

/** Reads a `file:` template whose file name holds `{tenant}` (e.g. `file:./data/tenants/{tenant}.db`). */
export function fileTemplate(template: string): FileTemplate {
  const file = filePathOf(template.replace(TENANT_PLACEHOLDER, '__TENANT__'))
  const base = path.basename(file)
  const at = base.indexOf('__TENANT__')
  if (at === -1 || path.dirname(file).includes('__TENANT__')) {
    throw new InvalidOptionsError(
      `libsqlStorage({ url }): a file: URL template must have ${TENANT_PLACEHOLDER} in its file name, e.g. "file:./data/tenants/{tenant}.db" (got ${JSON.stringify(template)}).`,
    )
  }
  return { dir: path.dirname(file), prefix: base.slice(0, at), suffix: base.slice(at + '__TENANT__'.length) }
}

export function tenantFile(template: FileTemplate, tenantId: string): string {
  return path.join(template.dir, `${template.prefix}${tenantId}${template.suffix}`)
}

/** Tenant ids of the files in the template's folder (temporary and side files are not tenants). */
export function listFileTenants(template: FileTemplate): string[] {
  let names: string[]
  try {
    names = fs.readdirSync(template.dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const ids: string[] = []
  for (const name of names) {
    if (!name.startsWith(template.prefix) || !name.endsWith(template.suffix)) continue
    const id = name.slice(template.prefix.length, name.length - template.suffix.length)
    if (isValidTenantId(id)) ids.push(id)
  }
  return ids
}
