import assert from 'node:assert/strict'
import { test } from 'node:test'
// The parser is internal to the CLI (not exported from @shardines/cli): tested from source.
import { CliUsageError, commandUsage, parseCommand } from '../../packages/cli/src/parse-command.js'
import { InvalidTenantIdError } from '../../packages/core/src/errors.js'
import { assertTenantId } from '../../packages/core/src/tenant/tenant-id.js'

test('parseCommand: each command line becomes one case of the union', () => {
  const cases: Array<[string[], unknown]> = [
    [['migrate'], { kind: 'migrate', target: 'default', concurrency: undefined }],
    [['migrate', '--apex'], { kind: 'migrate', target: 'apex', concurrency: undefined }],
    [['migrate', '--all', '--concurrency', '4'], { kind: 'migrate', target: 'all', concurrency: 4 }],
    [['migrate', '--tenant', 'acme'], { kind: 'migrate', target: { tenant: 'acme' }, concurrency: undefined }],
    [['status', '--json'], { kind: 'status' }],
    [['tenants', 'list'], { kind: 'tenants-list' }],
    [['tenants', 'create', 'acme'], { kind: 'tenants-create', id: 'acme' }],
    [['tenants', 'destroy', 'acme', '--yes'], { kind: 'tenants-destroy', id: 'acme', yes: true }],
    [['tenants', 'destroy', 'acme'], { kind: 'tenants-destroy', id: 'acme', yes: false }],
    [['backup', 'acme', './b.sqlite3'], { kind: 'backup', id: 'acme', dest: './b.sqlite3', overwrite: false }],
    [
      ['backup', 'acme', './b.sqlite3', '--overwrite'],
      { kind: 'backup', id: 'acme', dest: './b.sqlite3', overwrite: true },
    ],
    [['codegen', '--out', 'src/db', '--verify'], { kind: 'codegen', out: 'src/db', verify: true }],
    [[], { kind: 'help' }],
    [['--version'], { kind: 'version' }],
  ]
  for (const [argv, command] of cases) assert.deepEqual(parseCommand(argv).command, command, argv.join(' '))
  assert.deepEqual(parseCommand(['status', '--json', '--config', 'x.mjs']).global, { config: 'x.mjs', json: true })
})

test('parseCommand: bad command lines are usage errors that say what is wrong', () => {
  const bad: Array<[string[], RegExp]> = [
    [['migrate', '--apex', '--all'], /one of --apex, --tenant ID, --all/],
    [['migrate', '--concurrency', '0'], /--concurrency must be a whole number of at least 1, not "0"/],
    [['migrate', '--concurrency', 'two'], /not "two"/],
    [['status', '--apex'], /status does not take --apex/],
    [['tenants', 'create'], /tenants takes: list \| create ID \| destroy ID \[--yes\]/],
    [['tenants', 'list', '--yes'], /tenants list does not take --yes/],
    [['backup', 'acme'], /backup takes ID DEST/],
    [['backup', 'a', 'b', 'c'], /not "c"/],
    [['migrate', '--frobnicate'], /Unknown option --frobnicate for migrate/],
    [['deploy'], /Unknown command "deploy"/],
  ]
  for (const [argv, message] of bad) {
    assert.throws(
      () => parseCommand(argv),
      (error: unknown) => {
        assert.ok(error instanceof CliUsageError, argv.join(' '))
        assert.match((error as Error).message, message)
        return true
      },
    )
  }
})

test('CLI messages: an unknown flag names the command and its help; --help per command; upper-case ids are told they must be lower case', () => {
  assert.throws(
    () => parseCommand(['migrate', '--foo']),
    (error: unknown) =>
      error instanceof CliUsageError &&
      error.message === 'Unknown option --foo for migrate. See shardines migrate --help.' &&
      !/positional argument/.test(error.message),
  )
  assert.deepEqual(parseCommand(['tenants', '--help']).command, { kind: 'help', command: 'tenants' })
  assert.deepEqual(parseCommand(['help', 'doctor']).command, { kind: 'help', command: 'doctor' })
  const tenants = commandUsage('tenants') ?? ''
  assert.match(tenants, /tenants rename FROM TO/)
  assert.doesNotMatch(tenants, /codegen/)
  assert.equal(commandUsage('nosuch'), undefined)
  assert.throws(
    () => assertTenantId('Acme'),
    (error: unknown) => error instanceof InvalidTenantIdError && /lower case: "acme"/.test(error.message),
  )
})
