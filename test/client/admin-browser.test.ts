// The admin console in a real browser (Debian's Chromium through playwright-core):
// a non-admin login and a wrong API key are refused and the console stays
// empty; an admin signs in, sees a socket the test opens appear within two
// seconds, publishes to its channel from the console (the socket receives it),
// subscribes it to a channel, and disconnects it (it closes 4403 and leaves
// the page); a cancelled action does nothing. Then a screenshot of the console
// over a two-node cluster with traffic: test/artifacts/admin-console.png, and
// docs/admin-console.png (plus the confirmation dialog) with UPDATE_SCREENSHOTS=1.
// Skips, saying why, when there is no Chromium (CI installs the `chromium` package).
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startApp, type TestApp } from '../helpers/app.ts'
import { connect, type Client } from '../helpers/client.ts'
import { bearerOf } from '../helpers/multi.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url))
const UPDATE_DOCS = process.env.UPDATE_SCREENSHOTS === '1'
const missing = existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`
// CI must always run it: there a missing browser is a failure, not a skip
const required = process.env.CI === 'true' || process.env.REQUIRE_BROWSER === '1'
if (missing !== null && required) t.fail(`${missing} (required: CI=true or REQUIRE_BROWSER=1)`)

const KEY = 'admin-console-test-api-key-0123456789-0123456789'
const USERS: Record<string, { password: string, roles: string[] }> = {
  root: { password: 'root-password', roles: ['admin'] },
  alice: { password: 'alice-password', roles: [] }
}
const verifyCredentials = (username: string, password: string): { id: string, roles: string[] } | null =>
  USERS[username]?.password === password ? { id: username, roles: USERS[username].roles } : null

// what the page functions below touch (this project compiles without the DOM library)
interface PageElement { dataset: Record<string, string | undefined>, textContent: string | null, hidden: boolean }
declare const document: {
  getElementById: (id: string) => PageElement | null
  querySelector: (selector: string) => PageElement | null
}

async function launch (t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
  t.teardown(() => browser.close())
  return browser
}

async function signIn (page: Page, user: string): Promise<void> {
  await page.getByLabel('User name').fill(user)
  await page.getByLabel('Password').fill(USERS[user].password)
  await page.getByRole('button', { name: 'Sign in' }).click()
}

async function waitLive (page: Page, timeout = 10_000): Promise<void> {
  await page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'live', undefined, { timeout })
}

/** Clicks the dialog's confirm button (after checking what it asks). */
async function confirm (t: Test, page: Page, asks: RegExp, input?: string): Promise<void> {
  const dialog = page.locator('dialog#confirm')
  await dialog.waitFor({ state: 'visible' })
  t.match(await dialog.locator('#confirm-text').textContent(), asks)
  if (input !== undefined) await dialog.locator('#confirm-input').fill(input)
  await dialog.locator('#confirm-ok').click()
  await dialog.waitFor({ state: 'hidden' })
}

async function open (a: TestApp, path: string, user: string): Promise<Client> {
  const c = await connect(`${a.ws}${path}`, bearerOf(a.token({ sub: user })))
  t.teardown(() => c.ws.terminate())
  return c
}

t.test('admin console: refuses a non-admin, then shows a socket within two seconds, publishes to it, subscribes it and disconnects it', { skip: missing ?? false }, async t => {
  const a = await startApp(t, { verifyCredentials, config: { usersFile: null, apiKey: KEY, channels: { room: { presence: true } } } })
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } })
  const errors: string[] = []
  const requests: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  page.on('request', req => requests.push(`${req.method()} ${new URL(req.url()).pathname}`))

  const res = await page.goto(`${a.base}/admin`)
  t.equal(res?.status(), 200)
  t.match(res?.headers()['content-security-policy'], /default-src 'self'/)
  t.equal(await page.locator('#console').isHidden(), true, 'nothing but the sign-in form')

  // a user without role admin gets a token from /auth/login, and the console refuses it
  await signIn(page, 'alice')
  await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '') !== '')
  t.match(await page.locator('#login-error').textContent(), /not an administrator/)
  t.equal(await page.locator('#console').isHidden(), true, 'the console stays hidden')
  await waitFor(() => requests.includes('POST /auth/logout'), { ms: 3000, what: 'the refused session given back' })
  t.notOk(requests.some(r => r.startsWith('GET /admin/feed') || r.startsWith('GET /admin/snapshot')), 'no data was asked for')

  // a wrong API key
  await page.getByLabel('API key').fill('not-the-key')
  await page.getByRole('button', { name: 'Use API key' }).click()
  await page.waitForFunction(() => /wrong API key/.test(document.getElementById('login-error')?.textContent ?? ''))
  t.equal(await page.locator('#console').isHidden(), true)

  await signIn(page, 'root')
  await waitLive(page)
  t.equal(await page.locator('#whoami').textContent(), 'root (admin)')
  t.equal(await page.locator('#login-panel').isHidden(), true)
  t.equal(await page.locator('#t-nodes').textContent(), '1')

  // watch carol before she comes
  await page.getByLabel('Find user').fill('carol')
  await page.getByRole('button', { name: 'Find' }).click()
  await page.waitForFunction(() => document.getElementById('user-facts')?.textContent === 'Offline')

  const opened = Date.now()
  const carol = await open(a, '/ws/room:lobby', 'carol')
  const ready = await carol.nextOfType('ready')
  const id = ready.connectionId as string
  const row = page.locator(`#sockets tbody tr[data-key="${id}"]`)
  await row.waitFor({ state: 'visible', timeout: 2000 })
  await page.locator('#channels tbody tr[data-key="room:lobby"]').waitFor({ state: 'visible', timeout: 2000 })
  const seenAfter = Date.now() - opened
  t.ok(seenAfter <= 2000, `the socket and its channel appear within two seconds (${seenAfter} ms)`)
  t.match(await row.textContent(), /room:lobby/)
  t.match(await page.locator('#user-facts').textContent(), /^Online · 1 connections/)

  // publish from the console: confirmed first, through POST /api/channels/:channel/messages
  await page.locator('#channels tbody tr[data-key="room:lobby"] button').click()
  await page.waitForFunction(() => document.getElementById('channel-name')?.textContent === 'room:lobby')
  await page.getByLabel('Message data').fill('{"text": "hello from the console"}')
  await page.getByRole('button', { name: 'Publish' }).click()
  await confirm(t, page, /Publish \{"text":"hello from the console"\} to room:lobby/)
  const msg = await carol.nextOfType('message')
  t.match(msg, { channel: 'room:lobby', from: null, data: { text: 'hello from the console' } }, 'the socket receives it')
  t.ok(requests.includes('POST /api/channels/room%3Alobby/messages') || requests.includes('POST /api/channels/room:lobby/messages'), 'through the server API')
  await page.locator(`#history li[data-key="${msg.id as string}"]`).waitFor({ timeout: 3000 })
  t.match(await page.locator('#log li').first().textContent(), new RegExp(`Published to room:lobby — message ${msg.id as string}`))

  // subscribe that connection to another channel (the dialog asks for it)
  await row.getByRole('button', { name: 'Subscribe…' }).click()
  await confirm(t, page, new RegExp(`Connection ${id} joins the channel`), 'room:news')
  t.match(await carol.nextOfType('subscribed'), { channel: 'room:news', by: 'server' })
  await page.waitForFunction((sel) => /room:news/.test(document.querySelector(sel)?.textContent ?? ''), `#sockets tbody tr[data-key="${id}"]`, { timeout: 3000 })

  // a cancelled action does nothing
  await page.getByRole('button', { name: 'Disconnect user' }).click()
  await page.locator('dialog#confirm').waitFor({ state: 'visible' })
  await page.locator('#confirm-cancel').click()
  await sleep(500)
  t.equal(carol.ws.readyState, carol.ws.OPEN, 'cancelled: the socket stays')

  // disconnect it: it closes 4403 and leaves the page
  await row.getByRole('button', { name: 'Disconnect' }).click()
  await confirm(t, page, new RegExp(`Close connection ${id} with 4403`))
  const closed = await carol.closed
  t.equal(closed.code, 4403, 'closed by the server API')
  const goneAt = Date.now()
  await row.waitFor({ state: 'detached', timeout: 2000 })
  t.ok(Date.now() - goneAt <= 2000, 'and it leaves the page within two seconds')
  await page.waitForFunction(() => document.getElementById('user-facts')?.textContent === 'Offline')

  t.same(errors, [], 'no page errors')

  // signing out leaves nothing behind
  await page.getByRole('button', { name: 'Sign out' }).click()
  t.equal(await page.locator('#console').isHidden(), true)
  t.equal(await page.locator('#channels tbody tr').count(), 0, 'the tables are emptied')
  t.equal(await page.locator('#status').getAttribute('data-state'), 'signed-out')
})

