// Hand-written in the shape @shardines/codegen generates; replace with `shardines codegen` output.

import type { ColumnType } from 'kysely'

export type Generated<T> =
  T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>

export interface Comments {
  author_id: number
  body: string
  created_at: Generated<string>
  id: Generated<number>
  note_id: number
}

export interface Notes {
  author_id: number
  body: Generated<string>
  created_at: Generated<string>
  id: Generated<number>
  title: string
  updated_at: Generated<string>
}

export interface TenantDB {
  comments: Comments
  notes: Notes
}
