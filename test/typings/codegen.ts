// Regenerates the golden schema files the type tests compile against, or with
// --verify (the root `codegen:verify` script, part of `verify`) exits 1 when
// they are stale. Usage: node --import tsx test/typings/codegen.ts [--verify]
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import { type CodegenOptions, generateSchemas, verifySchemas } from '@shardines/codegen'
import { apexMigrations, tenantMigrations } from './schema-migrations.js'

const migrations = { apex: apexMigrations, tenant: tenantMigrations }
// Codegen migrates in-memory scratch databases of this storage (its folder is never created).
const storage = sqliteStorage({ dir: path.join(os.tmpdir(), 'shardines-typings-codegen') })
const sets: Record<string, CodegenOptions> = {
  // The defaults.
  generated: { migrations, storage, outDir: fileURLToPath(new URL('./generated', import.meta.url)) },
  // camelCase, parsed JSON and an override (test/codegen/types-match-runtime.test.ts runs it with the plugins).
  'generated-options': {
    migrations,
    storage,
    outDir: fileURLToPath(new URL('./generated-options', import.meta.url)),
    camelCase: true,
    json: 'parsed',
    overrides: { tenant: { 'documents.status': "ColumnType<'open' | 'closed', 'open' | 'closed' | undefined>" } },
  },
}

let stale = 0
for (const [folder, options] of Object.entries(sets)) {
  if (process.argv.includes('--verify')) {
    for (const file of await verifySchemas(options)) {
      stale++
      console.error(`test/typings/${folder}/${file} is stale: run \`node --import tsx test/typings/codegen.ts\`.`)
    }
  } else {
    const { files } = await generateSchemas(options)
    for (const file of files) console.log(`${file.changed ? 'wrote' : 'unchanged'} test/typings/${folder}/${file.name}`)
  }
}
await storage.close()
if (process.argv.includes('--verify') && stale === 0) console.log('test/typings/generated* are up to date.')
process.exitCode = stale === 0 ? 0 : 1
