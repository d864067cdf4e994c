import type { Kysely, KyselyPlugin, SelectQueryBuilder } from 'kysely'
import { InvalidOptionsError, NoTenantError } from '../errors.js'
import {
  compilePrepared,
  type Params,
  type PreparedRunner,
  type PreparedTemplate,
  runRows,
} from '../prepared/prepared-query.js'
import type { ApexColumns, ModelBinding, ModelRegistry, ModelSpec } from './model-registry.js'

/**
 * How one model's table is read here: through which Kysely, and under which
 * schema. A tenanted model is read through the tenant's Kysely; an apex model
 * through apex's, or, when it is reached from a tenanted model, through the
 * tenant's Kysely as `apex.<table>` (the ATTACH compiler attaches apex).
 */
export interface Access {
  readonly db: Kysely<any>
  /** Runs compiled statements on the same handle, as the same owner, as `db` would. */
  readonly runner: PreparedRunner
  /** True when `db` is the tenant's Kysely (so apex tables can be joined as `apex.<table>`). */
  readonly viaTenant: boolean
  readonly schema: 'apex' | undefined
  /** True when `db` is the tenant's Kysely and its storage attaches, so apex can be read as `apex.<table>`. */
  readonly attachesApex: boolean
}

/**
 * The variable part of a read: conditions, order, window. `key` names the SQL
 * it compiles to (values excluded), so the statement is compiled once per key
 * and later calls only bind `args` (the prepared-query path).
 */
export interface Shape {
  readonly key: string
  readonly args: Readonly<Record<string, unknown>>
  apply(query: AnyQuery, p: Params<any>): AnyQuery
}

/** Relation name → nested includes. */
export type IncludeTree = ReadonlyMap<string, IncludeTree>

export interface LoadContext {
  readonly registry: ModelRegistry
  readonly binding: ModelBinding
}

type AnyQuery = SelectQueryBuilder<any, any, any>
type Row = Record<string, unknown>

/** The alias of the model's own table in every statement the model layer builds. */
export const MAIN = '__m'

/** Keys per `in (…)` list: well under SQLite's 32,766 bound parameters. */
const BATCH = 5000

/** Where a model's own statements go: tenanted → the scope's tenant, apex → apex (even inside a scope). */
export function ownAccess(spec: ModelSpec, binding: ModelBinding): Access {
  if (spec.kind === 'apex') {
    return {
      db: binding.apex.db(),
      runner: binding.apex.runner,
      viaTenant: false,
      schema: undefined,
      attachesApex: false,
    }
  }
  if (binding.tenant === null) throw new NoTenantError(`the tenanted model ${spec.name}`)
  return {
    db: binding.tenant.db(),
    runner: binding.tenant.runner,
    viaTenant: true,
    schema: undefined,
    attachesApex: binding.tenant.attachesApex,
  }
}

function targetAccess(from: Access, target: ModelSpec, binding: ModelBinding): Access {
  if (target.kind === 'tenanted') return ownAccess(target, binding)
  if (from.attachesApex) return { ...from, schema: 'apex' }
  return {
    db: binding.apex.db(),
    runner: binding.apex.runner,
    viaTenant: false,
    schema: undefined,
    attachesApex: false,
  }
}

/** Runs a template with `args` on the access's handle and returns its rows (result plugins applied). */
export function runTemplate(
  access: Access,
  template: PreparedTemplate,
  args: Readonly<Record<string, unknown>>,
): Promise<Row[]> {
  return runRows<Row>(access.runner, template, args)
}

