// Regenerates the golden schema files the type tests compile against, or with
// --verify (the root `codegen:verify` script, part of `verify`) exits 1 when
// they are stale. Usage: node --import tsx test/typings/codegen.ts [--verify]
import { fileURLToPath } from 'node:url'
import { generateSchemas, verifySchemas } from '@shardines/codegen'
import { apexMigrations, tenantMigrations } from './schema-migrations.js'

const options = {
  migrations: { apex: apexMigrations, tenant: tenantMigrations },
  outDir: fileURLToPath(new URL('./generated', import.meta.url)),
}

if (process.argv.includes('--verify')) {
  const stale = await verifySchemas(options)
  for (const file of stale) {
    console.error(`test/typings/generated/${file} is stale: run \`node --import tsx test/typings/codegen.ts\`.`)
  }
  if (stale.length === 0) console.log('test/typings/generated is up to date.')
  process.exitCode = stale.length === 0 ? 0 : 1
} else {
  const { files } = await generateSchemas(options)
  for (const file of files) console.log(`${file.changed ? 'wrote' : 'unchanged'} test/typings/generated/${file.name}`)
}
