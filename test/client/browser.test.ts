// The demo page in a real browser (Debian's Chromium through playwright-core):
// two users sign in and chat in two rooms over one socket each; one goes offline
// and comes back with what each room missed; the server adds a room; a room is left.
// Skips, saying why, when there is no Chromium (CI installs the `chromium` package).
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chromium, type Browser, type Page, type WebSocket } from 'playwright-core'
import { api, startApp } from '../helpers/app.ts'
import { trackConnections } from '../helpers/client-lib.ts'

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
interface PageElement { dataset: Record<string, string | undefined>, textContent: string | null }
declare const document: {
  getElementById: (id: string) => PageElement | null
  querySelectorAll: (selector: string) => ArrayLike<PageElement> & Iterable<PageElement>
}

const LOBBY = 'room:lobby'
const GAMES = 'room:games'
const KEY = 'demo-test-api-key-0123456789-0123456789'

async function signIn (page: Page, base: string, user: string): Promise<void> {
  await page.goto(`${base}/`)
  await page.getByLabel('User name').fill(user)
  await page.getByLabel('Password').fill(USERS[user])
  await page.getByRole('button', { name: 'Sign in' }).click()
  await waitState(page, 'open')
  await waitJoined(page, [LOBBY, GAMES])
}

async function waitState (page: Page, state: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction((s) => document.getElementById('status')?.dataset.state === s, state, { timeout })
}

/** every listed room has a tab whose subscription the server answered */
async function waitJoined (page: Page, rooms: string[], timeout = 10_000): Promise<void> {
  await page.waitForFunction((rs) => rs.every(r => [...document.querySelectorAll('#rooms [role="tab"]')].some(t => t.dataset.room === r && t.dataset.state === 'subscribed')), rooms, { timeout })
}

async function tabs (page: Page): Promise<string[]> {
  return page.locator('#rooms [role="tab"]').evaluateAll(els => els.map(e => (e as unknown as PageElement).dataset.room ?? ''))
}

async function selectRoom (page: Page, room: string): Promise<void> {
  await page.locator(`#rooms [role="tab"][data-room="${room}"]`).click()
  await page.waitForFunction((r) => document.getElementById('channel-name')?.textContent === r, room)
}

async function say (page: Page, room: string, text: string): Promise<void> {
  await selectRoom(page, room)
  const input = page.getByRole('textbox', { name: 'Message' })
  await input.fill(text)
  await input.press('Enter')
}

async function texts (page: Page, room: string): Promise<string[]> {
  return page.locator(`.messages[data-room="${room}"] li:not(.system) .text`).allTextContents()
}

async function waitTexts (page: Page, room: string, expected: string[], timeout = 10_000): Promise<void> {
  await page.waitForFunction(([r, n]) => document.querySelectorAll(`.messages[data-room="${r}"] li:not(.system)`).length >= n, [room, expected.length] as const, { timeout })
}