/** Parses `include('comments', 'comments.author')` into a tree, naming the model and its relations on a typo. */
export function parseIncludes(
  registry: ModelRegistry,
  spec: ModelSpec,
  names: readonly unknown[],
  into: Map<string, Map<string, any>>,
): void {
  for (const name of names) {
    if (typeof name !== 'string' || name === '') {
      throw new InvalidOptionsError(
        `${spec.name}.include(...names): each name must be a relation name or a dotted path.`,
      )
    }
    let model = spec
    let level = into
    for (const part of name.split('.')) {
      const relation = model.relations.get(part)
      if (relation === undefined) {
        const known = [...model.relations.keys()]
        throw new InvalidOptionsError(
          `${spec.name}.include('${name}'): model ${model.name} has no relation "${part}" (its relations: ${known.join(', ') || 'none'}).`,
        )
      }
      let next = level.get(part)
      if (next === undefined) {
        next = new Map()
        level.set(part, next)
      }
      level = next
      model = registry.spec(relation.target)
    }
  }
}

interface Join {
  readonly name: string
  readonly target: ModelSpec
  readonly foreignKey: string
  readonly columns: ApexColumns
  readonly tree: IncludeTree
}

/** The tree of include paths as a canonical string (part of a statement's cache key). */
export function treeKey(tree: IncludeTree | undefined): string {
  if (tree === undefined || tree.size === 0) return ''
  let key = ''
  for (const [name, sub] of tree) key += sub.size === 0 ? `${name},` : `${name}(${treeKey(sub)}),`
  return key
}

/**
 * Reads rows of `spec` with `shape` applied (conditions, order, limit) and the
 * includes of `tree` attached. A tenanted → apex `belongsTo` is a left join in
 * the same statement; every other relation is one batched `in (…)` statement.
 * Each statement is compiled once per shape and then only bound and run.
 */
export async function loadRows(
  ctx: LoadContext,
  spec: ModelSpec,
  access: Access,
  shape: Shape,
  tree: IncludeTree | undefined,
): Promise<Row[]> {
  const { registry } = ctx
  let joins: Join[] | undefined
  let key = `${access.viaTenant ? 'tenant' : 'apex'}:${access.schema ?? 'main'}.${spec.table}|${shape.key}`
  // Result plugins (e.g. CamelCasePlugin) rename the joined columns' aliases, so with
  // them every relation is loaded by a batched statement instead (still through ATTACH).
  if (tree !== undefined && access.attachesApex && !registry.transformsResults) {
    for (const [name, sub] of tree) {
      const relation = spec.relations.get(name)!
      const target = registry.spec(relation.target)
      if (relation.kind !== 'belongsTo' || target.kind !== 'apex') continue
      const columns =
        registry.knownApexColumns(target.table) ?? (await registry.apexColumns(target.table, ctx.binding.apex.db()))
      joins ??= []
      joins.push({ name, target, foreignKey: relation.foreignKey, columns, tree: sub })
      key += `|join ${name}@${columns.version}`
    }
  }
  const template = registry.template(key, () => compileRead(access, spec, joins, shape, registry.plugins))
  let rows: Row[]
  try {
    rows = await runTemplate(access, template, shape.args)
  } catch (error) {
    // A column list read before apex was migrated again may be stale: read it afresh next time.
    if (joins !== undefined) for (const join of joins) registry.forgetColumns(join.target.table)
    throw error
  }
  if (joins !== undefined && rows.length > 0) rows = registry.nester(template, rows[0] as Row, joins)(rows)
  if (tree !== undefined) {
    await attachRelations(ctx, spec, access, rows, tree, joins)
    if (joins !== undefined) {
      for (const join of joins) {
        if (join.tree.size === 0) continue
        const children = present(rows.map((row) => row[join.name] as Row | null))
        if (children.length > 0) {
          await attachRelations(
            ctx,
            join.target,
            targetAccess(access, join.target, ctx.binding),
            children,
            join.tree,
            undefined,
          )
        }
      }
    }
  }
  return rows
}

/** Column aliases of joined relation `j`: `__r0_email`. */
export function joinedAlias(j: number, column: string): string {
  return `__r${j}_${column}`
}

