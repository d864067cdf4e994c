import type {
  CompiledQuery,
  OperationNode,
  QueryId,
  RootOperationNode,
  SchemableIdentifierNode,
  TableNode,
} from 'kysely'
import { ReadOnlyAttachmentError, UnknownSchemaError } from '../errors.js'
import { EngineQueryCompiler, LOCAL_SCHEMAS } from '../storage/sqlite-engine.js'

/** Where a compiled query records the attached schemas it needs. */
export const REQUIRED_SCHEMAS: unique symbol = Symbol('shardines.requiredSchemas')

/** A compiled query that may name attached schemas (`apex`, tenant ids). */
export interface AttachAwareCompiledQuery<R = unknown> extends CompiledQuery<R> {
  readonly [REQUIRED_SCHEMAS]?: readonly string[]
}

/** How a scope's compiler treats schemas. */
export interface AttachPolicy {
  /** Label used in error messages: the tenant id, or e.g. `withTenants(a, b)`. */
  readonly label: string | undefined
  /** Schemas a query may read (attached on demand). Anything else is refused. */
  readonly readable: ReadonlySet<string>
}

// Parents under which a TableNode names a table to read or write (as opposed to
// a column qualifier such as "d"."title", a CTE's own name, or a foreign key).
const TABLE_POSITIONS = new Set([
  'FromNode',
  'JoinNode',
  'UsingNode',
  'InsertQueryNode',
  'UpdateQueryNode',
  'MergeQueryNode',
  'DropTableNode',
  'AlterTableNode',
])

/**
 * The ATTACH compiler: Kysely's SQLite compiler plus one walk-along pass over
 * the operation-node tree it compiles anyway (no second walk, no SQL text
 * search). For each table it meets it:
 *
 * - records schemas other than `main`/`temp` (e.g. `apex` in
 *   `innerJoin('apex.accounts as a', …)`) so the connection attaches them
 *   before the statement runs;
 * - refuses a schema the scope may not read ({@link UnknownSchemaError});
 * - refuses any write or DDL aimed at an attached schema
 *   ({@link ReadOnlyAttachmentError}): insert/update/delete/merge targets,
 *   create/alter/drop of tables, indexes and views.
 *
 * Unqualified names stay unqualified, so SQLite resolves them as it always
 * does (`temp`, then `main`); the statement guard refuses a statement whose
 * unqualified name fell through to an attached database, and judges what the
 * compiler cannot see (raw SQL text, `sql.id`, `sql.raw`) from SQLite's
 * compiled program before it runs (`guard/`).
 *
 * @example
 * ```ts
 * t.db.selectFrom('documents as d').innerJoin('apex.accounts as a', 'a.id', 'd.owner_id').select(['d.title', 'a.email'])
 * // select "d"."title", "a"."email" from "documents" as "d"
 * //   inner join "apex"."accounts" as "a" on "a"."id" = "d"."owner_id"      (needs: apex)
 * ```
 */
export class AttachQueryCompiler extends EngineQueryCompiler {
  readonly #readable: ReadonlySet<string>
  #label: string | undefined
  #schemas: string[] = []

  constructor(policy: AttachPolicy) {
    super()
    this.#readable = policy.readable
    this.#label = policy.label
  }

  /**
   * Compiles `node` with `label` naming the scope in refusals: one compiler can
   * serve every tenant whose scopes read the same schemas (building one binds
   * ~100 visitor methods, about 10 µs on a cold pool miss). Compiling is
   * synchronous, so no two compilations interleave.
   */
  compileFor(label: string | undefined, node: RootOperationNode, queryId: QueryId): CompiledQuery {
    const previous = this.#label
    this.#label = label
    try {
      return this.compileQuery(node, queryId)
    } finally {
      this.#label = previous
    }
  }

