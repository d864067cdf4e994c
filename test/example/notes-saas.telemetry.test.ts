// notes-saas in development: SHARDINES_TRACE=console (or NODE_ENV=development) prints each tenant
// scope and its statements as OpenTelemetry spans (ConsoleSpanExporter prints with console.dir).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTelemetry } from '../../examples/notes-saas/src/telemetry.js'
import { startNotesSaas } from './notes-saas-harness.js'

test('SHARDINES_TRACE=console: a request’s scope and its statements are printed as spans', async () => {
  const { shard, base } = await startNotesSaas()
  const printed: Array<{ name: string; parentSpanContext?: { spanId: string }; id: string; attributes: any }> = []
  const dir = console.dir
  console.dir = (value: unknown) => {
    printed.push(value as (typeof printed)[number])
  }
  let stop: (() => Promise<void>) | undefined
  try {
    stop = await startTelemetry(shard, { SHARDINES_TRACE: 'console', SHARDINES_METRICS_INTERVAL_MS: '600000' })
    assert.ok(stop !== undefined)
    const response = await fetch(`${base}/notes`, { headers: { 'x-tenant': 'acme' } })
    assert.equal(response.status, 200)
    await response.arrayBuffer()
  } finally {
    await stop?.()
    console.dir = dir
  }
  const scope = printed.find((s) => s.name === 'shardines.scope')
  assert.ok(scope, JSON.stringify(printed.map((s) => s.name)))
  assert.equal(scope.attributes['db.system'], 'sqlite')
  assert.equal(scope.attributes['db.namespace'], 'acme')
  const statements = printed.filter((s) => s.parentSpanContext?.spanId === scope.id)
  assert.ok(statements.length >= 1)
  assert.ok(statements.every((s) => s.attributes['db.namespace'] === 'acme'))
})

test('tracing is off unless asked for (and NODE_ENV=development asks for it)', async () => {
  const { shard } = await startNotesSaas()
  assert.equal(await startTelemetry(shard, {}), undefined)
  assert.equal(await startTelemetry(shard, { NODE_ENV: 'production' }), undefined)
  assert.equal(await startTelemetry(shard, { NODE_ENV: 'development', SHARDINES_TRACE: 'off' }), undefined)
  const dir = console.dir
  console.dir = () => {}
  try {
    const stop = await startTelemetry(shard, { NODE_ENV: 'development', SHARDINES_METRICS_INTERVAL_MS: '600000' })
    assert.ok(stop !== undefined)
    await stop()
  } finally {
    console.dir = dir
  }
  await assert.rejects(startTelemetry(shard, { SHARDINES_TRACE: 'jaeger' }), /must be "console" or "off"/)
})
