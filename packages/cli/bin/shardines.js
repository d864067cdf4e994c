#!/usr/bin/env node
// The `shardines` executable. A committed shim rather than dist/main.js itself,
// so that `pnpm install` on a fresh clone (before the build) can link the bin.
await import('../dist/main.js')
