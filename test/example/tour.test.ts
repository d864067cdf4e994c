// The README's tour is examples/tour: the README shows its two source files as they are, and
// the tour runs to the end (CI typechecks it with the workspace's typecheck).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/temp-dir.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const readme = fs.readFileSync(`${root}README.md`, 'utf8')

for (const file of ['examples/tour/src/shard.ts', 'examples/tour/src/tour.ts']) {
  test(`the README shows ${file} as it is`, () => {
    const source = fs.readFileSync(`${root}${file}`, 'utf8').trimEnd()
    const block = `\`\`\`ts\n// ${file}\n${source}\n\`\`\``
    assert.ok(readme.includes(block), `README.md's block for ${file} differs from the file: copy the file into it`)
  })
}

test('the tour runs to the end on a fresh data folder, and again on the same one', () => {
  const dir = tempDir('shardines-tour-')
  for (let run = 0; run < 2; run++) {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/tour.ts'], {
      cwd: `${root}examples/tour`,
      env: { ...process.env, TOUR_DATA_DIR: dir, NODE_NO_WARNINGS: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    })
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /joined with apex: \[\s*\{ title: 'Q3 plan', email: 'ada@acme\.test' \}/)
    assert.match(result.stdout, /current tenant: acme/)
    assert.match(result.stdout, /outside a scope: undefined/)
    assert.match(result.stdout, /over HTTP: \{"tenant":"acme","documents":\d+\}/)
  }
  assert.ok(fs.existsSync(`${dir}/tenants/globex.sqlite3`))
})
