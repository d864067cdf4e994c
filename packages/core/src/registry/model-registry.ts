import type { Kysely, KyselyPlugin } from 'kysely'
import { InvalidOptionsError } from '../errors.js'
import type { PreparedRunner, PreparedTemplate } from '../prepared/prepared-query.js'
import { tableColumnsQuery } from '../storage/sqlite-engine.js'
import { joinedAlias } from './include-loader.js'
import { ModelImpl } from './model.js'
import { isModelDeclaration, type ModelKind, type RelationKind } from './model-declaration.js'

/** One relation, checked and resolved. */
export interface RelationSpec {
  readonly name: string
  readonly kind: RelationKind
  /** The target model's name. */
  readonly target: string
  /** For `belongsTo` a column of the declaring model; otherwise a column of the target. */
  readonly foreignKey: string
}

/** One model, checked and frozen. */
export interface ModelSpec {
  readonly name: string
  readonly kind: ModelKind
  readonly table: string
  readonly primaryKey: string
  readonly relations: ReadonlyMap<string, RelationSpec>
}

/**
 * Where a model's statements go: a Kysely to build and run them, and the
 * prepared-query runner of the same handle and owner (a scope, or apex).
 */
export interface ModelSide {
  readonly db: () => Kysely<any>
  readonly runner: PreparedRunner
  /**
   * Whether apex tables can be read through this side's Kysely as
   * `apex.<table>` (the storage attaches). When false, includes that reach
   * apex run as separate statements on apex.
   */
  readonly attachesApex: boolean
}

/**
 * What models are bound to: the tenant side (null outside a scope) and the
 * apex side. For `shard.models` the tenant fields are getters that read the
 * current scope at each call.
 */
export interface ModelBinding {
  readonly tenantId: string | undefined
  readonly tenant: ModelSide | null
  readonly apex: ModelSide
}

/** An apex table's column names as read at one time; `version` changes when they are read again. */
export interface ApexColumns {
  readonly names: readonly string[]
  readonly version: number
}

/** Turns joined rows (`__r0_email`…) into rows with the related row (or `null`) under the relation's name. */
export type Nester = (rows: Record<string, unknown>[]) => Record<string, unknown>[]

/** Cached statements per instance; past this many, further shapes are compiled per call. */
const MAX_TEMPLATES = 2000

const RELATION_KINDS: readonly RelationKind[] = ['belongsTo', 'hasMany', 'hasOne']

const STATE: unique symbol = Symbol('shardines.models')

interface BoundState {
  readonly binding: ModelBinding
  readonly cache: Record<string, ModelImpl>
}

/**
 * The checked, frozen model declarations of one instance, plus its caches
 * (prepared templates, apex column lists). Internal: users see only the
 * models objects it binds.
 */
export class ModelRegistry {
  readonly specs: ReadonlyMap<string, ModelSpec>
  readonly plugins: readonly KyselyPlugin[]
  /** Prepared templates (find, count, findBy and read shapes): compiled once per instance. */
  readonly #templates = new Map<string, PreparedTemplate>()
  readonly #findTemplates = new Map<ModelSpec, PreparedTemplate>()
  readonly #columns = new Map<string, Promise<ApexColumns>>()
  readonly #knownColumns = new Map<string, ApexColumns>()
  readonly #nesters = new WeakMap<PreparedTemplate, { readonly signature: string; readonly nest: Nester }>()
  #columnsVersion = 0
  readonly #scopeProto: object

  /** Whether a plugin rewrites result rows (then joined includes are not used). */
  readonly transformsResults: boolean

  constructor(specs: ReadonlyMap<string, ModelSpec>, plugins: readonly KyselyPlugin[]) {
    this.specs = specs
    this.plugins = plugins
    this.transformsResults = plugins.some((plugin) => typeof plugin.transformResult === 'function')
    // One prototype of lazy getters per instance: binding models to a scope is then
    // one small object, and a model object is made only when first touched.
    const registry = this
    const proto: Record<string, unknown> = Object.create(null)
    for (const spec of specs.values()) {
      Object.defineProperty(proto, spec.name, {
        enumerable: true,
        get(this: { [STATE]: BoundState }) {
          const state = this[STATE]
          state.cache[spec.name] ??= new ModelImpl(spec, registry, state.binding)
          return state.cache[spec.name]
        },
      })
    }
    this.#scopeProto = Object.freeze(proto)
  }

