// The public surface of @shardines/cli. The `shardines` executable is bin/shardines.js (src/main.ts);
// these run its commands from code and type `shardines.config.ts`.

// shardines.config.ts: defined in @shardines/core (its public API), re-exported for configs that import the CLI.
export { defineConfig, type ShardinesConfig } from '@shardines/core'
export type { CliStreams } from './cli-output.js'
export { CliConfigError, CONFIG_FILES, type LoadedConfig, loadConfig } from './load-config.js'
export { type CliEnvironment, EXIT, runCli } from './run-cli.js'
