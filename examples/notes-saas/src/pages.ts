import type { NoteView } from './notes-queries.js'

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  )
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0}.muted{color:#777;font-size:.9em}li{margin:.6rem 0}form{display:grid;gap:.5rem;margin:1.5rem 0}
input,textarea{font:inherit;padding:.4rem}button{font:inherit;width:max-content;padding:.3rem 1rem}`

/** The tenant's page: its notes (with authors from apex) and a form that posts a new note. */
export function renderTenantPage(page: { tenant: string; name: string | undefined; base: string; notes: NoteView[] }) {
  const items = page.notes
    .map(
      (n) =>
        `<li><strong>${escapeHtml(n.title)}</strong> <span class="muted">by ${escapeHtml(n.author?.name ?? 'unknown')} · ${n.comments} comment${n.comments === 1 ? '' : 's'} · ${escapeHtml(n.createdAt.slice(0, 16).replace('T', ' '))}</span>${n.body ? `<br>${escapeHtml(n.body)}` : ''}</li>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(page.name ?? page.tenant)} · notes</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(page.name ?? page.tenant)}</h1>
<p class="muted">Tenant <code>${escapeHtml(page.tenant)}</code> · ${page.notes.length} note${page.notes.length === 1 ? '' : 's'} · this page reads only this tenant's database file</p>
<form method="post" action="${escapeHtml(page.base)}/notes">
<input name="title" placeholder="Title" required maxlength="200">
<textarea name="body" placeholder="Write something…" rows="3"></textarea>
<button type="submit">Add note</button>
</form>
<ul id="notes">
${items || '<li class="muted">No notes yet.</li>'}
</ul>
</body>
</html>`
}

/** The landing page: what this server is and how to reach a tenant. */
export function renderLandingPage(tenants: { id: string; name: string }[]): string {
  const links = tenants
    .map(
      (t) =>
        `<li><a href="/t/${encodeURIComponent(t.id)}/">${escapeHtml(t.name)}</a> <code>${escapeHtml(t.id)}</code></li>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>notes-saas</title><style>${STYLE}</style></head>
<body>
<h1>notes-saas</h1>
<p>A B2B notes app on Shardines: one apex database for accounts, plans and the tenant directory, one SQLite file per tenant.</p>
<ul>
${links || '<li class="muted">No tenants yet: sign up below (or POST /signup).</li>'}
</ul>
<h2>Sign up</h2>
<form method="post" action="/signup">
<p><input name="company" placeholder="Company" required maxlength="100"></p>
<p><input name="name" placeholder="Your name" required maxlength="100"></p>
<p><input name="email" type="email" placeholder="Email" required maxlength="200"></p>
<p><button type="submit">Create my workspace</button></p>
</form>
</body>
</html>`
}
