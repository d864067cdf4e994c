/** The stamp Shardines keeps in `user_version` for a list of applied migrations (mirrors core's versionStamp). */
export function versionStamps(names: readonly string[]): number {
  if (names.length === 0) return 0
  let hash = 0x811c9dc5
  const text = names.join('\n')
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 1 || 1
}
