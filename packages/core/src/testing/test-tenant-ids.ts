import { randomInt } from 'node:crypto'
import { threadId } from 'node:worker_threads'
import { assertTenantId, InvalidOptionsError } from '../index.js'

/** The prefix of test tenant ids when none is given. */
export const DEFAULT_TEST_PREFIX = 'test'

/**
 * The longest prefix accepted: what follows it (process, thread, a random
 * token and a counter, at most 30 characters) must still fit a tenant id's 64.
 */
export const MAX_TEST_PREFIX_LENGTH = 32

const PREFIX = /^[a-z0-9][a-z0-9_-]*$/

/**
 * Throws `InvalidOptionsError` unless `prefix` can start a tenant id: 1–32
 * characters of `a-z 0-9 _ -`, starting with a letter or digit. Checked when the
 * helper is made, so a hostile prefix never reaches the filesystem.
 */
export function assertTestPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix === 'string' && prefix.length <= MAX_TEST_PREFIX_LENGTH && PREFIX.test(prefix)) return
  const shown =
    typeof prefix === 'string' && /^[\x20-\x7e]*$/.test(prefix) && prefix.length <= 80
      ? JSON.stringify(prefix)
      : typeof prefix === 'string'
        ? `a string of ${prefix.length} characters`
        : typeof prefix
  throw new InvalidOptionsError(
    `The test tenant prefix ${shown} cannot start a tenant id: use 1–${MAX_TEST_PREFIX_LENGTH} characters of a-z 0-9 _ -, starting with a letter or digit (e.g. "test").`,
  )
}

/**
 * Makes the ids of one helper: `<prefix>-<pid>[t<thread>]-<random>-<n>` (pid,
 * thread and n in base 36/10). The process id keeps node:test and vitest `forks`
 * workers apart, the thread id vitest `threads` workers (they share a pid), and
 * the random token two helpers of one worker (vitest re-evaluates modules per
 * test file, restarting any counter) and a pid reused after a crashed run.
 */
export class TestTenantIds {
  readonly prefix: string
  readonly #session: string
  #next = 0

  constructor(prefix: string) {
    assertTestPrefix(prefix)
    this.prefix = prefix
    const thread = threadId > 0 ? `t${threadId.toString(36)}` : ''
    const token = randomInt(36 ** 5)
      .toString(36)
      .padStart(5, '0')
    this.#session = `${prefix}-${process.pid.toString(36)}${thread}-${token}`
  }

  /** The id of this helper's template tenant. */
  template(): string {
    return checked(`${this.#session}-tpl`)
  }

  /** A fresh id, never returned before by this helper. */
  next(): string {
    this.#next += 1
    return checked(`${this.#session}-${this.#next}`)
  }
}

function checked(id: string): string {
  // Cannot fail for a checked prefix (32 + at most 30 characters); asserted so that a change to the format cannot slip by.
  assertTenantId(id)
  return id
}
