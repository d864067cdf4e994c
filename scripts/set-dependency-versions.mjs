#!/usr/bin/env node
// Sets the version range of dependencies across the workspace's package.json files (the
// dev and app dependencies; peer ranges stay): node scripts/set-dependency-versions.mjs kysely=~0.29.9 …
// Used by the Node 24 CI leg to install the newest Kysely and better-sqlite3.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'

const wanted = Object.fromEntries(process.argv.slice(2).map((arg) => arg.split('=')))
const files = readdirSync('.', { recursive: true })
  .map(String)
  .filter((f) => (f === 'package.json' || f.endsWith('/package.json')) && !f.includes('node_modules'))
for (const file of files) {
  const manifest = JSON.parse(readFileSync(file, 'utf8'))
  let changed = false
  for (const field of ['dependencies', 'devDependencies']) {
    for (const [name, range] of Object.entries(wanted)) {
      if (manifest[field]?.[name] !== undefined && manifest[field][name] !== range) {
        manifest[field][name] = range
        changed = true
      }
    }
  }
  if (changed) {
    writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`)
    console.log(
      `${file}: ${Object.entries(wanted)
        .map(([n, r]) => `${n} ${r}`)
        .join(', ')}`,
    )
  }
}
