// The end-to-end scenario of the backend examples (examples/php-backend/index.php,
// examples/node-backend.js): a real Gatecast whose BACKEND_URL is the example,
// run as a real child process, and real sockets. Both examples implement the
// same rules, so one scenario checks both; each test file says how to start its
// backend.
import { spawn, type ChildProcess } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startApp, type TestApp } from './app.ts'
import { Client, connect, refused, type Frame } from './client.ts'
import { settle } from './multi.ts'
import { freePort } from './process.ts'
import { waitFor } from './wait.ts'

export const BACKEND_SECRET = 'example-backend-secret-0123456789-0123456789'
export const API_KEY = 'example-backend-api-key-0123456789-0123456789'

export interface Backend {
  /** its base URL, http://127.0.0.1:<port> */
  url: string
  child: ChildProcess
  /** everything it printed so far, stdout and stderr */
  output: () => string
  stop: () => Promise<void>
}

/** Starts the example on `port` with `env` (PATH comes along); resolves once it accepts calls. */
export type StartBackend = (port: number, env: Record<string, string>) => Promise<Backend>

interface Setup {
  app: TestApp
  backend: Backend
  logFile: string
}

/**
 * Spawns `command` and waits for `ready` in its output (stdout or stderr). The
 * caller stops it (`stop`: SIGTERM, so a Node child ends normally and leaves its
 * coverage; SIGKILL when it lingers); a child that never got ready is killed here.
 */
export async function spawnUntil (command: string, args: string[], env: Record<string, string>, ready: RegExp, ms = 10_000): Promise<{ child: ChildProcess, output: () => string, stop: () => Promise<void> }> {
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command}: no ${ready} within ${ms} ms; output: ${out.slice(-2000)}`)), ms)
      const onData = (chunk: Buffer): void => {
        out += chunk.toString()
        if (ready.test(out)) { clearTimeout(timer); resolve() }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('error', err => { clearTimeout(timer); reject(err) })
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`${command} exited with ${code}; output: ${out.slice(-2000)}`)) })
    })
  } catch (err) {
    await stop()
    throw err
  }
  return { child, output: () => out, stop }
}

/** A Gatecast calling the example, and the example calling that Gatecast back. */
async function setup (t: Test, start: StartBackend): Promise<Setup> {
  const port = await freePort()
  // teardowns run last in, first out: this one, set before the app's, stops the
  // backend after the app has closed (and told it of the sockets it closed)
  const running: { stop?: () => Promise<void> } = {}
  t.teardown(() => running.stop?.())
  // the app only calls the backend on socket events: it can start first, so the
  // backend can be told its URL
  const app = await startApp(t, {
    config: { usersFile: null, apiKey: API_KEY, backendUrl: `http://127.0.0.1:${port}`, backendSecret: BACKEND_SECRET }
  })
  const logFile = join(mkdtempSync(join(tmpdir(), 'gatecast-example-')), 'close.log')
  // BANNED_WORDS and BANNED_USERS keep their defaults ("spam", "mallory")
  const backend = await start(port, { BACKEND_SECRET, GATECAST_URL: app.base, GATECAST_API_KEY: API_KEY, LOG_FILE: logFile })
  running.stop = backend.stop
  return { app, backend, logFile }
}

const bearer = (token: string): { headers: { authorization: string } } => ({ headers: { authorization: `Bearer ${token}` } })

/** A socket of `user` on `/ws`, its `ready` taken off the queue. Terminated at teardown. */
async function socket (t: Test, a: TestApp, user: string): Promise<{ c: Client, ready: Frame }> {
  const c = await connect(`${a.ws}/ws`, bearer(a.token({ sub: user })))
  t.teardown(() => c.ws.terminate())
  return { c, ready: await c.next() }
}

/** A socket on GatewayWorker's URL, `/?Authorization=Bearer <jwt>`, with a PHP-style token (`user_id`, no `sub`). */
async function gatewayWorkerSocket (t: Test, a: TestApp, user: string): Promise<{ c: Client, ready: Frame }> {
  const token = a.token({ sub: undefined, user_id: user })
  const c = await connect(`${a.ws}/?Authorization=${encodeURIComponent(`Bearer ${token}`)}`)
  t.teardown(() => c.ws.terminate())
  return { c, ready: await c.next() }
}

