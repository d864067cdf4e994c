import {
  type AttachedNames,
  mentionsAttached,
  type PragmaParts,
  pragmaParts,
  qualifiedNamesIn,
  qualifiersIn,
  statementHead,
  tokenize,
} from './sql-tokens.js'

/**
 * What a statement does, as bits of {@link StatementVerdict.flags}. Read from
 * SQLite's compiled program (`EXPLAIN`), never from the SQL text, except for
 * pragmas, which act while they are prepared and so are judged from their
 * text before SQLite sees them.
 */
export const Does = Object.freeze({
  /** Writes the connection's own database (data or schema). */
  WRITE_MAIN: 1,
  /** Writes the connection's `temp` database (temp tables, triggers, views). */
  WRITE_TEMP: 2,
  /** Writes an attached database (`Transaction p1>=2 p2>=1`, a temp trigger's write included). */
  WRITE_ATTACHED: 4,
  /** Opens an attached database whose name the SQL never writes as a qualifier (fall-through). */
  READ_UNNAMED: 8,
  ATTACH: 16,
  DETACH: 32,
  /** `VACUUM INTO <file>`: writes a file anywhere on disk. */
  VACUUM_INTO: 64,
  /** A pragma that is not on the read-only list, or any pragma given a value. */
  PRAGMA: 128,
  /** `BEGIN` / `COMMIT` / `ROLLBACK` / `SAVEPOINT` / `RELEASE`: the connection's transaction state. */
  TRANSACTION: 256,
  /** Changes a schema (create/drop/alter): cached statements and verdicts must be dropped after it runs. */
  SCHEMA_CHANGE: 512,
  /** Calls a function that reaches outside the database (`load_extension`). */
  FUNCTION: 1024,
  /** `VACUUM` (rebuilds a database in place). */
  VACUUM: 2048,
  /**
   * The verdict holds for this run only: a DDL statement (`create`, `drop`,
   * `alter`, `reindex`, `analyze`, `vacuum`) compiles to a different program
   * depending on the schema (`drop table if exists t` is a no-op while `t` is
   * missing, and drops whatever `t` resolves to once it exists), so it is
   * judged, prepared and shared anew every time it runs.
   */
  JUDGE_EACH_RUN: 4096,
})

/** A statement's verdict: what it does, computed once per handle and SQL and cached with the statement. */
export interface StatementVerdict {
  readonly sql: string
  /** Bits of {@link Does}. */
  readonly flags: number
  /** Attached schemas the statement writes. */
  readonly written: readonly string[]
  /** Attached schemas the statement reads without naming them. */
  readonly unnamed: readonly string[]
  /** The pragma's name, for a refused pragma. */
  readonly pragma: string | undefined
  /** The function's name, for a refused function call. */
  readonly fn: string | undefined
}

/** One instruction of a compiled program, as `EXPLAIN` lists it. */
export interface ProgramStep {
  readonly opcode: string
  readonly p1: number
  readonly p2: number
  readonly p3: number
  readonly p4: unknown
}

/**
 * What an adapter gives the guard about one statement: its compiled program,
 * and the names of the connection's databases by index (0 `main`, 1 `temp`,
 * then attached ones). Only called for statements that are not pragmas.
 */
export interface ProgramReader {
  explain(sql: string): readonly ProgramStep[]
  databases(): readonly (string | undefined)[]
  /**
   * Optional, with {@link statementKind}: true when the connection has
   * nothing attached and nothing in `temp`. Then every name resolves in
   * `main`, and a read or a data write can touch `main` alone, so its verdict
   * needs no `EXPLAIN` (see {@link judgeStatement}).
   */
  clean?(): boolean
  /**
   * Optional: prepares `sql` (never a pragma) and says whether it returns
   * rows (`reader`) and whether it writes nothing (`sqlite3_stmt_readonly`).
   */
  statementKind?(sql: string): { readonly reader: boolean; readonly readonly: boolean }
  /**
   * Optional, with {@link statementKind}: for a connection that is not clean,
   * the attached databases' names and the names of every object in them, as
   * SQLite will resolve the statement now (read after checking each of those
   * databases' schema version), and whether temp holds objects. Undefined
   * when temp holds a view (which may read any database under any name), or
   * when the adapter would rather have the program read.
   */
  attachedNames?(): AttachedNames | undefined
  /**
   * Optional: the objects of the database at `index` (its `sqlite_master`), so
   * the guard can tell which table each opened b-tree belongs to. Without it,
   * an attached database counts as named when the SQL names it at all.
   */
  schemaObjects?(index: number): readonly SchemaObject[]
}

