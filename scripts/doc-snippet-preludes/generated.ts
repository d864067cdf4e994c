// Prelude `generated`: the header of a file `shardines codegen` writes (an excerpt shows only its interfaces).
import type { ColumnType } from 'kysely'

export type Generated<T> =
  T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>
