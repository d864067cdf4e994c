import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvalidOptionsError } from '@shardines/core'
import { makeModelShard, seed } from './model-fixtures.js'

test('belongsTo an apex model: one statement on the tenant through ATTACH, null when nothing matches', async () => {
  const { shard, log } = await makeModelShard()
  const { ada } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    log.reset()
    const rows = await t.models.Document.where('status', '=', 'open').orderBy('id').include('owner').all()
    assert.deepEqual(rows, [
      {
        id: 1,
        title: 'plan',
        owner_id: ada.id,
        status: 'open',
        owner: { id: ada.id, email: 'ada@x.test', plan: 'pro' },
      },
      { id: 3, title: 'loose', owner_id: null, status: 'open', owner: null },
    ])
    const onTenant = log.statements('acme')
    assert.equal(onTenant.length, 1)
    assert.match(onTenant[0]!, /from "documents" as "__m" left join "apex"\."accounts"/)
    // The only other statement: apex's column list, read once per instance.
    assert.deepEqual(log.statements('apex'), ['select name from pragma_table_info(?)'])

    log.reset()
    const orphan = await t.models.Document.where('title', '=', 'orphan').include('owner').first()
    assert.equal(orphan?.owner, null)
    assert.equal(log.statements().length, 1, 'warm: exactly one statement in all')
  })
  await shard.close()
})

test('hasMany and hasOne: one batched statement per relation, [] and null when none', async () => {
  const { shard, log } = await makeModelShard()
  const { plan, orphan, loose } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    log.reset()
    const rows = await t.models.Document.orderBy('id').include('comments', 'settings').all()
    assert.deepEqual(
      rows.map((r) => [r.id, r.comments.map((c) => c.body), r.settings?.color ?? null]),
      [
        [plan, ['first', 'second'], 'red'],
        [orphan, ['third'], null],
        [loose, [], null],
      ],
    )
    const sqls = log.statements()
    assert.equal(sqls.length, 3)
    assert.match(sqls[1]!, /from "comments" as "__m" where "__m"\."document_id" in \(\?, \?, \?\)/)
    assert.match(sqls[2]!, /from "document_settings" as "__m" where "__m"\."document_id" in/)

    // A belongsTo within the tenant: batched too.
    log.reset()
    const comments = await t.models.Comment.include('document').all()
    assert.deepEqual(
      comments.map((c) => c.document?.title),
      ['plan', 'plan', 'orphan'],
    )
    assert.equal(log.statements().length, 2)

    // Nothing to look up: no extra statement.
    log.reset()
    const none = await t.models.Document.where('id', '=', loose).include('settings', 'comments').all()
    assert.deepEqual([none[0]!.settings, none[0]!.comments], [null, []])
    assert.equal(log.statements().length, 3)
    log.reset()
    assert.deepEqual(await t.models.Document.where('id', '=', 4242).include('comments', 'owner').all(), [])
    assert.equal(log.statements('acme').length, 1)
  })
  await shard.close()
})

test('nested includes, two and three levels, across tenant and apex', async () => {
  const { shard, log } = await makeModelShard()
  const { plan, ada, bob } = await seed(shard)
  await shard.withTenant('acme', async (t) => {
    log.reset()
    const doc = await t.models.Document.where('id', '=', plan).include('comments.author', 'owner.tier').first()
    assert.deepEqual(doc, {
      id: plan,
      title: 'plan',
      owner_id: ada.id,
      status: 'open',
      owner: { id: ada.id, email: 'ada@x.test', plan: 'pro', tier: { id: 'pro', name: 'Pro' } },
      comments: [
        {
          id: 1,
          document_id: plan,
          body: 'first',
          author_id: bob.id,
          author: { id: bob.id, email: 'bob@x.test', plan: 'free' },
        },
        { id: 2, document_id: plan, body: 'second', author_id: null, author: null },
      ],
    })
    // documents+owner (joined), comments+author (joined), the owners' plans (apex through the tenant).
    assert.equal(log.statements('acme').length, 3)
    assert.match(log.statements('acme')[2]!, /from "apex"\."plans" as "__m" where "__m"\."id" in \(\?\)/)

    log.reset()
    const comments = await t.models.Comment.orderBy('id').include('document.owner.tier', 'document.settings').all()
    assert.deepEqual(
      comments.map((c) => [c.body, c.document?.owner?.tier?.name ?? null, c.document?.settings?.color ?? null]),
      [
        ['first', 'Pro', 'red'],
        ['second', 'Pro', 'red'],
        ['third', null, null],
      ],
    )
    assert.equal(log.statements('acme').length, 4)
  })
  // Apex → apex includes outside any scope: batched on apex.
  log.reset()
  const plans = await shard.models.Plan.orderBy('id').include('accounts.tier').all()
  assert.deepEqual(
    plans.map((p) => [p.id, p.accounts.map((a) => [a.email, a.tier?.id])]),
    [
      ['free', [['bob@x.test', 'free']]],
      ['pro', [['ada@x.test', 'pro']]],
    ],
  )
  assert.equal(log.statements('apex').length, 3)
  await shard.close()
})

test('include names are checked where they are written', async () => {
  const { shard } = await makeModelShard()
  await seed(shard)
  await shard.withTenant('acme', async (t) => {
    assert.throws(
      () => t.models.Document.include('ownr' as never),
      (e: unknown) => {
        assert.ok(e instanceof InvalidOptionsError)
        assert.match(
          e.message,
          /Document\.include\('ownr'\): model Document has no relation "ownr" \(its relations: owner, comments, settings\)/,
        )
        return true
      },
    )
    assert.throws(() => t.models.Document.include('comments.writer' as never), /model Comment has no relation "writer"/)
  })
  await shard.close()
})

test('an apex model with includes inside a tenant scope reads only apex', async () => {
  const { shard, log } = await makeModelShard()
  await seed(shard)
  await shard.withTenant('acme', async (t) => {
    log.reset()
    const accounts = await t.models.Account.orderBy('id').include('tier').all()
    assert.deepEqual(
      accounts.map((a) => [a.email, a.tier?.name]),
      [
        ['ada@x.test', 'Pro'],
        ['bob@x.test', 'Free'],
      ],
    )
    assert.deepEqual(
      log.events.map((e) => e.tenantId),
      ['apex', 'apex'],
    )
  })
  await shard.close()
})

test('a statement cached for one tenant runs correctly in another (attaching apex there first)', async () => {
  const { shard } = await makeModelShard()
  await seed(shard, 'acme')
  await shard.tenants.create('beta')
  await shard.withTenant('beta', (t) => t.models.Document.create({ title: 'beta doc', owner_id: 2 }))
  const read = (id: string) =>
    shard.withTenant(id, (t) => t.models.Document.where('title', 'like', '%').orderBy('id').include('owner').first())
  assert.equal((await read('acme'))?.owner?.email, 'ada@x.test')
  assert.deepEqual(await read('beta'), {
    id: 1,
    title: 'beta doc',
    owner_id: 2,
    status: 'open',
    owner: { id: 2, email: 'bob@x.test', plan: 'free' },
  })
  await shard.close()
})
