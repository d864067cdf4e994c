// The app's shardines.config.ts (docs/cli.md): it re-exports the instance the application uses.
export { shard } from './src/db/shard.js'
