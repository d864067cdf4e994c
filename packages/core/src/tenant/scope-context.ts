import { AsyncLocalStorage } from 'node:async_hooks'
import type { TenantScopeImpl } from './tenant-scope.js'

/**
 * One link of the async context Shardines keeps: a tenant scope, or a
 * transaction or `connection()` callback running inside one (or on apex).
 */
export interface ContextFrame {
  readonly parent: ContextFrame | undefined
  /** The nearest enclosing tenant scope. */
  readonly scope: TenantScopeImpl<any, any, any> | undefined
  /** The transaction or `connection()` token this frame marks (its statements join it). */
  readonly token: object | undefined
}

/**
 * The async context of one instance (AsyncLocalStorage): the tenant scope the
 * calling code runs in, and the transactions and `connection()` callbacks it
 * runs inside. Each instance has its own, so instances never see each other's scopes.
 */
export class ScopeContext {
  readonly #als = new AsyncLocalStorage<ContextFrame>()

  /** Whether the current async context runs inside the transaction or connection() that `token` holds. */
  readonly inContextOf = (token: object): boolean => {
    for (let frame = this.#als.getStore(); frame !== undefined; frame = frame.parent) {
      if (frame.token === token) return true
    }
    return false
  }

  /** Runs `fn` marked as inside `token`'s transaction or connection() callback. */
  readonly runInFrame = <T>(token: object, fn: () => T): T => {
    const parent = this.#als.getStore()
    return this.#als.run({ parent, scope: parent?.scope, token }, fn)
  }

  /** The innermost tenant scope the calling code runs in, or undefined outside every scope. */
  currentScope(): TenantScopeImpl<any, any, any> | undefined {
    return this.#als.getStore()?.scope
  }

  /** The frame the calling code runs in: the parent of a scope opened here. */
  currentFrame(): ContextFrame | undefined {
    return this.#als.getStore()
  }

  /** Whether the calling code runs inside a scope of `tenantId` (directly or nested). */
  insideScopeOf(tenantId: string): boolean {
    for (let frame = this.#als.getStore(); frame !== undefined; frame = frame.parent) {
      if (frame.scope?.id === tenantId) return true
    }
    return false
  }

  /** Runs `fn(scope)` with `scope` as the current frame: everything it awaits sees that scope. */
  runScope<S extends ContextFrame, T>(scope: S, fn: (scope: S) => T): T {
    return this.#als.run(scope, fn, scope)
  }
}