function compileRead(
  access: Access,
  spec: ModelSpec,
  joins: readonly Join[] | undefined,
  shape: Shape,
  plugins: readonly KyselyPlugin[],
): PreparedTemplate {
  return compilePrepared(
    access.db,
    (db: Kysely<any>, p) => {
      const table = access.schema === undefined ? spec.table : `${access.schema}.${spec.table}`
      let query: AnyQuery = db.selectFrom(`${table} as ${MAIN}`).selectAll(MAIN)
      joins?.forEach((join, j) => {
        const alias = `__j${j}`
        query = query
          .leftJoin(
            `apex.${join.target.table} as ${alias}`,
            `${alias}.${join.target.primaryKey}`,
            `${MAIN}.${join.foreignKey}`,
          )
          .select(join.columns.names.map((column) => `${alias}.${column} as ${joinedAlias(j, column)}`))
      })
      return shape.apply(query, p)
    },
    plugins,
  )
}

function present(rows: readonly (Row | null)[]): Row[] {
  const out: Row[] = []
  for (const row of rows) if (row !== null) out.push(row)
  return out
}

async function attachRelations(
  ctx: LoadContext,
  spec: ModelSpec,
  access: Access,
  rows: Row[],
  tree: IncludeTree,
  joined: readonly Join[] | undefined,
): Promise<void> {
  for (const [name, sub] of tree) {
    if (joined?.some((join) => join.name === name)) continue
    const relation = spec.relations.get(name)!
    const target = ctx.registry.spec(relation.target)
    const to = targetAccess(access, target, ctx.binding)
    if (relation.kind === 'belongsTo') {
      const keys = uniqueKeys(rows, relation.foreignKey)
      const related = keys.length === 0 ? [] : await loadBatched(ctx, target, to, target.primaryKey, keys, sub)
      const byKey = new Map<unknown, Row>()
      for (const row of related) byKey.set(row[target.primaryKey], row)
      for (const row of rows) row[name] = byKey.get(row[relation.foreignKey]) ?? null
    } else {
      const keys = uniqueKeys(rows, spec.primaryKey)
      const related = keys.length === 0 ? [] : await loadBatched(ctx, target, to, relation.foreignKey, keys, sub)
      const groups = new Map<unknown, Row[]>()
      for (const row of related) {
        const key = row[relation.foreignKey]
        const group = groups.get(key)
        if (group === undefined) groups.set(key, [row])
        else group.push(row)
      }
      const many = relation.kind === 'hasMany'
      for (const row of rows) {
        const group = groups.get(row[spec.primaryKey])
        row[name] = many ? (group ?? []) : (group?.[0] ?? null)
      }
    }
  }
}

function uniqueKeys(rows: readonly Row[], column: string): unknown[] {
  const keys = new Set<unknown>()
  for (const row of rows) {
    const key = row[column]
    if (key !== null && key !== undefined) keys.add(key)
  }
  return [...keys]
}

async function loadBatched(
  ctx: LoadContext,
  spec: ModelSpec,
  access: Access,
  column: string,
  keys: readonly unknown[],
  tree: IncludeTree,
): Promise<Row[]> {
  const out: Row[] = []
  for (let i = 0; i < keys.length; i += BATCH) {
    const chunk = keys.slice(i, i + BATCH)
    const rows = await loadRows(ctx, spec, access, batchShape(spec, column, chunk), tree.size === 0 ? undefined : tree)
    for (const row of rows) out.push(row)
  }
  return out
}

function batchShape(spec: ModelSpec, column: string, keys: readonly unknown[]): Shape {
  const args: Record<string, unknown> = {}
  for (let k = 0; k < keys.length; k++) args[`k${k}`] = keys[k]
  return {
    key: `${column} in #${keys.length} order ${spec.primaryKey}`,
    args,
    apply: (query, p) =>
      query
        .where(
          `${MAIN}.${column}`,
          'in',
          keys.map((_, k) => p(`k${k}`)),
        )
        .orderBy(`${MAIN}.${spec.primaryKey}`),
  }
}
