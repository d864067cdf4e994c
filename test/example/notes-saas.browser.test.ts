// The example's HTML pages in a real browser (headless Chromium through playwright-core, driving
// Debian's chromium that .ci/run installs): sign up a tenant with the landing page's form, post a
// note with the tenant page's form, see it listed; another tenant's page does not show it.
import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import { test } from 'node:test'
import { chromium } from 'playwright-core'
import { startNotesSaas } from './notes-saas-harness.js'

const CHROMIUM =
  process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p))

test('in headless Chromium: sign up through the form, post a note, see it listed; another tenant does not', {
  timeout: 120_000,
  // Outside CI a machine may lack Chromium; in CI (.ci/run installs it) its absence is a failure.
  skip: CHROMIUM === undefined && process.env.CI !== 'true' ? 'no Chromium here (set CHROMIUM_PATH)' : false,
}, async () => {
  assert.ok(CHROMIUM !== undefined, 'CI must have Chromium (.ci/run installs Debian’s chromium package)')
  const app = await startNotesSaas({ adminToken: 'browser-admin' })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  try {
    const page = await browser.newPage()
    await page.goto(`${app.base}/`)
    await page.fill('input[name=company]', 'Browser Co')
    await page.fill('input[name=name]', 'Bea Browser')
    await page.fill('input[name=email]', 'bea@browser.test')
    await Promise.all([page.waitForURL(/\/t\/browser-co\/$/), page.click('button[type=submit]')])
    assert.match((await page.textContent('h1')) ?? '', /Browser Co/)

    await page.fill('input[name=title]', 'Written in a browser')
    await page.fill('textarea[name=body]', 'through the form')
    await page.click('form button[type=submit]')
    await page.locator('#notes').getByText('Written in a browser').waitFor({ timeout: 10_000 })
    assert.equal(new URL(page.url()).pathname, '/t/browser-co/')
    assert.match((await page.textContent('#notes')) ?? '', /through the form/)

    // The note is in browser-co's file only.
    await page.goto(`${app.base}/t/acme/`)
    assert.match((await page.textContent('h1')) ?? '', /Acme/)
    assert.doesNotMatch((await page.textContent('#notes')) ?? '', /Written in a browser/)
    const notes = await app.shard.withTenant('browser-co', (t) => t.db.selectFrom('notes').select('title').execute())
    assert.deepEqual(notes, [{ title: 'Written in a browser' }])

    // The landing page lists the new tenant.
    await page.goto(`${app.base}/`)
    assert.match(await page.content(), /Browser Co/)
  } finally {
    await browser.close()
  }
})
