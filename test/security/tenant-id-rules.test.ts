// The tenant-id rules, from the attacker's side: hostile ids are refused with a
// message that is safe to print, and every valid id maps to exactly one file
// inside the tenants folder.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { describe, test } from 'node:test'
import { assertTenantId, InvalidTenantIdError, isValidTenantId, TenantNotFoundError } from '@shardines/core'
import fc from 'fast-check'
import { makeShard } from '../helpers/fixtures.js'
import { snapshotTree } from '../helpers/tree-snapshot.js'
import { hostileTenantIds, showId } from './hostile-tenant-ids.js'

const RULE = /^[a-z0-9][a-z0-9_-]{0,63}$/
const RESERVED = new Set(['apex', 'main', 'temp'])
/** What must never reach a terminal or a log line raw: C0/C1 controls, NUL, bidi overrides, invisible format characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u

describe('tenant id rules', () => {
  const hostile = hostileTenantIds('/nonexistent-root')

  test(`at least 100 hostile ids (${hostile.length}), each refused with a printable message that names the rule`, () => {
    assert.ok(hostile.length >= 100)
    for (const { label, id } of hostile) {
      const what = `${label}: ${showId(id)}`
      assert.equal(isValidTenantId(id), false, what)
      let error: unknown
      try {
        assertTenantId(id)
      } catch (e) {
        error = e
      }
      assert.ok(error instanceof InvalidTenantIdError, what)
      assert.equal(error.code, 'INVALID_TENANT_ID', what)
      assert.equal(error.name, 'InvalidTenantIdError', what)
      assert.match(error.message, /a-z, 0-9/, what)
      assert.ok(!UNSAFE.test(error.message), `${what}: message carries a raw control/bidi character`)
      assert.ok(!UNSAFE.test(error.reason), `${what}: reason carries a raw control/bidi character`)
      assert.ok(error.message.length < 500, `${what}: message is ${error.message.length} characters`)
    }
  })

  test('property: an id is accepted exactly when it matches the rule and is not reserved', () => {
    const alphabet = [...'abcz019_-A.Z/\\ \0\n\u202e\u0430\uff41']
    const candidate = fc.oneof(
      fc.string({ unit: fc.constantFrom(...alphabet), minLength: 0, maxLength: 70 }),
      fc.string({ unit: 'grapheme', maxLength: 10 }),
      fc.constantFrom('apex', 'main', 'temp', 'a'.repeat(64), 'a'.repeat(65)),
    )
    fc.assert(
      fc.property(candidate, (id) => {
        const expected = RULE.test(id) && !RESERVED.has(id)
        assert.equal(isValidTenantId(id), expected, showId(id))
        if (expected) assertTenantId(id)
        else assert.throws(() => assertTenantId(id), InvalidTenantIdError)
      }),
      { numRuns: 3000, seed: 2026 },
    )
  })

  test('valid ids at the edges of the rule each map to exactly one file inside the tenants folder', async () => {
    const { shard, dir } = await makeShard()
    const edges = [
      'a',
      '0',
      '9',
      'a'.repeat(64),
      '0'.repeat(64),
      'a_',
      'a-',
      'a__--__b',
      'apex1',
      'main_',
      'temp-',
      'con',
      'nul',
    ]
    for (const id of edges) {
      assert.ok(isValidTenantId(id), id)
      assertNotFound(await shard.withTenant(id, () => 1).catch((e: unknown) => e), id)
      await shard.tenants.create(id)
    }
    const files = snapshotTree(path.join(dir, 'tenants'))
    assert.deepEqual(files, edges.map((id) => `${id}.sqlite3`).sort())
    const listed: string[] = []
    for await (const id of shard.tenants.list()) listed.push(id)
    assert.deepEqual(listed, [...edges].sort())
    await shard.close()
  })
})

function assertNotFound(error: unknown, id: string): void {
  assert.ok(error instanceof TenantNotFoundError, `${id}: a valid, missing id must give TenantNotFoundError`)
}