  /** The models object for a binding (a scope, a transaction, or apex-only); objects are made on first use. */
  bind(binding: ModelBinding, apexModels: object | null): object {
    const models = Object.create(this.#scopeProto) as { [STATE]: BoundState }
    const cache: Record<string, ModelImpl> = Object.create(null)
    if (apexModels !== null) {
      // Apex models are shared by every scope: they always run on apex.
      for (const spec of this.specs.values()) {
        if (spec.kind === 'apex')
          Object.defineProperty(cache, spec.name, { get: () => Reflect.get(apexModels, spec.name) })
      }
    }
    Object.defineProperty(models, STATE, { value: { binding, cache } })
    return Object.freeze(models)
  }

  spec(name: string): ModelSpec {
    return this.specs.get(name) as ModelSpec
  }

  /**
   * The statement cached under `key`, compiled by `compile` on first use. The
   * SQL is the same for every tenant (the compiler only qualifies `main`), so
   * one template serves every scope of the instance.
   */
  template(key: string, compile: () => PreparedTemplate): PreparedTemplate {
    let template = this.#templates.get(key)
    if (template === undefined) {
      template = compile()
      if (this.#templates.size < MAX_TEMPLATES) this.#templates.set(key, template)
    }
    return template
  }

  /** The find-by-primary-key statement of a model, compiled by `compile` on first use. */
  findTemplate(spec: ModelSpec, compile: () => PreparedTemplate): PreparedTemplate {
    let template = this.#findTemplates.get(spec)
    if (template === undefined) {
      template = compile()
      this.#findTemplates.set(spec, template)
    }
    return template
  }

  /** An apex table's columns if already read (the common, synchronous case). */
  knownApexColumns(table: string): ApexColumns | undefined {
    return this.#knownColumns.get(table)
  }

  /** The column names of an apex table, read once per instance (`tableColumnsQuery`) for joined includes. */
  apexColumns(table: string, apex: Kysely<any>): Promise<ApexColumns> {
    let columns = this.#columns.get(table)
    if (columns === undefined) {
      columns = tableColumnsQuery(table)
        .execute(apex)
        .then((result) => {
          if (result.rows.length === 0) {
            throw new InvalidOptionsError(
              `The apex table "${table}" does not exist (or has no columns); run shard.migrate.apex() first.`,
            )
          }
          const read = Object.freeze({
            names: Object.freeze(result.rows.map((row) => row.name)),
            version: ++this.#columnsVersion,
          })
          this.#knownColumns.set(table, read)
          return read
        })
      this.#columns.set(table, columns)
      columns.catch(() => this.#columns.delete(table))
    }
    return columns
  }

  /** Forgets an apex table's columns (after a statement using them failed: the schema may have changed). */
  forgetColumns(table: string): void {
    this.#columns.delete(table)
    this.#knownColumns.delete(table)
  }

  /**
   * A function that nests joined rows, generated once per statement and row
   * shape: object literals with fixed keys, as a hand-written mapping would be.
   */
  nester(
    template: PreparedTemplate,
    first: Record<string, unknown>,
    joins: readonly { readonly name: string; readonly columns: ApexColumns; readonly target: ModelSpec }[],
  ): Nester {
    const keys = Object.keys(first)
    const signature = keys.join('\u0000')
    const cached = this.#nesters.get(template)
    if (cached !== undefined && cached.signature === signature) return cached.nest
    const joined = new Set<string>()
    joins.forEach((join, j) => {
      for (const column of join.columns.names) joined.add(joinedAlias(j, column))
    })
    const q = JSON.stringify
    const fields = keys.filter((key) => !joined.has(key)).map((key) => `${q(key)}: r[${q(key)}]`)
    joins.forEach((join, j) => {
      const related = join.columns.names.map((column) => `${q(column)}: r[${q(joinedAlias(j, column))}]`)
      const key = q(joinedAlias(j, join.target.primaryKey))
      fields.push(`${q(join.name)}: r[${key}] === null ? null : { ${related.join(', ')} }`)
    })
    // Column names are only ever embedded as JSON string literals.
    const nest = new Function(
      'rows',
      `const out = new Array(rows.length)\nfor (let i = 0; i < rows.length; i++) { const r = rows[i]; out[i] = { ${fields.join(', ')} } }\nreturn out`,
    ) as Nester
    this.#nesters.set(template, { signature, nest })
    return nest
  }
}

/**
 * Checks the `models` option and freezes it into specs. Errors name the model
 * and the relation: unknown target models, apex → tenanted relations, two
 * models on one table, malformed relation entries.
 */
export function createModelRegistry(models: unknown, plugins: readonly KyselyPlugin[]): ModelRegistry | null {
  if (models === undefined) return null
  if (typeof models !== 'object' || models === null || Array.isArray(models)) {
    throw new InvalidOptionsError(
      "options.models must be an object of declarations, e.g. { Account: apex('accounts'), Document: tenanted('documents') }.",
    )
  }
  const entries = Object.entries(models)
  for (const [name, decl] of entries) {
    if (!isModelDeclaration(decl)) {
      throw new InvalidOptionsError(
        `models.${name} is not a model declaration: declare it with apex('table') or tenanted('table') from @shardines/core.`,
      )
    }
    if (name.includes('.')) {
      throw new InvalidOptionsError(`Model name "${name}" may not contain "."; include paths use it as a separator.`)
    }
  }
  const tables = new Map<string, string>()
  for (const [name, decl] of entries) {
    if (!isModelDeclaration(decl)) continue
    const key = `${decl.kind}:${decl.table}`
    const other = tables.get(key)
    if (other !== undefined) {
      throw new InvalidOptionsError(
        `Models ${other} and ${name} both use the ${decl.kind} table "${decl.table}"; declare each table once and give it all its relations.`,
      )
    }
    tables.set(key, name)
  }
  const specs = new Map<string, ModelSpec>()
  for (const [name, decl] of entries) {
    if (!isModelDeclaration(decl)) continue
    const relations = new Map<string, RelationSpec>()
    for (const kind of RELATION_KINDS) {
      const map = decl[kind] as unknown
      if (typeof map !== 'object' || map === null || Array.isArray(map)) {
        throw new InvalidOptionsError(
          `Model ${name}: ${kind} must be an object like { name: ['Model', 'foreign_key'] }, not ${JSON.stringify(map)}.`,
        )
      }
      for (const [relation, target] of Object.entries(map)) {
        const where = `Model ${name}, ${kind} relation "${relation}"`
        if (relation.includes('.')) {
          throw new InvalidOptionsError(`${where}: a relation name may not contain "." (include paths use it).`)
        }
        if (relations.has(relation)) {
          throw new InvalidOptionsError(`${where}: the name is already used by its ${relations.get(relation)?.kind}.`)
        }
        if (
          !Array.isArray(target) ||
          target.length !== 2 ||
          typeof target[0] !== 'string' ||
          typeof target[1] !== 'string' ||
          target[1] === ''
        ) {
          throw new InvalidOptionsError(`${where}: expected ['Model', 'foreign_key'], got ${JSON.stringify(target)}.`)
        }
        const [targetName, foreignKey] = target as [string, string]
        const targetDecl = (models as Record<string, unknown>)[targetName]
        if (!Object.hasOwn(models, targetName) || !isModelDeclaration(targetDecl)) {
          throw new InvalidOptionsError(
            `${where} points at unknown model "${targetName}"; the models are ${entries.map(([n]) => n).join(', ')}.`,
          )
        }
        if (decl.kind === 'apex' && targetDecl.kind === 'tenanted') {
          throw new InvalidOptionsError(
            `${where} points at the tenanted model ${targetName}: an apex row is shared by every tenant, so its ${targetName} rows would live in one file per tenant and no single query (or single database) can load them. Declare the relation on the tenanted side instead (e.g. ${targetName} belongsTo ${name}).`,
          )
        }
        relations.set(relation, Object.freeze({ name: relation, kind, target: targetName, foreignKey }))
      }
    }
    specs.set(name, Object.freeze({ name, kind: decl.kind, table: decl.table, primaryKey: decl.primaryKey, relations }))
  }
  return new ModelRegistry(specs, plugins)
}
