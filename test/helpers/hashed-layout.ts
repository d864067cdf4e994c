/**
 * The hashed layout's folder scheme, written out independently of the adapter
 * (tests pin it against where `tenants.create` really puts files): FNV-1a,
 * 32 bits, over the id's UTF-16 code units; the folders are the hash's top
 * byte and second byte in two lowercase hex digits.
 */
import * as path from 'node:path'

export function fnv1a32(id: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, '0')

/** `<h1>/<h2>`: the two folders under `tenants/` of a tenant in the hashed layout. */
export function hashedFolder(id: string): string {
  const hash = fnv1a32(id)
  return `${hex2(hash >>> 24)}/${hex2((hash >>> 16) & 0xff)}`
}

/** Where the hashed layout keeps tenant `id`'s file, relative to the data folder. */
export function hashedRelativePath(id: string): string {
  return path.join('tenants', hashedFolder(id), `${id}.sqlite3`)
}

/** Where the flat layout keeps tenant `id`'s file, relative to the data folder. */
export function flatRelativePath(id: string): string {
  return path.join('tenants', `${id}.sqlite3`)
}
