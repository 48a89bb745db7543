// The demo page in a real browser (Debian's Chromium through playwright-core):
// two users sign in, chat, one goes offline and comes back with what it missed.
// Skips, saying why, when there is no Chromium (CI installs the `chromium` package).
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startApp } from '../helpers/app.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const BUNDLE = fileURLToPath(new URL('../../dist/client/index.js', import.meta.url))
const USERS: Record<string, string> = { alice: 'alice-password', bob: 'bob-password' }
const missing = existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`
// CI must always run it: there a missing browser is a failure, not a skip
const required = process.env.CI === 'true' || process.env.REQUIRE_BROWSER === '1'
if (missing !== null && required) t.fail(`${missing} (required: CI=true or REQUIRE_BROWSER=1)`)

// what the page functions below touch (this project compiles without the DOM library)
declare const document: {
  getElementById: (id: string) => { dataset: Record<string, string | undefined>, textContent: string | null } | null
  querySelectorAll: (selector: string) => ArrayLike<{ textContent: string | null }> & Iterable<{ textContent: string | null }>
}

async function signIn (page: Page, base: string, user: string): Promise<void> {
  await page.goto(`${base}/`)
  await page.getByLabel('User name').fill(user)
  await page.getByLabel('Password').fill(USERS[user])
  await page.getByRole('button', { name: 'Sign in' }).click()
  await waitState(page, 'open')
}

async function waitState (page: Page, state: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction((s) => document.getElementById('status')?.dataset.state === s, state, { timeout })
}

async function say (page: Page, text: string): Promise<void> {
  const input = page.getByRole('textbox', { name: 'Message' })
  await input.fill(text)
  await input.press('Enter')
}

async function texts (page: Page): Promise<string[]> {
  return page.locator('#messages li:not(.system) .text').allTextContents()
}

async function waitTexts (page: Page, expected: string[], timeout = 10_000): Promise<void> {
  await page.waitForFunction((n) => document.querySelectorAll('#messages li:not(.system)').length >= n, expected.length, { timeout })
}

t.test('demo page: two users chat, one goes offline and back and gets what it missed', { skip: missing ?? false }, async t => {
  t.ok(existsSync(BUNDLE), 'the client bundle is built (npm run build)')
  const { base } = await startApp(t, {
    verifyCredentials: (username, password) => USERS[username] === password ? { id: username, name: username } : null,
    config: { usersFile: null, channels: { chat: { presence: true } } }
  })
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
  t.teardown(() => browser.close())
  const errors: string[] = []
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 780 } })
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 780 } })
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  for (const [name, page] of [['alice', a], ['bob', b]] as const) {
    page.on('pageerror', err => errors.push(`${name}: ${err.message}`))
  }

  await signIn(a, base, 'alice')
  await signIn(b, base, 'bob')
  t.equal(await a.locator('#channel-name').textContent(), 'chat:lobby', 'default channel')
  t.equal(await a.locator('#whoami').textContent(), 'alice')

  await say(a, 'hello from alice')
  await waitTexts(b, ['hello from alice'])
  await say(b, 'hi alice')
  await waitTexts(a, ['hello from alice', 'hi alice'])
  // bob's own copy comes back to his page on its own schedule, not alice's
  await waitTexts(b, ['hello from alice', 'hi alice'])
  t.same(await texts(b), ['hello from alice', 'hi alice'])
  // bob joined after alice: presence told her
  await a.waitForFunction(() => [...document.querySelectorAll('#people li')].some(li => li.textContent?.includes('bob') && li.textContent.includes('online')))

  // alice's network goes away: the open socket looks alive (nothing closes it), but the
  // browser's `offline` event tells the client, which drops it and keeps retrying
  await ctxA.setOffline(true)
  await waitState(a, 'reconnecting')
  const missed = ['missed 1', 'missed 2', 'missed 3']
  for (const m of missed) await say(b, m)
  await waitTexts(b, ['hello from alice', 'hi alice', ...missed])
  await a.waitForTimeout(300)
  t.same(await texts(a), ['hello from alice', 'hi alice'], 'nothing arrives while offline')
  t.equal(await a.locator('#status').getAttribute('data-state'), 'reconnecting')

  await ctxA.setOffline(false)
  await waitState(a, 'open')
  await waitTexts(a, ['hello from alice', 'hi alice', ...missed])
  t.same(await texts(a), ['hello from alice', 'hi alice', ...missed], 'every missed message, once, in order')
  t.match(await a.locator('#status').textContent(), /caught up/, 'the page says it recovered')

  await say(a, 'back online')
  await waitTexts(b, ['hello from alice', 'hi alice', ...missed, 'back online'])
  await waitTexts(a, ['hello from alice', 'hi alice', ...missed, 'back online'])
  t.same(await texts(b), ['hello from alice', 'hi alice', ...missed, 'back online'])

  // the page's "Drop connection" button: bob's socket goes, he resumes where he was
  await b.getByRole('button', { name: 'Drop connection' }).click()
  await waitState(b, 'open')
  await say(a, 'after the drop')
  await waitTexts(b, ['hello from alice', 'hi alice', ...missed, 'back online', 'after the drop'])
  t.same(await texts(b), ['hello from alice', 'hi alice', ...missed, 'back online', 'after the drop'])
  t.same(errors, [], 'no page errors')

  mkdirSync(ARTIFACTS, { recursive: true })
  await a.screenshot({ path: `${ARTIFACTS}demo.png`, fullPage: true })
  t.ok(existsSync(`${ARTIFACTS}demo.png`), 'screenshot saved to test/artifacts/demo.png')
})

t.test('demo page: a wrong password is refused with a message', { skip: missing ?? false }, async t => {
  const { base } = await startApp(t, {
    verifyCredentials: (username, password) => USERS[username] === password ? { id: username } : null,
    config: { usersFile: null }
  })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const res = await page.goto(`${base}/`)
  t.match(res?.headers()['content-security-policy'], /default-src 'self'/)
  await page.getByLabel('User name').fill('alice')
  await page.getByLabel('Password').fill('wrong')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '') !== '')
  t.not(await page.locator('#login-error').textContent(), '')
  t.equal(await page.locator('#chat-panel').isHidden(), true)
})