t.test('demo page: two rooms over one socket; one user goes offline and back and gets what each room missed', { skip: missing ?? false }, async t => {
  t.ok(existsSync(BUNDLE), 'the client bundle is built (npm run build)')
  const { app, base } = await startApp(t, {
    verifyCredentials: (username, password) => USERS[username] === password ? { id: username, name: username } : null,
    config: { usersFile: null, apiKey: KEY, channels: { room: { presence: true } } }
  })
  const conns = trackConnections(app)
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
  t.teardown(() => browser.close())
  const errors: string[] = []
  const sockets: Record<string, WebSocket[]> = { alice: [], bob: [] }
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 780 } })
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 780 } })
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  for (const [name, page] of [['alice', a], ['bob', b]] as const) {
    page.on('pageerror', err => errors.push(`${name}: ${err.message}`))
    page.on('websocket', ws => sockets[name].push(ws))
  }

  await signIn(a, base, 'alice')
  await signIn(b, base, 'bob')
  t.same(await tabs(a), [LOBBY, GAMES], 'two rooms')
  t.equal(await a.locator('#channel-name').textContent(), LOBBY, 'the first room is selected')
  t.equal(await a.locator('#whoami').textContent(), 'alice')

  await say(a, LOBBY, 'hello lobby')
  await say(a, GAMES, 'hello games')
  await waitTexts(b, LOBBY, ['hello lobby'])
  await waitTexts(b, GAMES, ['hello games'])
  await say(b, LOBBY, 'hi alice')
  await app.gatecast.publish(GAMES, { text: 'from the server' })
  for (const page of [a, b]) {
    await waitTexts(page, LOBBY, ['hello lobby', 'hi alice'])
    await waitTexts(page, GAMES, ['hello games', 'from the server'])
  }
  for (const page of [a, b]) {
    t.same(await texts(page, LOBBY), ['hello lobby', 'hi alice'], 'the lobby has the lobby\'s messages only')
    t.same(await texts(page, GAMES), ['hello games', 'from the server'], 'the games room has its own')
  }
  // bob is in the lobby: the games room counts what he has not seen
  t.equal(await b.locator(`#rooms [role="tab"][data-room="${GAMES}"] .unread`).textContent(), '2', 'unread count on the other tab')
  // bob joined after alice: presence told her, per room
  await a.waitForFunction(() => [...document.querySelectorAll('#people li')].some(li => li.textContent?.includes('bob') && li.textContent.includes('online')))

  t.equal(sockets.alice.length, 1, 'alice: one WebSocket for both rooms')
  t.equal(sockets.bob.length, 1, 'bob: one WebSocket for both rooms')
  t.match(sockets.alice[0].url(), /\/ws$/, 'opened on /ws, no path channel')
  t.equal(conns.open('alice').length, 1, 'one socket of alice on the server')

  // alice's network goes away: the open socket looks alive (nothing closes it), but the
  // browser's `offline` event tells the client, which drops it and keeps retrying
  await ctxA.setOffline(true)
  await waitState(a, 'reconnecting')
  const missedLobby = ['missed lobby 1', 'missed lobby 2']
  const missedGames = ['missed games 1']
  for (const m of missedLobby) await say(b, LOBBY, m)
  for (const m of missedGames) await say(b, GAMES, m)
  await waitTexts(b, LOBBY, ['hello lobby', 'hi alice', ...missedLobby])
  await waitTexts(b, GAMES, ['hello games', 'from the server', ...missedGames])
  await a.waitForTimeout(300)
  t.same(await texts(a, LOBBY), ['hello lobby', 'hi alice'], 'nothing arrives while offline')
  t.equal(await a.locator('#status').getAttribute('data-state'), 'reconnecting')

  await ctxA.setOffline(false)
  await waitState(a, 'open')
  await waitJoined(a, [LOBBY, GAMES])
  await waitTexts(a, LOBBY, ['hello lobby', 'hi alice', ...missedLobby])
  await waitTexts(a, GAMES, ['hello games', 'from the server', ...missedGames])
  t.same(await texts(a, LOBBY), ['hello lobby', 'hi alice', ...missedLobby], 'lobby: every missed message, once, in order')
  t.same(await texts(a, GAMES), ['hello games', 'from the server', ...missedGames], 'games: every missed message, once, in order')
  t.match(await a.locator('#status').textContent(), /caught up/, 'the page says the rooms recovered')
  t.equal(conns.open('alice').length, 1, 'back on one socket')

  await say(a, LOBBY, 'back online')
  await waitTexts(b, LOBBY, ['hello lobby', 'hi alice', ...missedLobby, 'back online'])
  t.same(await texts(b, LOBBY), ['hello lobby', 'hi alice', ...missedLobby, 'back online'])

  // the page's "Drop connection" button: bob's socket goes, both his rooms resume where they were
  await b.getByRole('button', { name: 'Drop connection' }).click()
  await waitState(b, 'open')
  await waitJoined(b, [LOBBY, GAMES])
  await say(a, GAMES, 'after the drop')
  await waitTexts(b, GAMES, ['hello games', 'from the server', ...missedGames, 'after the drop'])
  t.same(await texts(b, GAMES), ['hello games', 'from the server', ...missedGames, 'after the drop'])
  t.equal(sockets.bob.length, 2, 'bob: one new socket after the drop, for both rooms')

  // the server API adds a room to every socket of alice: a new tab, on the same socket
  const added = await api(base, 'POST', '/api/users/alice/channels/room:news', { headers: { 'x-api-key': KEY } })
  t.equal(added.status, 202)
  await waitJoined(a, ['room:news'])
  await app.gatecast.publish('room:news', { text: 'breaking' })
  await waitTexts(a, 'room:news', ['breaking'])
  t.same(await tabs(a), [LOBBY, GAMES, 'room:news'])
  t.match(await a.locator('.messages[data-room="room:news"] li.system').first().textContent(), /server added you/)

  // leaving a room: its tab goes, the socket stays and the other room still works
  await selectRoom(b, GAMES)
  await b.getByRole('button', { name: 'Leave room' }).click()
  await b.waitForFunction((r) => ![...document.querySelectorAll('#rooms [role="tab"]')].some(t => t.dataset.room === r), GAMES)
  t.same(await tabs(b), [LOBBY])
  await say(a, LOBBY, 'still here?')
  await waitTexts(b, LOBBY, ['hello lobby', 'hi alice', ...missedLobby, 'back online', 'still here?'])
  t.equal(sockets.bob.length, 2, 'leaving a room opens no socket')
  t.equal(await b.locator('#status').getAttribute('data-state'), 'open')

  // joining through the form; a room the user may not join says so in its tab
  await b.getByLabel('Join a room').fill('room:music')
  await b.getByRole('button', { name: 'Join', exact: true }).click()
  await waitJoined(b, ['room:music'])
  t.equal(await b.locator('#channel-name').textContent(), 'room:music', 'a joined room is selected')
  await b.getByLabel('Join a room').fill('dm#alice,carol')
  await b.getByRole('button', { name: 'Join', exact: true }).click()
  await b.waitForFunction(() => [...document.querySelectorAll('#rooms [role="tab"]')].some(t => t.dataset.room === 'dm#alice,carol' && t.dataset.state === 'ended'))
  t.match(await b.locator('.messages[data-room="dm#alice,carol"] li.system').first().textContent(), /Could not join this room: .*\(forbidden\)/)
  t.equal(await b.getByRole('textbox', { name: 'Message' }).isDisabled(), true, 'nothing to send to a refused room')
  await b.getByRole('button', { name: 'Leave room' }).click()
  t.same(await tabs(b), [LOBBY, 'room:music'], 'its tab closes')
  t.equal(sockets.bob.length, 2, 'still the same socket')

  t.same(errors, [], 'no page errors')
  mkdirSync(ARTIFACTS, { recursive: true })
  await selectRoom(a, LOBBY)
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
