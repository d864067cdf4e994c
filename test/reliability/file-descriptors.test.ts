// With fewer file descriptors than maxOpen needs, requests still succeed: the
// SQLite adapter evicts and retries on EMFILE/SQLITE_CANTOPEN and warns once.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { test } from 'node:test'
import { runInLanes } from '../helpers/async-helpers.js'
import { spawnTsChild } from '../helpers/child-process.js'
import { makeShard } from '../helpers/fixtures.js'

const TENANTS = 300
const FILE_LIMIT = 256

for (const journalMode of ['delete', 'wal'] as const) {
  test(`ulimit -n ${FILE_LIMIT}, maxOpen 1000, ${TENANTS} tenants (${journalMode} journal): every request succeeds and maxOpen is lowered with one warning`, {
    timeout: 90_000,
    skip: fs.existsSync('/proc/self/limits') ? false : 'needs Linux /proc',
  }, async () => {
    // A rollback-journal handle holds one descriptor (two while writing); a WAL handle holds three.
    const { shard, dir } = await makeShard({ storageOptions: { synchronous: 'off', journalMode } })
    const ids = Array.from({ length: TENANTS }, (_, i) => `fd${String(i).padStart(4, '0')}`)
    await runInLanes(ids.length, 4, (i) => shard.tenants.create(ids[i]!))
    await shard.close()

    const child = spawnTsChild(
      new URL('./children/fd-limit-child.ts', import.meta.url),
      [dir, String(TENANTS), '1000', journalMode],
      {
        fileLimit: FILE_LIMIT,
      },
    )
    const { code } = await child.exited
    assert.equal(code, 0, `child failed:\n${child.stderr()}`)
    const result = JSON.parse(child.lines.at(-1)!)
    assert.equal(result.limit, FILE_LIMIT, 'the child did not run under the descriptor limit')
    assert.deepEqual(result.failures, [], `${result.failureCount} requests failed`)
    assert.equal(result.served, TENANTS * 2)
    assert.equal(result.warnings.length, 1, `expected exactly one warning, got ${JSON.stringify(result.warnings)}`)
    assert.match(result.warnings[0], /maxOpen/)
    assert.ok(result.maxOpenSeen < FILE_LIMIT, `${result.maxOpenSeen} handles open under a limit of ${FILE_LIMIT}`)
    assert.ok(result.stats.evictions > 0)
  })
}
