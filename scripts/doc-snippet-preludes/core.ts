// Prelude `core`: the imports an earlier block of the same page made.
export { sqliteStorage } from '@shardines/adapter-sqlite'
export { apex, createShardines, defineModels, tenanted } from '@shardines/core'
