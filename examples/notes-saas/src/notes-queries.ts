import type { NotesShard } from './shard.js'

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

const authorView = (a: { id: number; name: string; email: string } | null) =>
  a === null ? null : { id: a.id, name: a.name, email: a.email }

/**
 * The current tenant's notes, newest first, each with its author. `notes` lives
 * in the tenant's file and `accounts` in apex: `include('author')` runs as one
 * query with apex ATTACHed read-only to the tenant's connection
 * (`… from main.notes left join apex.accounts …`). Comment counts come from one
 * grouped query.
 */
export async function listNotes(shard: NotesShard, options: { limit: number; id?: number }): Promise<NoteView[]> {
  let query = shard.models.Note.orderBy('id', 'desc').limit(options.limit)
  if (options.id !== undefined) query = query.where('id', '=', options.id)
  const notes = await query.include('author').all()
  if (notes.length === 0) return []
  const counts = await shard
    .db()
    .selectFrom('comments')
    .select((eb) => ['note_id', eb.fn.countAll<number>().as('n')])
    .where(
      'note_id',
      'in',
      notes.map((n) => n.id),
    )
    .groupBy('note_id')
    .execute()
  const byNote = new Map(counts.map((c) => [c.note_id, Number(c.n)]))
  return notes.map((n) => ({
    id: n.id,
    title: n.title,
    body: n.body,
    createdAt: n.created_at,
    updatedAt: n.updated_at,
    comments: byNote.get(n.id) ?? 0,
    author: authorView(n.author),
  }))
}

/** One note of the current tenant, or `undefined`. */
export async function findNote(shard: NotesShard, id: number): Promise<NoteView | undefined> {
  return (await listNotes(shard, { limit: 1, id }))[0]
}

/** A note's comments with their authors from apex (again one ATTACH join). */
export async function commentsOf(shard: NotesShard, noteId: number): Promise<CommentView[]> {
  const rows = await shard.models.Comment.where('note_id', '=', noteId).orderBy('id').include('author').all()
  return rows.map((c) => ({
    id: c.id,
    noteId: c.note_id,
    body: c.body,
    createdAt: c.created_at,
    author: authorView(c.author),
  }))
}