  override compileQuery(node: RootOperationNode, queryId: QueryId): CompiledQuery {
    this.#schemas = []
    // A refusal thrown mid-compile leaves the nodes it was in on the stack; the compiler is
    // shared, so the next compile must not see them as parents (Kysely 0.28 clears it too).
    this.nodeStack.length = 0
    const compiled = super.compileQuery(node, queryId)
    if (this.#schemas.length === 0) return compiled
    return Object.freeze({ ...compiled, [REQUIRED_SCHEMAS]: this.#schemas })
  }

  protected override visitTable(node: TableNode): void {
    const parent = this.#tablePositionParent()
    if (parent !== undefined) {
      const schema = node.table.schema?.name
      if (schema !== undefined && !LOCAL_SCHEMAS.has(schema) && isWriteTarget(parent, this.#grandparentOf(node))) {
        throw new ReadOnlyAttachmentError(schema, node.table.identifier.name, this.#label)
      }
    } else if (node.table.schema !== undefined && this.parentNode?.kind === 'CreateTableNode') {
      this.#refuseAttachedDdl(node.table)
    }
    super.visitTable(node)
  }

  protected override visitSchemableIdentifier(node: SchemableIdentifierNode): void {
    const schema = node.schema?.name
    if (schema !== undefined && !LOCAL_SCHEMAS.has(schema)) {
      if (!this.#readable.has(schema)) {
        throw new UnknownSchemaError(schema, [...this.#readable], this.#label)
      }
      if (!this.#schemas.includes(schema)) this.#schemas.push(schema)
    }
    const parentKind = this.parentNode?.kind
    if (
      schema !== undefined &&
      (parentKind === 'DropIndexNode' || parentKind === 'DropViewNode' || parentKind === 'CreateViewNode')
    ) {
      this.#refuseAttachedDdl(node)
    }
    super.visitSchemableIdentifier(node)
  }

  #refuseAttachedDdl(node: SchemableIdentifierNode): void {
    const schema = node.schema?.name
    if (schema !== undefined && !LOCAL_SCHEMAS.has(schema)) {
      throw new ReadOnlyAttachmentError(schema, node.identifier.name, this.#label)
    }
  }

  /** The statement node under which the current TableNode names a table, if any. */
  #tablePositionParent(): OperationNode | undefined {
    const stack = this.nodeStack
    let i = stack.length - 2
    let parent = stack[i]
    if (parent?.kind === 'AliasNode') parent = stack[--i]
    // update a, b set …: Kysely accepts a list of targets (SQLite rejects the
    // syntax, but the targets are still writes and must be checked as such).
    if (parent?.kind === 'ListNode' && stack[i - 1]?.kind === 'UpdateQueryNode') parent = stack[--i]
    if (parent === undefined) return undefined
    if (TABLE_POSITIONS.has(parent.kind)) return parent
    // create index … on <table>: the table is resolved in the index's schema, so
    // it must stay unqualified; but it may not point into an attached database.
    if (parent.kind === 'CreateIndexNode') {
      const table = stack[stack.length - 1] as TableNode
      this.#refuseAttachedDdl(table.table)
    }
    return undefined
  }

  #grandparentOf(_node: TableNode): OperationNode | undefined {
    const stack = this.nodeStack
    let i = stack.length - 2
    if (stack[i]?.kind === 'AliasNode') i--
    if (stack[i]?.kind === 'ListNode' && stack[i - 1]?.kind === 'UpdateQueryNode') i--
    return stack[i - 1]
  }
}

function isWriteTarget(parent: OperationNode, grandparent: OperationNode | undefined): boolean {
  switch (parent.kind) {
    case 'InsertQueryNode':
    case 'UpdateQueryNode':
    case 'MergeQueryNode':
    case 'DropTableNode':
    case 'AlterTableNode':
      // The table directly under these nodes is their target (a FROM/USING of an
      // update or merge sits under a FromNode/UsingNode instead).
      return true
    case 'FromNode':
      return grandparent?.kind === 'DeleteQueryNode'
    default:
      return false
  }
}