t.test('admin console: a picture of a two-node cluster with traffic', { skip: missing ?? false }, async t => {
  const prefix = redisPrefix(t)
  const nodes: TestApp[] = []
  for (let i = 0; i < 2; i++) {
    nodes.push(await startApp(t, { verifyCredentials, config: { usersFile: null, apiKey: KEY, redisUrl: REDIS_URL, redisPrefix: prefix, channels: { room: { presence: true } } } }))
  }
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy']
  const channels = ['room:lobby', 'room:games', 'news', 'chat:support', 'iot:sensors', 'room:music']
  let opened = 0
  const openOne = async (): Promise<void> => {
    const i = opened++
    await open(nodes[i % 2], `/ws/${channels[i % channels.length]}`, users[(i * 7) % users.length])
  }
  for (let i = 0; i < 18; i++) await openOne()

  // traffic that rises and falls, more sockets over time (the charts have a shape)
  let tick = 0
  const traffic = setInterval(() => {
    tick++
    const burst = Math.max(0, Math.round(5 + 3 * Math.sin(tick / 90) + 1.5 * Math.sin(tick / 23) + (tick % 7 === 0 ? 2 : 0)))
    for (let k = 0; k < burst; k++) nodes[k % 2].app.gatecast.publish(channels[(tick + k) % 3], { text: `update ${tick}.${k}` }).catch(() => {})
  }, 100)
  t.teardown(() => clearInterval(traffic))
  const growth = setInterval(() => { if (opened < 40) openOne().catch(() => {}) }, 1500)
  t.teardown(() => clearInterval(growth))

  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } })
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  await page.goto(`${nodes[0].base}/admin`)
  await signIn(page, 'root')
  await waitLive(page)
  await page.waitForFunction(() => document.getElementById('t-nodes')?.textContent === '2', undefined, { timeout: 5000 })
  await sleep(UPDATE_DOCS ? 75_000 : 4000)
  clearInterval(growth)
  await page.locator('#channels tbody tr[data-key="room:lobby"] button').click()
  await page.locator('#users li[data-key="alice"] button').click()
  await page.waitForFunction(() => document.getElementById('sockets')?.textContent?.includes('node') === true, undefined, { timeout: 5000 })
  await sleep(1500)

  mkdirSync(ARTIFACTS, { recursive: true })
  const shot = `${ARTIFACTS}admin-console.png`
  await page.screenshot({ path: shot, fullPage: true })
  t.ok(existsSync(shot), 'screenshot saved to test/artifacts/admin-console.png')
  t.equal(await page.locator('#nodes tbody tr').count(), 2, 'both nodes on screen')
  t.same(errors, [], 'no page errors')
  if (UPDATE_DOCS) {
    copyFileSync(shot, `${DOCS}admin-console.png`)
    // the confirmation every action asks for
    await page.locator('#sockets tbody tr').first().getByRole('button', { name: 'Disconnect' }).click()
    await page.locator('dialog#confirm').waitFor({ state: 'visible' })
    await page.screenshot({ path: `${DOCS}admin-console-confirm.png` })
    await page.locator('#confirm-cancel').click()
  }
})
