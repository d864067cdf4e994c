// `pnpm seed`: migrates the data folder and adds the demo tenants that are missing.
import { seed } from './seed.js'
import { createNotesShard } from './shard.js'

const shard = createNotesShard({ dir: process.env.NOTES_DATA_DIR })
await seed(shard, (line) => console.log(line))
await shard.close()