/** One row of a database's `sqlite_master`. */
export interface SchemaObject {
  readonly type: string
  readonly name: string
  readonly tbl_name: string
  readonly rootpage: number | null
}

/**
 * Pragmas that only report, with no value (`pragma user_version`). Anything
 * else, and any pragma given a value, changes the database or the connection.
 */
const READ_PRAGMAS = new Set([
  'analysis_limit',
  'application_id',
  'auto_vacuum',
  'automatic_index',
  'busy_timeout',
  'cache_size',
  'cache_spill',
  'cell_size_check',
  'checkpoint_fullfsync',
  'collation_list',
  'compile_options',
  'data_version',
  'database_list',
  'defer_foreign_keys',
  'encoding',
  'foreign_key_check',
  'foreign_key_list',
  'foreign_keys',
  'freelist_count',
  'fullfsync',
  'function_list',
  'hard_heap_limit',
  'ignore_check_constraints',
  'index_info',
  'index_list',
  'index_xinfo',
  'integrity_check',
  'journal_mode',
  'journal_size_limit',
  'legacy_alter_table',
  'locking_mode',
  'max_page_count',
  'mmap_size',
  'module_list',
  'page_count',
  'page_size',
  'pragma_list',
  'query_only',
  'quick_check',
  'recursive_triggers',
  'reverse_unordered_selects',
  'schema_version',
  'secure_delete',
  'soft_heap_limit',
  'synchronous',
  'table_info',
  'table_list',
  'table_xinfo',
  'temp_store',
  'threads',
  'trusted_schema',
  'user_version',
  'wal_autocheckpoint',
])

/** Read-only pragmas that take an argument in parentheses (`pragma table_info('documents')`). */
const CALL_PRAGMAS = new Set([
  'foreign_key_check',
  'foreign_key_list',
  'index_info',
  'index_list',
  'index_xinfo',
  'integrity_check',
  'quick_check',
  'table_info',
  'table_list',
  'table_xinfo',
])

/** Whether a pragma only reads (the documented allow-list). */
export function isReadPragma(pragma: PragmaParts): boolean {
  if (pragma.form === 'assign') return false
  return pragma.form === 'read' ? READ_PRAGMAS.has(pragma.name) : CALL_PRAGMAS.has(pragma.name)
}

