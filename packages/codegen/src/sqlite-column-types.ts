import {
  Adapter,
  DatabaseMetadata,
  type Definitions,
  type ExpressionNode,
  type GeneratorDialect,
  GenericExpressionNode,
  IdentifierNode,
  JSON_ARRAY_DEFINITION,
  JSON_OBJECT_DEFINITION,
  JSON_PRIMITIVE_DEFINITION,
  JSON_VALUE_DEFINITION,
  type Scalars,
  SqliteIntrospectorDialect,
} from 'kysely-codegen'

/**
 * How columns declared `DATE`, `DATETIME`, `TIMESTAMP` or `TIME` are typed.
 * better-sqlite3 never converts them: `'string'` (the default) is right for ISO
 * text such as `CURRENT_TIMESTAMP`; `'number'` for epoch numbers you store yourself.
 */
export type DateHandling = 'string' | 'number'

/**
 * How columns declared `JSON` are typed. `'string'` (the default) is the raw
 * text better-sqlite3 returns; `'parsed'` types reads as `JsonValue` and writes
 * as `string` (`ColumnType<JsonValue, string, string>`), for apps that add Kysely's
 * `ParseJSONResultsPlugin` and `JSON.stringify` on write.
 */
export type JsonHandling = 'string' | 'parsed'

/**
 * The type kinds columns are normalised to before kysely-codegen serializes
 * them. SQLite accepts any declared type and derives an affinity from it
 * (https://www.sqlite.org/datatype3.html §3.1); kysely-codegen only knows a
 * few exact names and types everything else (`varchar(20)`, `decimal(10,2)`,
 * `bigint`) as `string`.
 */
type Kind = 'integer' | 'text' | 'blob' | 'real' | 'numeric' | 'any' | 'boolean' | 'date' | 'json'

/** The SQLite affinity rules, in SQLite's order, with the date/JSON/boolean names singled out first. */
export function kindOf(declaredType: string): Kind {
  const type = declaredType.trim().toUpperCase()
  if (/^(DATE|DATETIME|TIMESTAMP|TIME)\b/.test(type)) return 'date'
  if (/^JSONB?\b/.test(type)) return type.startsWith('JSONB') ? 'blob' : 'json'
  if (/^(BOOLEAN|BOOL)\b/.test(type)) return 'boolean'
  if (type.includes('INT')) return 'integer'
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return 'text'
  if (type === '' || type === 'ANY') return 'any'
  if (type.includes('BLOB')) return 'blob'
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return 'real'
  return 'numeric'
}

/** Like kysely-codegen's `SqliteAdapter`, with a type for every {@link Kind}. */
class ShardinesSqliteAdapter extends Adapter {
  override readonly defaultScalar: ExpressionNode = new IdentifierNode('unknown')
  override readonly scalars: Scalars
  override readonly definitions: Definitions

  constructor(dates: DateHandling, json: JsonHandling) {
    super()
    const number = new IdentifierNode('number')
    const string = new IdentifierNode('string')
    // Not JSONColumnType<JsonValue>: Kysely 0.28 constrains its select type to `object | null`.
    const jsonType: ExpressionNode =
      json === 'parsed'
        ? new GenericExpressionNode('ColumnType', [new IdentifierNode('JsonValue'), string, string])
        : string
    this.scalars = {
      integer: number,
      real: number,
      numeric: number,
      // better-sqlite3 returns 0/1 and refuses to bind JS booleans.
      boolean: number,
      text: string,
      blob: new IdentifierNode('Buffer'),
      any: new IdentifierNode('unknown'),
      date: dates === 'number' ? number : string,
      json: jsonType,
    }
    this.definitions =
      json === 'parsed'
        ? {
            JsonArray: JSON_ARRAY_DEFINITION,
            JsonObject: JSON_OBJECT_DEFINITION,
            JsonPrimitive: JSON_PRIMITIVE_DEFINITION,
            JsonValue: JSON_VALUE_DEFINITION,
          }
        : {}
  }
}

/** kysely-codegen's SQLite dialect (its introspector) with the adapter above. */
export class ShardinesSqliteDialect extends SqliteIntrospectorDialect implements GeneratorDialect {
  readonly adapter: Adapter

  constructor(dates: DateHandling, json: JsonHandling) {
    super()
    this.adapter = new ShardinesSqliteAdapter(dates, json)
  }
}

/** Kysely's own bookkeeping tables: never part of the app's schema. */
const INTERNAL_TABLES: ReadonlySet<string> = new Set(['kysely_migration', 'kysely_migration_lock'])

/**
 * The postprocess step between introspection and serialization:
 * - drops Kysely's migration tables (Kysely's introspector already skips them
 *   under their default names; this keeps them out whatever introspects);
 * - normalises declared types to a {@link Kind};
 * - types a rowid alias (`INTEGER PRIMARY KEY`) as never null. Kysely's
 *   introspector reports it nullable because `PRAGMA table_info` gives
 *   `notnull = 0`, which would make the row type `number | null`; SQLite
 *   assigns a rowid whenever NULL is inserted, so a read never sees NULL. It
 *   stays `Generated` (optional on insert);
 * - an untyped column is `unknown`, not `unknown | null`.
 */
export function normaliseMetadata(metadata: DatabaseMetadata): DatabaseMetadata {
  const tables = metadata.tables
    .filter((table) => !INTERNAL_TABLES.has(table.name))
    .map((table) => ({
      name: table.name,
      schema: table.schema,
      isView: table.isView,
      isPartition: table.isPartition,
      columns: table.columns.map((column) => {
        const kind = kindOf(column.dataType)
        const rowidAlias = !table.isView && column.isAutoIncrementing && kind === 'integer'
        return {
          name: column.name,
          dataType: kind,
          comment: column.comment,
          enumValues: column.enumValues,
          isArray: column.isArray,
          hasDefaultValue: column.hasDefaultValue,
          isAutoIncrementing: column.isAutoIncrementing,
          // `unknown` already includes null.
          isNullable: column.isNullable && !rowidAlias && kind !== 'any',
        }
      }),
    }))
  return new DatabaseMetadata({ enums: metadata.enums, tables })
}
