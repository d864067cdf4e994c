import type { NotesShard } from './shard.js'

type TenantKysely = ReturnType<NotesShard['db']>

/** A note as the API returns it, with its author from apex. */
export interface NoteView {
  id: number
  title: string
  body: string
  createdAt: string
  updatedAt: string
  comments: number
  author: { id: number; name: string; email: string } | null
}

export interface CommentView {
  id: number
  noteId: number
  body: string
  createdAt: string
  author: { id: number; name: string; email: string } | null
}

/**
 * Notes with their author: `notes` lives in the tenant's file and `accounts` in
 * apex, so this one query runs with apex ATTACHed (read-only) to the tenant's
 * connection.
 *
 * ```sql
 * select n.id, …, a.name as author_name … from main.notes as n
 * left join apex.accounts as a on a.id = n.author_id
 * ```
 */
export function notesWithAuthor(db: TenantKysely) {
  return db
    .selectFrom('notes as n')
    .leftJoin('apex.accounts as a', 'a.id', 'n.author_id')
    .select((eb) => [
      'n.id',
      'n.title',
      'n.body',
      'n.created_at',
      'n.updated_at',
      'n.author_id',
      'a.name as author_name',
      'a.email as author_email',
      eb
        .selectFrom('comments as c')
        .select(eb.fn.countAll<number>().as('n'))
        .whereRef('c.note_id', '=', 'n.id')
        .as('comment_count'),
    ])
}

type NoteRow = Awaited<ReturnType<ReturnType<typeof notesWithAuthor>['executeTakeFirstOrThrow']>>

export function toNoteView(row: NoteRow): NoteView {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    comments: Number(row.comment_count ?? 0),
    author:
      row.author_name === null || row.author_email === null
        ? null
        : { id: row.author_id, name: row.author_name, email: row.author_email },
  }
}

/** Comments of a note with their authors from apex (one ATTACH join). */
export async function commentsOf(db: TenantKysely, noteId: number): Promise<CommentView[]> {
  const rows = await db
    .selectFrom('comments as c')
    .leftJoin('apex.accounts as a', 'a.id', 'c.author_id')
    .select(['c.id', 'c.note_id', 'c.body', 'c.created_at', 'c.author_id', 'a.name', 'a.email'])
    .where('c.note_id', '=', noteId)
    .orderBy('c.id')
    .execute()
  return rows.map((r) => ({
    id: r.id,
    noteId: r.note_id,
    body: r.body,
    createdAt: r.created_at,
    author: r.name === null || r.email === null ? null : { id: r.author_id, name: r.name, email: r.email },
  }))
}
