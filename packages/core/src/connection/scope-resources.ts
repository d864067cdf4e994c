/** Something a scope opened that must end with it: a transaction or a `connection()` hold. */
export interface ScopeResource {
  /** Ends it now (rolls back a transaction, releases a hold); resolves to whether anything was still open. */
  abandon(): Promise<boolean>
}

/**
 * What one scope has open on its handle. When the scope's function settles,
 * whatever is still open is rolled back or released, so a tenant is never left
 * waiting for a transaction nobody will finish.
 */
export class ScopeResources {
  /** Made on first use: most scopes open nothing that outlives a statement. */
  #open: Set<ScopeResource> | undefined
  /** Where this scope's resources are listed while it has any (the instance's close() ends them). */
  readonly #registry: Set<ScopeResources> | undefined

  constructor(registry?: Set<ScopeResources>) {
    this.#registry = registry
  }

  add(resource: ScopeResource): void {
    this.#open ??= new Set()
    this.#open.add(resource)
    this.#registry?.add(this)
  }

  delete(resource: ScopeResource): void {
    this.#open?.delete(resource)
  }

  get size(): number {
    return this.#open?.size ?? 0
  }

  /** Ends everything still open; resolves to how many were. */
  async abandonAll(): Promise<number> {
    let count = 0
    for (const resource of [...(this.#open ?? [])]) {
      this.#open?.delete(resource)
      if (await resource.abandon()) count++
    }
    return count
  }
}
