import type { Kysely, SelectQueryBuilder } from 'kysely'
import { InvalidOptionsError, NoTenantError } from '../errors.js'
import type { ModelBinding, ModelRegistry, ModelSpec } from './model-registry.js'

/**
 * How one model's table is read here: through which Kysely, and under which
 * schema. A tenanted model is read through the tenant's Kysely; an apex model
 * through apex's, or, when it is reached from a tenanted model, through the
 * tenant's Kysely as `apex.<table>` (the ATTACH compiler attaches apex).
 */
export interface Access {
  readonly db: Kysely<any>
  /** True when `db` is the tenant's Kysely (so apex tables can be joined as `apex.<table>`). */
  readonly viaTenant: boolean
  readonly schema: 'apex' | undefined
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
  if (spec.kind === 'apex') return { db: binding.apex.db(), viaTenant: false, schema: undefined }
  if (binding.tenant === null) throw new NoTenantError(`the tenanted model ${spec.name}`)
  return { db: binding.tenant.db(), viaTenant: true, schema: undefined }
}

function targetAccess(from: Access, target: ModelSpec, binding: ModelBinding): Access {
  if (target.kind === 'tenanted') return ownAccess(target, binding)
  if (from.viaTenant) return { db: from.db, viaTenant: true, schema: 'apex' }
  return { db: binding.apex.db(), viaTenant: false, schema: undefined }
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
  readonly columns: readonly string[]
  readonly aliases: readonly string[]
  readonly keyAlias: string
  readonly tree: IncludeTree
}

/**
 * Reads rows of `spec` with `shape` applied (conditions, order, limit) and the
 * includes of `tree` attached. A tenanted → apex `belongsTo` is a left join in
 * the same statement; every other relation is one batched `in (…)` statement.
 */
export async function loadRows(
  ctx: LoadContext,
  spec: ModelSpec,
  access: Access,
  shape: (query: AnyQuery) => AnyQuery,
  tree: IncludeTree | undefined,
): Promise<Row[]> {
  const table = access.schema === undefined ? spec.table : `${access.schema}.${spec.table}`
  let query: AnyQuery = access.db.selectFrom(`${table} as ${MAIN}`).selectAll(MAIN)
  const joins: Join[] = []
  if (tree !== undefined && access.viaTenant) {
    for (const [name, sub] of tree) {
      const relation = spec.relations.get(name)!
      const target = ctx.registry.spec(relation.target)
      if (relation.kind !== 'belongsTo' || target.kind !== 'apex') continue
      const columns = await ctx.registry.apexColumns(target.table, ctx.binding.apex.db())
      const alias = `__j${joins.length}`
      const prefix = `__r${joins.length}_`
      const aliases = columns.map((column) => `${prefix}${column}`)
      query = query
        .leftJoin(`apex.${target.table} as ${alias}`, `${alias}.${target.primaryKey}`, `${MAIN}.${relation.foreignKey}`)
        .select(columns.map((column, i) => `${alias}.${column} as ${aliases[i]}`))
      joins.push({ name, target, columns, aliases, keyAlias: `${prefix}${target.primaryKey}`, tree: sub })
    }
  }
  query = shape(query)
  let rows: Row[]
  try {
    rows = (await query.execute()) as Row[]
  } catch (error) {
    // A column list read before apex was migrated again may be stale: read it afresh next time.
    for (const join of joins) ctx.registry.forgetColumns(join.target.table)
    throw error
  }
  if (joins.length > 0) rows = nest(rows, joins)
  if (tree !== undefined) {
    await attachRelations(ctx, spec, access, rows, tree, joins)
    for (const join of joins) {
      if (join.tree.size === 0) continue
      const children = distinct(rows.map((row) => row[join.name] as Row | null))
      if (children.length > 0) {
        await attachRelations(ctx, join.target, targetAccess(access, join.target, ctx.binding), children, join.tree, [])
      }
    }
  }
  return rows
}

function distinct(rows: readonly (Row | null)[]): Row[] {
  const out: Row[] = []
  for (const row of rows) if (row !== null) out.push(row)
  return out
}

/** Turns joined rows (`__r0_email`…) into rows with the related row (or `null`) under the relation's name. */
function nest(rows: Row[], joins: readonly Join[]): Row[] {
  const first = rows[0]
  if (first === undefined) return rows
  const joined = new Set<string>()
  for (const join of joins) for (const alias of join.aliases) joined.add(alias)
  const own = Object.keys(first).filter((key) => !joined.has(key))
  const out = new Array<Row>(rows.length)
  for (let r = 0; r < rows.length; r++) {
    const raw = rows[r] as Row
    const row: Row = {}
    for (let k = 0; k < own.length; k++) {
      const key = own[k] as string
      row[key] = raw[key]
    }
    for (let j = 0; j < joins.length; j++) {
      const join = joins[j] as Join
      if (raw[join.keyAlias] === null) {
        row[join.name] = null
        continue
      }
      const related: Row = {}
      const { columns, aliases } = join
      for (let c = 0; c < columns.length; c++) related[columns[c] as string] = raw[aliases[c] as string]
      row[join.name] = related
    }
    out[r] = row
  }
  return out
}

async function attachRelations(
  ctx: LoadContext,
  spec: ModelSpec,
  access: Access,
  rows: Row[],
  tree: IncludeTree,
  joined: readonly Join[],
): Promise<void> {
  for (const [name, sub] of tree) {
    if (joined.some((join) => join.name === name)) continue
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
    const rows = await loadRows(
      ctx,
      spec,
      access,
      (query) => query.where(`${MAIN}.${column}`, 'in', chunk).orderBy(`${MAIN}.${spec.primaryKey}`),
      tree.size === 0 ? undefined : tree,
    )
    for (const row of rows) out.push(row)
  }
  return out
}
