import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { firstOf, fromHeader, fromPathPrefix, fromSubdomain, InvalidOptionsError } from '@shardines/core'
import { makeShard } from '../helpers/fixtures.js'

// The resolvers read Node requests ({ headers, url }) and Fetch requests alike.
const node = (headers: Record<string, string | string[]>, url = '/', originalUrl?: string) => ({
  headers,
  url,
  originalUrl,
})
const fetchReq = (url: string, headers: Record<string, string> = {}) => new Request(url, { headers })

describe('fromHeader', () => {
  test('reads X-Tenant (or a named header) from Node and Fetch requests', () => {
    assert.equal(fromHeader()(node({ 'x-tenant': 'acme' })), 'acme')
    assert.equal(fromHeader()(node({ 'x-tenant': ['acme', 'globex'] })), 'acme')
    assert.equal(fromHeader('X-Org')(node({ 'x-org': 'globex' })), 'globex')
    assert.equal(fromHeader()(fetchReq('http://h/', { 'X-Tenant': 'acme' })), 'acme')
    assert.equal(fromHeader()(node({})), undefined)
    assert.equal(fromHeader()(node({ 'x-tenant': '' })), undefined)
    // No normalisation: a hostile value reaches the middleware's validation as it is.
    assert.equal(fromHeader()(node({ 'x-tenant': 'ACME' })), 'ACME')
  })
  test('refuses a bad header name', () => {
    assert.throws(() => fromHeader('x tenant'), InvalidOptionsError)
  })
})

describe('fromSubdomain', () => {
  const resolve = fromSubdomain(['localhost', '.notes.example.com'])
  test('takes the label under a base domain, lower-cased, without the port', () => {
    assert.equal(resolve(node({ host: 'acme.localhost:3000' })), 'acme')
    assert.equal(resolve(node({ host: 'ACME.LocalHost' })), 'acme')
    assert.equal(resolve(node({ host: 'globex.notes.example.com' })), 'globex')
    assert.equal(resolve(fetchReq('http://acme.localhost:3000/notes')), 'acme')
    assert.equal(resolve(fetchReq('http://127.0.0.1:3000/', { host: 'initech.localhost' })), 'initech')
  })
  test('names no tenant for the bare domain, an IP, or another domain; deeper names pass through to validation', () => {
    assert.equal(resolve(node({ host: 'localhost:3000' })), undefined)
    assert.equal(resolve(node({ host: '127.0.0.1:3000' })), undefined)
    assert.equal(resolve(node({ host: '[::1]:3000' })), undefined)
    assert.equal(resolve(node({ host: 'acme.example.org' })), undefined)
    assert.equal(resolve(node({ host: 'evillocalhost' })), undefined)
    assert.equal(resolve(node({})), undefined)
    assert.equal(resolve(node({ host: 'a.b.localhost' })), 'a.b')
  })
  test('refuses an empty base domain', () => {
    assert.throws(() => fromSubdomain(''), InvalidOptionsError)
    assert.throws(() => fromSubdomain(['localhost', '.']), InvalidOptionsError)
  })
})

describe('fromPathPrefix', () => {
  const resolve = fromPathPrefix('/t')
  test('takes the segment after the prefix, percent-decoded, ignoring the query', () => {
    assert.equal(resolve(node({}, '/t/acme/notes?x=1')), 'acme')
    assert.equal(resolve(node({}, '/t/acme')), 'acme')
    assert.equal(resolve(node({}, '/t/acme?x=/t/globex')), 'acme')
    assert.equal(resolve(node({}, '/notes', '/t/globex/notes')), 'globex', "Express's originalUrl wins")
    assert.equal(resolve(fetchReq('http://h/t/initech/notes')), 'initech')
    assert.equal(resolve(node({}, '/t/%61cme/x')), 'acme')
    assert.equal(resolve(node({}, '/t/..%2Fapex/x')), '../apex')
    assert.equal(resolve(node({}, '/t/%zz/x')), '%zz')
  })
  test('names no tenant outside the prefix', () => {
    assert.equal(resolve(node({}, '/notes')), undefined)
    assert.equal(resolve(node({}, '/tx/acme')), undefined)
    assert.equal(resolve(node({}, '/t/')), undefined)
    assert.equal(fromPathPrefix('/orgs/')(node({}, '/orgs/acme/x')), 'acme')
  })
  test('refuses a prefix without a leading slash', () => {
    assert.throws(() => fromPathPrefix('t'), InvalidOptionsError)
  })
})

describe('firstOf', () => {
  test('returns the first id found, in order', async () => {
    const resolve = firstOf(fromPathPrefix(), fromHeader(), fromSubdomain('localhost'))
    assert.equal(await resolve(node({ 'x-tenant': 'b', host: 'c.localhost' }, '/t/a/x')), 'a')
    assert.equal(await resolve(node({ 'x-tenant': 'b', host: 'c.localhost' }, '/x')), 'b')
    assert.equal(await resolve(node({ host: 'c.localhost' }, '/x')), 'c')
    assert.equal(await resolve(node({}, '/x')), undefined)
    assert.equal(
      await firstOf(
        async () => null,
        async () => 'z',
      )(node({})),
      'z',
    )
  })
})

describe('middleware arguments', () => {
  test('bad resolvers and options are refused with exact messages', async (t) => {
    const { shard } = await makeShard()
    t.after(() => shard.close())
    assert.throws(() => shard.middleware('x-tenant' as never), {
      name: 'InvalidOptionsError',
      message: /resolve must be a function/,
    })
    assert.throws(() => shard.honoMiddleware(fromHeader(), { onMissing: 'skipp' as never }), {
      message: `honoMiddleware(resolve, options): onMissing must be 'reject' or 'skip', not "skipp".`,
    })
    assert.throws(() => shard.middleware(fromHeader(), { onmissing: 'skip' } as never), {
      message: /unknown option "onmissing"/,
    })
    assert.equal(typeof shard.middleware(fromHeader(), { onMissing: 'skip' }), 'function')
  })
})
