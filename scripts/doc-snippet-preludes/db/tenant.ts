/**
 * TenantDB of the app the docs' snippets are written against (`import type { TenantDB } from './db/tenant.js'`),
 * in the shape `shardines codegen` writes: documents with comments and settings, and notes (docs/http.md).
 */

import type { ColumnType } from 'kysely'

export type Generated<T> =
  T extends ColumnType<infer S, infer I, infer U> ? ColumnType<S, I | undefined, U> : ColumnType<T, T | undefined, T>

export interface Comments {
  author_id: number | null
  body: string
  document_id: number
  id: Generated<number>
}

export interface DocumentSettings {
  document_id: number
  id: Generated<number>
}

export interface Documents {
  id: Generated<number>
  owner_id: number | null
  status: Generated<string>
  title: string
}

export interface Notes {
  body: Generated<string>
  id: Generated<number>
  title: string
}

export interface TenantDB {
  comments: Comments
  document_settings: DocumentSettings
  documents: Documents
  notes: Notes
}
