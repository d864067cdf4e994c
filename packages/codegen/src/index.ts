// The public surface of @shardines/codegen, chosen by hand (see STYLE.md §17).

export { type CodegenCommandOptions, DEFAULT_OUT_DIR, runCodegenCommand } from './codegen-command.js'
export type { CodegenOptions, CodegenShard, PerDatabase } from './codegen-options.js'
export {
  type GeneratedSchemaFile,
  type GenerateSchemasResult,
  generateSchemas,
  renderSchemas,
  type SchemaFileName,
} from './generate-schemas.js'
export type { DateHandling, JsonHandling } from './sqlite-column-types.js'
export { verifySchemas } from './verify.js'
