// What the `shardines` CLI loads (migrate, status, codegen, …), from this folder or any below it.
import { defineConfig } from '@shardines/core'
import { shard } from './src/shard.js'

export default defineConfig({ shard })
