// A seeded, randomized storm of concurrent scopes over a few tenants: callback
// transactions that commit or throw (with nested savepoints), controlled
// transactions with savepoints, plain writes from other branches of a scope
// that runs a transaction, streams read whole or abandoned, connection()
// read-modify-writes on a counter, and scopes that leave a transaction open.
// Every write is recorded as acknowledged (its promise resolved) or not; at the
// end each tenant file is read through a separate read-only connection:
// acknowledged writes are there exactly once, unacknowledged ones are not,
// counters equal the acknowledged increments, and no read from outside a
// transaction ever saw part of one or a transaction that rolled back.
import assert from 'node:assert/strict'
import * as path from 'node:path'
import { test } from 'node:test'
import { sqliteStorage } from '@shardines/adapter-sqlite'
import type { Migration } from '@shardines/core'
import {
  createShardines,
  defineModels,
  type Params,
  ShardinesError,
  TenantScopeClosedError,
  TransactionLeftOpenError,
  tenanted,
} from '@shardines/core'
import Database from 'better-sqlite3'
import type { Generated, Kysely } from 'kysely'
import { latch, randomPause, runInLanes, seededRandom, sleep } from '../helpers/async-helpers.js'
import { tempDir } from '../helpers/temp-dir.js'

interface DB {
  /** One row per write; `unit` groups the rows that must be there all together or not at all. */
  writes: { id: Generated<number>; tag: string; unit: number }
  counters: { name: string; value: number }
}

const migrations: Record<string, Migration> = {
  '001_writes': {
    async up(db) {
      // No unique constraint on tag: a write applied twice must show up as a duplicate, not an error.
      await db.schema
        .createTable('writes')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('tag', 'text', (c) => c.notNull())
        .addColumn('unit', 'integer', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'integer', (c) => c.notNull())
        .execute()
      await db.insertInto('counters').values({ name: 'hits', value: 0 }).execute()
    },
  },
}

const models = defineModels<{}, DB>()({ Write: tenanted('writes') })

const SEED = Number(process.env.SHARDINES_SEED ?? 0x14c0c)
const TENANTS = ['t-alpha', 't-beta', 't-gamma', 't-delta']
const OPERATIONS = 480
const IN_FLIGHT = 72
/** No operation may take longer than this: a scope waiting forever is a failure, not a hung test. */
const OPERATION_DEADLINE_MS = 20_000

/** A group of rows that commit or roll back together (one transaction, or one plain insert). */
interface Unit {
  readonly tenant: string
  readonly id: number
  readonly tags: string[]
  status: 'pending' | 'acked' | 'failed'
  readonly what: string
}

/** Thrown on purpose to roll a transaction back. */
class Planned extends Error {}

/**
 * The rollback journal with a pool large enough for every tenant, and WAL with a pool of two
 * handles for four tenants: handles are evicted and reopened all the time, never while a
 * scope or transaction holds them.
 */
const VARIANTS = [
  { journalMode: 'delete', maxOpen: 256 },
  { journalMode: 'wal', maxOpen: 2 },
] as const

