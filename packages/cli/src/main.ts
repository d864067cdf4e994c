#!/usr/bin/env node
// The `shardines` executable (package.json "bin"). Everything else lives in run-cli.ts.
import { runCli } from './run-cli.js'

const controller = new AbortController()
process.once('SIGINT', () => {
  process.stderr.write('\nshardines: interrupted; finishing the tenants in progress (Ctrl-C again to quit at once)\n')
  controller.abort()
  process.once('SIGINT', () => process.exit(130))
})

process.exitCode = await runCli(process.argv.slice(2), {
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  signal: controller.signal,
})