const FUNCTIONS_REFUSED = /^(load_extension)\(/
/** Any mention of a refused function in the text, however quoted or cased (a cheap, conservative test). */
const MENTIONS_REFUSED_FUNCTION = /load_extension/i
const SCHEMA_OPCODES = new Set([
  'ParseSchema',
  'DropTable',
  'DropIndex',
  'DropTrigger',
  'CreateBtree',
  'Destroy',
  'VCreate',
  'VDestroy',
  'RenameTable',
])

/** Statements whose program depends on the schema beyond their own result (see `Does.JUDGE_EACH_RUN`). */
const DDL_KEYWORDS = new Set(['create', 'drop', 'alter', 'reindex', 'analyze', 'vacuum'])

/** Statements about the connection rather than data: always judged from their program. */
const CONNECTION_KEYWORDS = new Set(['begin', 'commit', 'end', 'rollback', 'savepoint', 'release', 'attach', 'detach'])

/** A table-valued pragma function named in the text (`pragma_table_info(…)`, `"pragma_optimize"`). */
const PRAGMA_FUNCTION = /pragma_/i

const MAIN = 0
const TEMP = 1

/**
 * Judges one statement. Pragmas are judged from their text and never prepared
 * here (some act while they are prepared, even under `EXPLAIN`); an `EXPLAIN`
 * of anything else runs nothing; a read on a clean connection reads main
 * alone; every other statement is judged from its compiled program.
 *
 * On a clean connection the verdict depends on the SQL alone (every name
 * resolves in `main`, and `main`'s own triggers and views cannot reach another
 * database), so adapters may share clean verdicts between connections.
 */
export function judgeStatement(sql: string, reader: ProgramReader): StatementVerdict {
  const head = statementHead(sql)
  if (head.keyword === 'pragma') {
    const pragma = pragmaParts(head.tokens)
    const allowed = pragma !== undefined && isReadPragma(pragma)
    return verdict(sql, allowed ? 0 : Does.PRAGMA, [], [], pragma?.name ?? 'pragma', undefined)
  }
  if (head.explain) return verdict(sql, 0, [], [], undefined, undefined)
  // pragma_* table-valued functions run their pragma inside the virtual table, where the program
  // shows only a VFilter: `pragma_optimize` runs ANALYZE on every attached database. Only the
  // read-only pragmas are allowed as functions.
  if (PRAGMA_FUNCTION.test(sql)) {
    const refused = refusedPragmaFunction(sql)
    if (refused !== undefined) return verdict(sql, Does.PRAGMA, [], [], refused, undefined)
  }
  const ddl = DDL_KEYWORDS.has(head.keyword)
  const schemaDependent = ddl ? Does.SCHEMA_CHANGE | Does.JUDGE_EACH_RUN : 0
  // On a clean connection (only main, empty temp), a read touches main alone, and so does a data
  // write (insert/update/delete: main's own triggers write main only; temp is empty). Neither can
  // attach, control transactions or fall through: those statements write nothing and return no
  // rows (ATTACH, BEGIN, SAVEPOINT), and DDL and VACUUM are judged from their program every run.
  if (
    !ddl &&
    !CONNECTION_KEYWORDS.has(head.keyword) &&
    !MENTIONS_REFUSED_FUNCTION.test(sql) &&
    reader.statementKind !== undefined
  ) {
    if (reader.clean?.() === true) {
      const kind = reader.statementKind(sql)
      if (kind.readonly && kind.reader) return verdict(sql, 0, [], [], undefined, undefined)
      if (!kind.readonly) return verdict(sql, Does.WRITE_MAIN, [], [], undefined, undefined)
    } else {
      // Something attached, or objects in temp. A name the SQL writes unqualified resolves in temp,
      // then main, then the attached databases. If none of those names is an attached object's (and
      // temp holds no view), none can fall through: a read touches main, temp tables and what it names as
      // `schema.object` (a view of an attached database reads that database only). A write that names
      // no attached schema either, with temp empty (no temp trigger to fire), touches main alone:
      // main's triggers, views and foreign keys reach main only.
      const names = reader.attachedNames?.()
      const mention = names === undefined ? 'unqualified' : mentionsAttached(sql, names)
      if (names !== undefined && mention !== 'unqualified') {
        const kind = reader.statementKind(sql)
        if (kind.readonly && kind.reader) return verdict(sql, 0, [], [], undefined, undefined)
        if (!kind.readonly && mention === 'none' && !names.tempObjects)
          return verdict(sql, Does.WRITE_MAIN, [], [], undefined, undefined)
      }
    }
  }

  const program = reader.explain(sql)
  let flags = 0
  const touched = new Set<number>()
  const written = new Set<number>()
  /** Root pages opened per attached database, to name the tables a statement reads there. */
  const roots = new Map<number, Set<number>>()
  let fn: string | undefined
  for (const step of program) {
    switch (step.opcode) {
      case 'Transaction':
        touched.add(step.p1)
        if (step.p2 !== 0) written.add(step.p1)
        break
      case 'OpenRead':
      case 'ReopenIdx':
        touched.add(step.p3)
        if (step.p3 > TEMP) rootsOf(roots, step.p3).add(step.p2)
        break
      case 'OpenWrite':
        touched.add(step.p3)
        written.add(step.p3)
        if (step.p3 > TEMP) rootsOf(roots, step.p3).add(step.p2)
        break
      case 'Function':
      case 'PureFunc': {
        const name = typeof step.p4 === 'string' ? step.p4 : ''
        if (name.startsWith('sqlite_attach(')) flags |= Does.ATTACH
        else if (name.startsWith('sqlite_detach(')) flags |= Does.DETACH
        else if (FUNCTIONS_REFUSED.test(name)) {
          flags |= Does.FUNCTION
          fn = name.slice(0, name.indexOf('('))
        }
        break
      }
      case 'Vacuum':
        if (step.p2 !== 0) flags |= Does.VACUUM_INTO
        else {
          flags |= Does.VACUUM
          written.add(step.p1)
        }
        break
      case 'AutoCommit':
      case 'Savepoint':
        flags |= Does.TRANSACTION
        break
      case 'JournalMode':
        // p3 is the new mode; -1 only queries it (SQLite emits that for `drop table if exists` of no table).
        if (step.p3 !== -1) flags |= Does.PRAGMA
        break
      default:
        if (SCHEMA_OPCODES.has(step.opcode)) flags |= Does.SCHEMA_CHANGE
    }
  }
  flags |= schemaDependent
  // BEGIN IMMEDIATE lists a write of every database; it is refused as transaction control, not as writes.
  if ((flags & Does.TRANSACTION) !== 0) return verdict(sql, flags, [], [], undefined, fn)

  const names = touched.size > 0 || written.size > 0 ? reader.databases() : []
  const writtenAttached: string[] = []
  for (const index of written) {
    if (index === MAIN) flags |= Does.WRITE_MAIN
    else if (index === TEMP) flags |= Does.WRITE_TEMP
    else {
      flags |= Does.WRITE_ATTACHED
      writtenAttached.push(names[index] ?? `#${index}`)
    }
  }
  const unnamed: string[] = []
  const attachedTouched = [...touched].filter((index) => index > TEMP)
  if (attachedTouched.length > 0) {
    const qualifiers = qualifiersIn(sql)
    const pairs = qualifiedNamesIn(sql)
    for (const index of attachedTouched) {
      const name = names[index] ?? `#${index}`
      const schema = name.toLowerCase()
      if (!qualifiers.has(schema) || !namesEveryTable(reader, index, schema, roots.get(index), pairs))
        unnamed.push(name)
    }
    if (unnamed.length > 0) flags |= Does.READ_UNNAMED
  }
  return verdict(sql, flags, writtenAttached, unnamed, undefined, fn)
}

/** The first `pragma_<name>` function the text calls whose pragma is not a read-only report, if any. */
function refusedPragmaFunction(sql: string): string | undefined {
  for (const token of tokenize(sql)) {
    if (token.kind !== 'word' && token.kind !== 'quoted') continue
    const name = token.text.toLowerCase()
    if (!name.startsWith('pragma_')) continue
    const pragma = name.slice('pragma_'.length)
    if (!READ_PRAGMAS.has(pragma) && !CALL_PRAGMAS.has(pragma)) return pragma
  }
  return undefined
}

function rootsOf(roots: Map<number, Set<number>>, index: number): Set<number> {
  let set = roots.get(index)
  if (set === undefined) {
    set = new Set()
    roots.set(index, set)
  }
  return set
}

/**
 * Whether the SQL names, as `schema.table`, every table of an attached
 * database whose b-trees the program opens (an index counts as its table).
 * A table reached through a view the SQL names counts as named: a view in an
 * attached database reads only that database.
 */
function namesEveryTable(
  reader: ProgramReader,
  index: number,
  schema: string,
  opened: ReadonlySet<number> | undefined,
  pairs: ReadonlySet<string>,
): boolean {
  if (opened === undefined || opened.size === 0 || reader.schemaObjects === undefined) return true
  const objects = reader.schemaObjects(index)
  for (const object of objects) {
    if (object.type === 'view' && pairs.has(`${schema}.${object.name.toLowerCase()}`)) return true
  }
  for (const root of opened) {
    const table = root === 1 ? 'sqlite_master' : objects.find((o) => o.rootpage === root)?.tbl_name.toLowerCase()
    if (table === undefined) return false
    if (pairs.has(`${schema}.${table}`)) continue
    if (table === 'sqlite_master' && (pairs.has(`${schema}.sqlite_schema`) || pairs.has(`${schema}.sqlite_master`)))
      continue
    return false
  }
  return true
}

function verdict(
  sql: string,
  flags: number,
  written: readonly string[],
  unnamed: readonly string[],
  pragma: string | undefined,
  fn: string | undefined,
): StatementVerdict {
  return Object.freeze({ sql, flags, written, unnamed, pragma, fn })
}
