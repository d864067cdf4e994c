// The instance the `shardines` CLI (and codegen) loads: `shardines status`, `shardines migrate --all`, …
import { createNotesShard } from './src/shard.js'

export const shard = createNotesShard({ dir: process.env.NOTES_DATA_DIR })
export default shard