/** The two frames the connect answer's channels make, in either order. */
async function serverSubscriptions (c: Client): Promise<Frame[]> {
  const two = [await c.next(), await c.next()]
  return two.sort((x, y) => String(x.channel).localeCompare(String(y.channel)))
}

const subscribedByServer = (user: string): Frame[] => [
  { type: 'subscribed', channel: `inbox#${user}`, by: 'server' },
  { type: 'subscribed', channel: 'lobby', by: 'server' }
]

/** The complete close lines of LOG_FILE, parsed (none when it does not exist yet). */
function closeLines (file: string): any[] {
  if (!existsSync(file)) return []
  // what follows the last newline is a line still being written
  return readFileSync(file, 'utf8').split('\n').slice(0, -1).map(l => JSON.parse(l))
}

const sign = (body: string, secret = BACKEND_SECRET): string => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex')

/** A call to the backend as Gatecast makes it, with the signature given (none when undefined). */
async function post (backend: Backend, event: string, body: string, signature: string | undefined): Promise<{ status: number, body: any }> {
  const res = await fetch(`${backend.url}/${event}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gatecast-event': event, ...(signature === undefined ? {} : { 'x-gatecast-signature': signature }) },
    body
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = text === '' ? null : JSON.parse(text) } catch {}
  return { status: res.status, body: parsed }
}

/** The scenario, as subtests of `t`; `clean` checks the backend's output for warnings at the end of each. */
export function backendScenario (t: Test, start: StartBackend, clean: (t: Test, output: string) => void): void {
  t.test('connect: ready carries the answer\'s data, the answer\'s channels follow as server subscriptions; a banned user gets 403', async t => {
    const { app, backend } = await setup(t, start)
    const { c: alice, ready } = await socket(t, app, 'alice')
    t.match(ready, { type: 'ready', userId: 'alice', connectionId: String }, 'ready first')
    t.same(ready.data, { welcome: 'Welcome, alice!', inbox: 'inbox#alice' }, 'ready.data is the connect answer\'s data')
    t.notOk('channel' in ready, 'no path channel on /ws')
    t.same(await serverSubscriptions(alice), subscribedByServer('alice'), 'lobby and the inbox, subscribed by the server')

    // GatewayWorker's URL and a token minted by a PHP backend (user_id, no sub)
    const { c: bob, ready: bobReady } = await gatewayWorkerSocket(t, app, 'bob')
    t.match(bobReady, { type: 'ready', userId: 'bob', data: { welcome: 'Welcome, bob!', inbox: 'inbox#bob' } })
    t.same(await serverSubscriptions(bob), subscribedByServer('bob'))

    // they are really on those channels
    await app.app.gatecast.publish('lobby', 'to the lobby')
    await app.app.gatecast.publish('inbox#bob', 'to bob\'s inbox')
    t.match(await alice.next(), { type: 'message', channel: 'lobby', data: 'to the lobby', from: null })
    t.match(await bob.next(), { type: 'message', channel: 'lobby', data: 'to the lobby' })
    t.match(await bob.next(), { type: 'message', channel: 'inbox#bob', data: 'to bob\'s inbox' })
    t.same(await settle(alice), [], 'nothing of bob\'s inbox reaches alice')

    const banned = await refused(`${app.ws}/ws`, bearer(app.token({ sub: 'mallory' })))
    t.equal(banned.status, 403, 'a banned user: the upgrade is refused with the backend\'s 403')
    t.match(banned.body, { statusCode: 403 }, 'in Gatecast\'s error shape')
    const bannedGw = await refused(`${app.ws}/?Authorization=${encodeURIComponent(`Bearer ${app.token({ sub: undefined, user_id: 'mallory' })}`)}`)
    t.equal(bannedGw.status, 403, 'also on GatewayWorker\'s URL')
    const status = await fetch(`${app.base}/api/users/mallory`, { headers: { 'x-api-key': API_KEY } }).then(r => r.json())
    t.match(status, { userId: 'mallory', online: false, connections: 0 }, 'no socket was opened for her')
    clean(t, backend.output())
  })

  t.test('publish: fan-out as is; a banned word is dropped with an id-less ack; /msg reaches one user as a direct frame', async t => {
    const { app, backend } = await setup(t, start)
    const { c: alice } = await socket(t, app, 'alice')
    const { c: bob } = await socket(t, app, 'bob')
    const { c: carol } = await socket(t, app, 'carol')
    for (const [c, user] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']] as const) {
      t.same(await serverSubscriptions(c), subscribedByServer(user), `${user} is in the lobby`)
    }

    alice.send({ type: 'publish', channel: 'lobby', data: { text: 'hello everyone' }, ref: 1 })
    const mine = await alice.nextOfType('message')
    t.match(mine, { channel: 'lobby', from: 'alice', data: { text: 'hello everyone' } })
    t.same(await alice.nextOfType('ack'), { type: 'ack', ref: 1, id: mine.id }, 'an ordinary publish: ack with the id')
    t.match(await bob.next(), { type: 'message', channel: 'lobby', id: mine.id, from: 'alice', data: { text: 'hello everyone' } }, 'delivered to another user')
    t.match(await carol.next(), { type: 'message', id: mine.id })

    alice.send({ type: 'publish', channel: 'lobby', data: { text: 'cheap SPAM, buy now!' }, ref: 2 })
    t.same(await alice.next(), { type: 'ack', ref: 2 }, 'a banned word: acknowledged without an id (dropped by the backend)')
    alice.send({ type: 'publish', channel: 'lobby', data: 'spam', ref: 3 })
    t.same(await alice.next(), { type: 'ack', ref: 3 }, 'a bare string is read too')
    alice.send({ type: 'publish', channel: 'lobby', data: { text: 'spammers are welcome' }, ref: 4 })
    const word = await alice.nextOfType('message')
    t.match(word, { data: { text: 'spammers are welcome' } }, 'a word that only contains a banned one goes through')
    t.same(await alice.nextOfType('ack'), { type: 'ack', ref: 4, id: word.id })
    t.match(await bob.next(), { type: 'message', id: word.id })
    t.match(await carol.next(), { type: 'message', id: word.id })

    alice.send({ type: 'publish', channel: 'lobby', data: { text: '/msg bob hello' }, ref: 5 })
    t.same(await alice.next(), { type: 'ack', ref: 5 }, '/msg: acknowledged without an id')
    const direct = await bob.next()
    t.match(direct, { type: 'direct', id: String, from: null, data: { from: 'alice', text: 'hello' } }, 'bob gets it as a direct frame from the server API')
    t.same(direct.data, { from: 'alice', text: 'hello' })
    alice.send({ type: 'publish', channel: 'lobby', data: '/msg bob   hi there  ', ref: 6 })
    t.same(await alice.next(), { type: 'ack', ref: 6 })
    t.match(await bob.next(), { type: 'direct', data: { from: 'alice', text: 'hi there' } }, 'the string form')
    alice.send({ type: 'publish', channel: 'lobby', data: { text: '/msg bob' }, ref: 7 })
    t.match(await alice.next(), { type: 'error', code: 'bad_request', ref: 7 }, '/msg without a text: the backend\'s 422 is bad_request')

    t.same(await settle(bob), [], 'nothing else reached bob: no lobby copy of the private messages, nothing of the dropped ones')
    t.same(await settle(carol), [], 'nor carol')
    t.same(await settle(alice), [], 'nor alice')
    const history = await fetch(`${app.base}/api/channels/lobby/messages`, { headers: { 'x-api-key': API_KEY } }).then(r => r.json()) as { messages: Frame[] }
    t.same(history.messages.map(m => m.data), [{ text: 'hello everyone' }, { text: 'spammers are welcome' }], 'the lobby\'s history holds only what was fanned out')
    clean(t, backend.output())
  })

  t.test('subscribe: another user\'s inbox is forbidden, a shared "inbox" too (the backend\'s rule); other channels are allowed', async t => {
    const { app, backend } = await setup(t, start)
    const { c: alice } = await socket(t, app, 'alice')
    await serverSubscriptions(alice)

    alice.send({ type: 'subscribe', channel: 'inbox#bob', ref: 's1' })
    t.match(await alice.next(), { type: 'error', code: 'forbidden', ref: 's1', channel: 'inbox#bob' }, 'bob\'s inbox')
    // Gatecast itself lets alice into a # channel that lists her; the backend does not
    alice.send({ type: 'subscribe', channel: 'inbox#alice,bob', ref: 's2' })
    t.match(await alice.next(), { type: 'error', code: 'forbidden', ref: 's2', channel: 'inbox#alice,bob' }, 'an inbox is its owner\'s alone (the backend\'s 403)')
    alice.send({ type: 'subscribe', channel: 'dm#alice,bob', ref: 's3' })
    t.same(await alice.next(), { type: 'subscribed', channel: 'dm#alice,bob', ref: 's3', by: 'client' }, 'another # channel that lists her is allowed')
    alice.send({ type: 'subscribe', channel: 'room:1', ref: 's4' })
    t.same(await alice.next(), { type: 'subscribed', channel: 'room:1', ref: 's4', by: 'client' }, 'an ordinary channel is allowed')
    alice.send({ type: 'subscribe', channel: 'inbox#alice', ref: 's5' })
    t.same(await alice.next(), { type: 'subscribed', channel: 'inbox#alice', ref: 's5', by: 'client' }, 'her own inbox again')

    await app.app.gatecast.publish('inbox#alice,bob', 'not for alice')
    await app.app.gatecast.publish('room:1', 'for room 1')
    t.match(await alice.next(), { type: 'message', channel: 'room:1', data: 'for room 1' })
    t.same(await settle(alice), [], 'nothing of the refused channel')
    clean(t, backend.output())
  })

  t.test('close: each closed socket is one JSON line in LOG_FILE; a refused upgrade makes none', async t => {
    const { app, backend, logFile } = await setup(t, start)
    const { c: alice, ready } = await socket(t, app, 'alice')
    await serverSubscriptions(alice)
    alice.send({ type: 'subscribe', channel: 'room:7', ref: 1 })
    t.match(await alice.next(), { type: 'subscribed', channel: 'room:7' })
    t.equal((await refused(`${app.ws}/ws`, bearer(app.token({ sub: 'mallory' })))).status, 403)
    t.same(closeLines(logFile), [], 'no line while the socket is open')

    alice.close()
    await alice.closed
    await waitFor(() => closeLines(logFile).length > 0, { what: `a close line in ${logFile}` })
    const [line, ...rest] = closeLines(logFile)
    t.same(rest, [], 'one line')
    t.match(line, { event: 'close', connectionId: ready.connectionId, userId: 'alice', code: Number }, 'the socket\'s connection id, user and close code')
    t.same([...line.channels].sort(), ['inbox#alice', 'lobby', 'room:7'], 'every channel it had')

    const { c: bob, ready: bobReady } = await socket(t, app, 'bob')
    await serverSubscriptions(bob)
    bob.ws.close(4000, 'bye')
    await waitFor(() => closeLines(logFile).length > 1, { what: 'bob\'s close line' })
    t.match(closeLines(logFile)[1], { event: 'close', connectionId: bobReady.connectionId, userId: 'bob', code: 4000 }, 'the client\'s close code')
    t.same(closeLines(logFile).map(l => l.userId), ['alice', 'bob'], 'nothing for the refused upgrade')
    clean(t, backend.output())
  })

  t.test('signature: the backend answers 401 to a missing or wrong X-Gatecast-Signature and does nothing else', async t => {
    const { app, backend, logFile } = await setup(t, start)
    const { c: bob } = await socket(t, app, 'bob')
    await serverSubscriptions(bob)

    // odd spacing: the signature covers the raw bytes, not a re-encoding of the JSON
    const connect = '{ "connectionId" : "c-1", "userId":"carol", "claims":{"sub":"carol"}, "channel":null, "remoteAddress":"127.0.0.1" }'
    const none = await post(backend, 'connect', connect, undefined)
    t.equal(none.status, 401, 'no signature: 401')
    t.type(none.body, 'object', 'with a JSON error')
    t.not(none.body, null)
    t.equal((await post(backend, 'connect', connect, sign(connect, 'another-secret-0123456789-0123456789'))).status, 401, 'signed with another key: 401')
    t.equal((await post(backend, 'connect', connect, sign(connect.replace('carol', 'carl')))).status, 401, 'the signature of another body: 401')
    t.equal((await post(backend, 'connect', connect, sign(connect).replace('sha256=', ''))).status, 401, 'the hex without its sha256= prefix: 401')
    t.equal((await post(backend, 'connect', connect, 'sha256=')).status, 401, 'an empty digest: 401')
    const right = await post(backend, 'connect', connect, sign(connect))
    t.equal(right.status, 200, 'the right signature: 200')
    t.same(right.body, { channels: ['lobby', 'inbox#carol'], data: { welcome: 'Welcome, carol!', inbox: 'inbox#carol' } }, 'and the connect answer')

    const subscribe = JSON.stringify({ connectionId: 'c-1', userId: 'alice', channel: 'inbox#bob' })
    t.equal((await post(backend, 'subscribe', subscribe, sign(subscribe))).status, 403, 'signed: another user\'s inbox is 403')
    const own = JSON.stringify({ connectionId: 'c-1', userId: 'alice', channel: 'inbox#alice' })
    t.equal((await post(backend, 'subscribe', own, sign(own))).status, 200, 'signed: her own is 200')

    // forged events change nothing
    const forgedMsg = JSON.stringify({ connectionId: 'c-1', userId: 'alice', channel: 'lobby', data: { text: '/msg bob forged' } })
    t.equal((await post(backend, 'publish', forgedMsg, undefined)).status, 401, 'an unsigned /msg: 401')
    t.equal((await post(backend, 'publish', forgedMsg, sign(forgedMsg, 'another-secret-0123456789-0123456789'))).status, 401)
    const forgedClose = JSON.stringify({ connectionId: 'forged-close', userId: 'alice', channels: ['lobby'], code: 1000 })
    t.equal((await post(backend, 'close', forgedClose, undefined)).status, 401, 'an unsigned close: 401')
    t.same(await settle(bob, 300), [], 'the forged /msg reached no one')
    t.same(closeLines(logFile), [], 'the forged close was not logged')

    // the real path, for contrast: Gatecast's own signature is accepted
    const signedMsg = JSON.stringify({ connectionId: 'c-1', userId: 'alice', channel: 'lobby', data: { text: '/msg bob signed' } })
    const sent = await post(backend, 'publish', signedMsg, sign(signedMsg))
    t.same([sent.status, sent.body], [200, { skip: true }], 'a signed /msg: 200 {"skip":true}')
    t.match(await bob.next(), { type: 'direct', data: { from: 'alice', text: 'signed' } })

    // a Gatecast whose BACKEND_SECRET differs: the backend refuses every connect, so every upgrade is refused
    const { app: wrong } = await setupAgainst(t, backend, 'a-gatecast-with-the-wrong-secret-0123456789')
    const refusal = await refused(`${wrong.ws}/ws`, bearer(wrong.token({ sub: 'alice' })))
    t.equal(refusal.status, 401, 'mismatched secrets: the backend\'s 401 refuses the upgrade')
    clean(t, backend.output())
  })
}

/** A second Gatecast pointed at a running backend (which calls back the first). */
async function setupAgainst (t: Test, backend: Backend, secret: string): Promise<{ app: TestApp }> {
  const app = await startApp(t, { config: { usersFile: null, apiKey: API_KEY, backendUrl: backend.url, backendSecret: secret } })
  return { app }
}