for (const { journalMode, maxOpen } of VARIANTS) {
  test(`randomized concurrent transactions, savepoints, branches, streams and connection() over ${TENANTS.length} tenants (${journalMode} journal, maxOpen ${maxOpen}, seed ${SEED}): acknowledged writes are there exactly once, rolled-back ones never`, {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir('shardines-txstorm-')
    const shard = createShardines({
      storage: sqliteStorage({ dir, journalMode, maxOpen, synchronous: 'off', onWarning: () => {} }),
      migrations: { tenant: migrations },
      models,
    })
    for (const id of TENANTS) await shard.tenants.create(id)

    const units: Unit[] = []
    const unexpected: string[] = []
    const increments = new Map<string, number>(TENANTS.map((id) => [id, 0]))
    /** Complete reads made outside any transaction: unit id -> rows of it seen. */
    const snapshots: { tenant: string; what: string; counts: Map<number, number> }[] = []
    const counts = { ops: {} as Record<string, number>, acked: 0, failed: 0, leftOpen: 0 }

    const newUnit = (tenant: string, what: string): Unit => {
      const unit: Unit = { tenant, id: units.length + 1, tags: [], status: 'pending', what }
      units.push(unit)
      return unit
    }
    const settle = (unit: Unit, ok: boolean) => {
      unit.status = ok ? 'acked' : 'failed'
    }
    const fail = (op: number, what: string, error: unknown) => {
      const shown = error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)
      unexpected.push(`op ${op} (${what}): ${shown}`)
    }
    const snapshot = (tenant: string, what: string, rows: readonly { unit: number }[]) => {
      const seen = new Map<number, number>()
      for (const row of rows) seen.set(row.unit, (seen.get(row.unit) ?? 0) + 1)
      snapshots.push({ tenant, what, counts: seen })
    }

    const insertPrepared = shard.prepare((db, p: Params<{ tag: string; unit: number }>) =>
      db.insertInto('writes').values({ tag: p('tag'), unit: p('unit') }),
    )
    const unitRows = shard.prepare((db, p: Params<{ unit: number }>) =>
      db.selectFrom('writes').select('tag').where('unit', '=', p('unit')),
    )

    type Scope = Parameters<Parameters<typeof shard.withTenant>[1]>[0]
    type TenantKysely = Kysely<DB>

    /**
     * The operations, drawing from `random`: each operation has its own generator seeded from
     * SEED and its index, so what it does is reproducible whatever the interleaving.
     */
    const operationsWith = (random: () => number) => {
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
      const chance = (p: number) => random() < p

      /**
       * One write of `tag` into `unit`, through a randomly chosen path that must land in
       * whatever transaction the current async context is in: the transaction's own Kysely,
       * `t.db`, a model, a prepared query, or a nested `withTenant` of the same tenant.
       */
      const writeOne = async (t: Scope, trx: TenantKysely | undefined, unit: Unit, tag: string) => {
        const r = random()
        if (trx !== undefined && r < 0.3) await trx.insertInto('writes').values({ tag, unit: unit.id }).execute()
        else if (r < 0.5) await t.db.insertInto('writes').values({ tag, unit: unit.id }).execute()
        else if (r < 0.7) await t.models.Write.create({ tag, unit: unit.id })
        else if (r < 0.9) await insertPrepared.execute({ tag, unit: unit.id })
        else
          await shard.withTenant(t.id, (inner) =>
            inner.db.insertInto('writes').values({ tag, unit: unit.id }).execute(),
          )
        unit.tags.push(tag)
      }

      /** A complete read from outside any transaction (a select, or a stream read to the end). */
      const readAll = async (t: Scope, what: string) => {
        if (chance(0.5)) {
          snapshot(t.id, what, await t.db.selectFrom('writes').select('unit').orderBy('id').execute())
        } else {
          const rows: { unit: number }[] = []
          for await (const row of t.db
            .selectFrom('writes')
            .select('unit')
            .orderBy('id')
            .stream(1 + Math.floor(random() * 50))) {
            rows.push(row)
            if (chance(0.02)) await randomPause(random)
          }
          snapshot(t.id, what, rows)
        }
      }

      /**
       * A callback transaction (t.transaction or t.db.transaction().execute) writing a few
       * rows through every path, with a nested savepoint that commits or throws, checking
       * it reads its own writes; it commits or throws at the end.
       */
      const callbackTransaction = async (op: number, t: Scope, label: string) => {
        const unit = newUnit(t.id, label)
        const commit = chance(0.65)
        const viaKysely = chance(0.5)
        let incremented = false
        const body = async (trx: TenantKysely) => {
          const rows = 2 + Math.floor(random() * 4)
          for (let k = 0; k < rows; k++) {
            await writeOne(t, trx, unit, `${op}.${k}`)
            await randomPause(random)
            // Now and then a longer wait while holding the tenant: others queue up behind it.
            if (chance(0.08)) await sleep(2 + Math.floor(random() * 6))
            if (chance(0.2)) {
              // A transaction begun inside this one's callback is a savepoint of it.
              const nestedFails = chance(0.5)
              const nested = nestedFails ? newUnit(t.id, `${label} nested savepoint`) : unit
              try {
                await t.transaction(async () => {
                  await writeOne(t, undefined, nested, `${op}.${k}.n`)
                  await randomPause(random)
                  if (nestedFails) throw new Planned('nested rolls back')
                })
                if (nestedFails) fail(op, 'nested savepoint', 'a throwing nested transaction resolved')
              } catch (error) {
                if (!(error instanceof Planned)) throw error
              }
              if (nestedFails) settle(nested, false)
            }
            if (chance(0.25)) {
              // Inside the transaction, t.db and prepared queries read its uncommitted rows.
              const seen = chance(0.5)
                ? (await unitRows.execute({ unit: unit.id })).map((r) => r.tag)
                : (await t.db.selectFrom('writes').select('tag').where('unit', '=', unit.id).execute()).map(
                    (r) => r.tag,
                  )
              if (seen.length !== unit.tags.length) {
                fail(op, label, `read ${seen.length} of its own ${unit.tags.length} uncommitted rows`)
              }
            }
          }
          if (chance(0.15)) {
            // Read-modify-write of the counter inside the transaction: counts only if it commits.
            const { value } = await trx
              .selectFrom('counters')
              .select('value')
              .where('name', '=', 'hits')
              .executeTakeFirstOrThrow()
            await randomPause(random)
            await trx
              .updateTable('counters')
              .set({ value: value + 1 })
              .where('name', '=', 'hits')
              .execute()
            incremented = true
          }
          if (!commit) throw new Planned('roll back')
          return 'committed'
        }
        try {
          const result = viaKysely
            ? await t.db.transaction().execute((trx) => body(trx as unknown as TenantKysely))
            : await t.transaction((trx) => body(trx.db as unknown as TenantKysely))
          assert.equal(result, 'committed')
          if (!commit) fail(op, label, 'a throwing transaction resolved')
          settle(unit, true)
          if (incremented) increments.set(t.id, increments.get(t.id)! + 1)
        } catch (error) {
          settle(unit, false)
          if (!(error instanceof Planned && !commit)) throw error
        }
      }

      /** A controlled transaction: rows, a savepoint (rolled back to, or kept), then commit or rollback. */
      const controlledTransaction = async (op: number, t: Scope) => {
        const unit = newUnit(t.id, 'controlled transaction')
        const commit = chance(0.6)
        const trx = await t.db.startTransaction().execute()
        // A plain write from another branch of this scope while the transaction holds the tenant:
        // it waits, runs after the commit or rollback, and commits on its own either way.
        const branchUnit = chance(0.4) ? newUnit(t.id, 'plain write beside a controlled transaction') : undefined
        const branch = branchUnit
          ? (async () => {
              await randomPause(random)
              await t.db
                .insertInto('writes')
                .values({ tag: `${op}.b`, unit: branchUnit.id })
                .execute()
              branchUnit.tags.push(`${op}.b`)
            })()
          : undefined
        try {
          const rows = 1 + Math.floor(random() * 3)
          for (let k = 0; k < rows; k++) {
            await trx
              .insertInto('writes')
              .values({ tag: `${op}.${k}`, unit: unit.id })
              .execute()
            unit.tags.push(`${op}.${k}`)
            await randomPause(random)
          }
          if (chance(0.6)) {
            const undo = chance(0.5)
            const spUnit = undo ? newUnit(t.id, 'controlled savepoint rolled back to') : unit
            const sp = await trx.savepoint('sp').execute()
            for (let k = 0; k < 2; k++) {
              await sp
                .insertInto('writes')
                .values({ tag: `${op}.s${k}`, unit: spUnit.id })
                .execute()
              spUnit.tags.push(`${op}.s${k}`)
              await randomPause(random)
            }
            if (undo) {
              await sp.rollbackToSavepoint('sp').execute()
              settle(spUnit, false)
            } else if (chance(0.5)) {
              await sp.releaseSavepoint('sp').execute()
            }
            // After rollbackToSavepoint the transaction goes on: one more row.
            await trx
              .insertInto('writes')
              .values({ tag: `${op}.after`, unit: unit.id })
              .execute()
            unit.tags.push(`${op}.after`)
          }
          if (commit) {
            await trx.commit().execute()
            settle(unit, true)
          } else {
            await trx.rollback().execute()
            settle(unit, false)
          }
        } catch (error) {
          settle(unit, false)
          await trx
            .rollback()
            .execute()
            .catch(() => {})
          throw error
        } finally {
          if (branch !== undefined) {
            try {
              await branch
              settle(branchUnit!, true)
            } catch (error) {
              settle(branchUnit!, false)
              fail(op, 'plain write beside a controlled transaction', error)
            }
          }
        }
      }

      /** A transaction in one branch, plain writes and complete reads in others, all of one scope. */
      const branches = async (op: number, t: Scope) => {
        const plain = Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => async () => {
          await randomPause(random)
          if (chance(0.3)) await sleep(Math.floor(random() * 4))
          const unit = newUnit(t.id, 'plain write from another branch')
          try {
            await writeOne(t, undefined, unit, `${op}.p${i}`)
            settle(unit, true)
          } catch (error) {
            settle(unit, false)
            fail(op, unit.what, error)
          }
          if (chance(0.4)) await readAll(t, 'read from a branch beside a transaction')
        })
        const counter = chance(0.3)
          ? async () => {
              await randomPause(random)
              // One atomic statement outside the transaction: counts whenever it resolves.
              await t.db
                .updateTable('counters')
                .set((eb) => ({ value: eb('value', '+', 1) }))
                .where('name', '=', 'hits')
                .execute()
              increments.set(t.id, increments.get(t.id)! + 1)
            }
          : undefined
        await Promise.all([
          callbackTransaction(op, t, 'transaction with plain writes in other branches'),
          ...plain.map((f) => f()),
          ...(counter ? [counter()] : []),
        ])
      }

      /** A stream, read to the end (a complete read) or abandoned after a few rows. */
      const stream = async (t: Scope) => {
        if (chance(0.5)) return readAll(t, 'stream or select')
        let n = 0
        const stop = 1 + Math.floor(random() * 10)
        for await (const _ of t.db
          .selectFrom('writes')
          .selectAll()
          .stream(1 + Math.floor(random() * 5))) {
          if (++n >= stop) break
          await randomPause(random)
        }
      }

      /** connection(): a read-modify-write of the counter, holding the tenant across awaits. */
      const connectionIncrement = async (t: Scope) => {
        await t.db.connection().execute(async (db) => {
          const { value } = await db
            .selectFrom('counters')
            .select('value')
            .where('name', '=', 'hits')
            .executeTakeFirstOrThrow()
          await randomPause(random)
          if (chance(0.3)) await sleep(1)
          // t.db inside the callback runs on the held connection too.
          const target = chance(0.5) ? db : t.db
          await target
            .updateTable('counters')
            .set({ value: value + 1 })
            .where('name', '=', 'hits')
            .execute()
        })
        increments.set(t.id, increments.get(t.id)! + 1)
        if (chance(0.3)) await readAll(t, 'read after connection()')
      }

      /** A scope that returns with a controlled transaction (or an unawaited callback transaction) open. */
      const leaveOpen = async (op: number, id: string) => {
        const unit = newUnit(id, 'left open when the scope ended')
        let kept: { commit(): { execute(): Promise<void> } } | undefined
        let floating: Promise<unknown> | undefined
        const controlled = chance(0.5)
        // The unawaited transaction goes on only once its scope has ended.
        const { promise: scopeEnded, resolve: release } = latch()
        try {
          await shard.withTenant(id, async (t) => {
            if (controlled) {
              const trx = await t.db.startTransaction().execute()
              kept = trx
              await trx
                .insertInto('writes')
                .values({ tag: `${op}.open`, unit: unit.id })
                .execute()
              unit.tags.push(`${op}.open`)
            } else {
              const { promise: begun, resolve: started } = latch()
              floating = t.transaction(async (trx) => {
                await trx.db
                  .insertInto('writes')
                  .values({ tag: `${op}.open`, unit: unit.id })
                  .execute()
                unit.tags.push(`${op}.open`)
                started()
                await scopeEnded
                await trx.db
                  .insertInto('writes')
                  .values({ tag: `${op}.open2`, unit: unit.id })
                  .execute()
                unit.tags.push(`${op}.open2`)
              })
              floating.catch(() => {})
              await begun
            }
            await randomPause(random)
            return 'returned with a transaction open'
          })
          fail(op, unit.what, 'the scope resolved')
        } catch (error) {
          if (!(error instanceof TransactionLeftOpenError)) fail(op, unit.what, error)
        }
        release()
        settle(unit, false)
        counts.leftOpen++
        if (kept !== undefined) {
          await kept
            .commit()
            .execute()
            .then(
              () => fail(op, unit.what, 'the kept transaction committed after its scope ended'),
              (error: unknown) => {
                if (!(error instanceof TenantScopeClosedError)) fail(op, `${unit.what}: later commit`, error)
              },
            )
        }
        if (floating !== undefined) {
          await floating.then(
            () => fail(op, unit.what, 'the unawaited transaction committed after its scope ended'),
            (error: unknown) => {
              if (!(error instanceof ShardinesError)) fail(op, `${unit.what}: floating transaction`, error)
            },
          )
        }
      }

      const operation = async (op: number): Promise<void> => {
        const id = pick(TENANTS)
        const r = random()
        const kind =
          r < 0.25
            ? 'callback transaction'
            : r < 0.45
              ? 'controlled transaction'
              : r < 0.65
                ? 'branches'
                : r < 0.78
                  ? 'stream'
                  : r < 0.95
                    ? 'connection() increment'
                    : 'left open'
        counts.ops[kind] = (counts.ops[kind] ?? 0) + 1
        if (chance(0.5)) await sleep(Math.floor(random() * 3))
        const run = async () => {
          if (kind === 'left open') return leaveOpen(op, id)
          await shard.withTenant(id, async (t) => {
            await randomPause(random)
            if (kind === 'callback transaction') await callbackTransaction(op, t, kind)
            else if (kind === 'controlled transaction') await controlledTransaction(op, t)
            else if (kind === 'branches') await branches(op, t)
            else if (kind === 'stream') await stream(t)
            else await connectionIncrement(t)
          })
        }
        let timer: NodeJS.Timeout | undefined
        const deadline = new Promise<'hung'>((resolve) => {
          timer = setTimeout(() => resolve('hung'), OPERATION_DEADLINE_MS)
        })
        try {
          const outcome = await Promise.race([run(), deadline])
          if (outcome === 'hung') fail(op, kind, `did not settle within ${OPERATION_DEADLINE_MS} ms`)
        } catch (error) {
          fail(op, kind, error)
        } finally {
          clearTimeout(timer)
        }
      }
      return operation
    }

    const started = performance.now()
    await runInLanes(OPERATIONS, IN_FLIGHT, (op) => operationsWith(seededRandom(SEED * 7919 + op))(op))
    const elapsed = performance.now() - started
    const stats = shard.stats()
    await shard.close({ timeout: 1000 })

    // Every unit settled one way or the other.
    const pending = units.filter((u) => u.status === 'pending')
    assert.deepEqual(
      pending.map((u) => `${u.tenant} unit ${u.id} (${u.what})`),
      [],
      'units never settled',
    )
    assert.deepEqual(unexpected, [], `unexpected outcomes (seed ${SEED})`)

    for (const tenant of TENANTS) {
      const file = path.join(dir, 'tenants', `${tenant}.sqlite3`)
      const db = new Database(file, { readonly: true, fileMustExist: true })
      let rows: { tag: string; unit: number }[]
      let counter: number
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok')
        rows = db.prepare('select tag, unit from writes order by id').all() as { tag: string; unit: number }[]
        counter = (db.prepare("select value from counters where name = 'hits'").get() as { value: number }).value
      } finally {
        db.close()
      }
      const mine = units.filter((u) => u.tenant === tenant)
      const byUnit = new Map<number, string[]>()
      for (const row of rows) byUnit.set(row.unit, [...(byUnit.get(row.unit) ?? []), row.tag])
      const known = new Set(mine.map((u) => u.id))
      assert.deepEqual(
        rows.filter((r) => !known.has(r.unit)),
        [],
        `${tenant}: rows of units that never wrote here`,
      )
      for (const unit of mine) {
        const present = (byUnit.get(unit.id) ?? []).sort()
        if (unit.status === 'acked') {
          assert.deepEqual(
            present,
            [...unit.tags].sort(),
            `${tenant}: acknowledged unit ${unit.id} (${unit.what}) is not there exactly once`,
          )
          counts.acked += unit.tags.length
        } else {
          assert.deepEqual(present, [], `${tenant}: unit ${unit.id} (${unit.what}) was not acknowledged but is there`)
          counts.failed += unit.tags.length
        }
      }
      assert.equal(counter, increments.get(tenant), `${tenant}: the counter lost or gained increments`)
      // A complete read from outside a transaction saw each unit whole (as it ended up) or not at
      // at all: never a rolled-back unit, never part of a transaction.
      const finalCount = (unitId: number) => byUnit.get(unitId)?.length ?? 0
      for (const snap of snapshots.filter((s) => s.tenant === tenant)) {
        for (const [unitId, n] of snap.counts) {
          assert.equal(
            n,
            finalCount(unitId),
            `${tenant}: a ${snap.what} saw ${n} rows of unit ${unitId} (${units[unitId - 1]!.what}), which ended with ${finalCount(unitId)}`,
          )
        }
      }
    }
    // The mix really exercised both outcomes.
    assert.ok(counts.acked > 100 && counts.failed > 50, JSON.stringify(counts))
    assert.ok(snapshots.length > 30, `only ${snapshots.length} complete reads`)
    assert.ok(counts.leftOpen > 3, JSON.stringify(counts))
    if (maxOpen < TENANTS.length) assert.ok(stats.evictions > 0, `no handle was evicted: ${JSON.stringify(stats)}`)
    console.log(
      `# ${journalMode}, maxOpen ${maxOpen}: ${OPERATIONS} operations (${IN_FLIGHT} in flight) in ${Math.round(elapsed)} ms: ${JSON.stringify(counts.ops)}; ` +
        `${counts.acked} acknowledged rows, ${counts.failed} rolled back, ${snapshots.length} complete reads checked, ` +
        `counters ${JSON.stringify(Object.fromEntries(increments))}; pool ${JSON.stringify(stats)}`,
    )
  })
}
