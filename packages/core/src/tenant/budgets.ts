import { InvalidOptionsError, PoolExhaustedError, TenantBusyError } from '../errors.js'

/**
 * Limits on concurrent scopes, each with a wait queue and a timeout. A scope
 * first takes a slot of its tenant (`perTenant`), then one of the process
 * (`pinned`: every running scope pins a tenant handle): a hot tenant's excess
 * waits at its own gate, so it never holds more than `perTenant` of the
 * global slots and a cold tenant's scope finds one free.
 */
export interface ScopeBudgets {
  /** Most scopes of one tenant running at once; more wait in order. Default: no limit. */
  readonly perTenant?: number
  /** Most scopes of all tenants running at once (each pins a tenant handle). Default: no limit. */
  readonly pinned?: number
  /** How long a scope waits for a slot before `TenantBusyError` / `PoolExhaustedError`, in ms. Default 5000. */
  readonly timeout?: number
}

interface Waiter {
  readonly grant: () => void
}

/** A counting semaphore with a FIFO queue; a waiter that times out leaves the queue. */
class Slots {
  readonly limit: number
  #active = 0
  readonly #queue: Waiter[] = []

  constructor(limit: number) {
    this.limit = limit
  }

  get idle(): boolean {
    return this.#active === 0 && this.#queue.length === 0
  }

  /** Resolves when a slot is taken; rejects with `onTimeout()` after `timeout` ms of waiting. */
  take(timeout: number, onTimeout: (waited: number) => Error): Promise<void> {
    if (this.#active < this.limit && this.#queue.length === 0) {
      this.#active++
      return Promise.resolve()
    }
    const started = performance.now()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer)
          this.#active++
          resolve()
        },
      }
      const timer = setTimeout(() => {
        const at = this.#queue.indexOf(waiter)
        if (at !== -1) this.#queue.splice(at, 1)
        reject(onTimeout(performance.now() - started))
      }, timeout)
      this.#queue.push(waiter)
    })
  }

  release(): void {
    this.#active--
    const next = this.#queue.shift()
    next?.grant()
  }
}

/** The budgets of one instance. */
export class Budgets {
  readonly #perTenant: number | undefined
  readonly #timeout: number
  readonly #tenants = new Map<string, Slots>()
  readonly #global: Slots | undefined

  constructor(options: ScopeBudgets) {
    this.#perTenant = options.perTenant
    this.#timeout = options.timeout ?? 5000
    this.#global = options.pinned === undefined ? undefined : new Slots(options.pinned)
  }

  /**
   * Takes the slots a scope of `tenantId` needs and resolves to their release.
   * A scope nested in another takes no global slot (its parent's pins a
   * handle already, and waiting for one while holding one could deadlock), and
   * one nested in a scope of the same tenant takes no slot at all.
   */
  async enter(tenantId: string, nested: boolean, insideSameTenant: boolean): Promise<() => void> {
    let tenant: Slots | undefined
    if (this.#perTenant !== undefined && !insideSameTenant) {
      tenant = this.#tenants.get(tenantId)
      if (tenant === undefined) {
        tenant = new Slots(this.#perTenant)
        this.#tenants.set(tenantId, tenant)
      }
      const limit = this.#perTenant
      await tenant.take(this.#timeout, (waited) => TenantBusyError.overBudget(tenantId, limit, waited))
    }
    const global = nested ? undefined : this.#global
    if (global !== undefined) {
      try {
        await global.take(this.#timeout, (waited) => new PoolExhaustedError(tenantId, global.limit, waited))
      } catch (error) {
        this.#leave(tenantId, tenant)
        throw error
      }
    }
    let released = false
    return () => {
      if (released) return
      released = true
      global?.release()
      this.#leave(tenantId, tenant)
    }
  }

  #leave(tenantId: string, tenant: Slots | undefined): void {
    if (tenant === undefined) return
    tenant.release()
    if (tenant.idle) this.#tenants.delete(tenantId)
  }
}

/** Checks `options.budgets`; `undefined` when no limit is set. */
export function budgetsOf(options: ScopeBudgets | undefined): Budgets | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError('options.budgets must be an object: { perTenant?, pinned?, timeout? }.')
  }
  for (const key of Object.keys(options)) {
    if (key !== 'perTenant' && key !== 'pinned' && key !== 'timeout') {
      throw new InvalidOptionsError(`Unknown budgets option "${key}"; the options are perTenant, pinned, timeout.`)
    }
  }
  for (const key of ['perTenant', 'pinned', 'timeout'] as const) {
    const value = options[key]
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
      throw new InvalidOptionsError(`options.budgets.${key} must be a positive integer, not ${JSON.stringify(value)}.`)
    }
  }
  if (options.perTenant === undefined && options.pinned === undefined) return undefined
  return new Budgets(options)
}
