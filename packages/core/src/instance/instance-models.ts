import type { ModelBinding, ModelRegistry, ModelSide } from '../registry/model-registry.js'
import type { ScopeContext } from '../tenant/scope-context.js'

/** `t.models` / `shard.models` of an instance created without `models`. */
const EMPTY_MODELS = Object.freeze({})

/**
 * The models of one instance, bound where they run: `shard.models` (tenanted
 * models find the current scope at each call), each scope's and transaction's
 * `t.models`, and the apex models all of them share.
 */
export class InstanceModels<Models> {
  /** Null when the instance was created without `models`. */
  readonly #registry: ModelRegistry | null
  /** Where apex models run: `shard.apex`, and apex's prepared-statement path. */
  readonly #apexSide: ModelSide
  readonly #context: ScopeContext
  #apexModels: object | undefined
  #instanceModels: Models | undefined

  constructor(registry: ModelRegistry | null, apexSide: ModelSide, context: ScopeContext) {
    this.#registry = registry
    this.#apexSide = apexSide
    this.#context = context
  }

  /** `shard.models`: made on first use. */
  forInstance(): Models {
    if (this.#instanceModels === undefined) {
      const context = this.#context
      // Tenanted models here find the current scope at each call (like shard.db()):
      // outside a scope their calls reject with NoTenantError.
      const current: ModelBinding = {
        get tenantId() {
          return context.currentScope()?.id
        },
        get tenant() {
          return context.currentScope()?.modelSide() ?? null
        },
        apex: this.#apexSide,
      }
      this.#instanceModels = (
        this.#registry === null ? EMPTY_MODELS : this.#registry.bind(current, this.#apexModelsObject())
      ) as Models
    }
    return this.#instanceModels
  }

  /** The models of a scope or transaction: tenanted ones on `side` (run as the scope), apex ones shared. */
  forScope(tenantId: string, side: ModelSide): Models {
    if (this.#registry === null) return EMPTY_MODELS as Models
    return this.#registry.bind({ tenantId, tenant: side, apex: this.#apexSide }, this.#apexModelsObject()) as Models
  }

  /** Apex models: one set per instance, shared by every scope; they always run on apex. */
  #apexModelsObject(): object {
    this.#apexModels ??= (this.#registry as ModelRegistry).bind(
      { tenantId: undefined, tenant: null, apex: this.#apexSide },
      null,
    )
    return this.#apexModels
  }
}
