// Extending and embedding (contract section 6): extra plugins by path (the
// PLUGINS / --plugin way), the hooks, and Gatecast inside a host app — using
// the examples in examples/, which import the built package ('gatecast' → dist/).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { GatecastError } from '../src/protocol/errors.ts'
import type { CloseContext, ConnectContext } from '../src/core/gateway.ts'
import { api, SECRET, startApp, type TestApp } from './helpers/app.ts'
import { connect, refused, type Client } from './helpers/client.ts'
import { waitFor } from './helpers/wait.ts'

const PROFANITY = fileURLToPath(new URL('../examples/profanity-filter.js', import.meta.url))
const HOST_APP = new URL('../examples/host-app.js', import.meta.url).href
const KEY = 'backend-api-key-0123456789'
const noUsersFile = () => null

async function open (test: { teardown: (fn: () => unknown) => void }, app: TestApp, channel: string, sub: string): Promise<Client> {
  const c = await connect(`${app.ws}/ws/${encodeURIComponent(channel)}`, { headers: { authorization: `Bearer ${app.token({ sub })}` } })
  test.teardown(() => c.ws.terminate())
  await c.nextOfType('ready')
  return c
}

t.test('examples/profanity-filter.js by path (plugins option): masks bad words, refuses shouting, adds GET /stats', async t => {
  const app = await startApp(t, { plugins: [PROFANITY], config: { apiKey: KEY }, verifyCredentials: noUsersFile })
  const alice = await open(t, app, 'chat', 'alice')
  const bob = await open(t, app, 'chat', 'bob')

  alice.send({ type: 'publish', data: 'what the heck is this darn thing', ref: 1 })
  const m1 = await bob.nextOfType('message')
  t.equal(m1.data, 'what the **** is this **** thing', 'string data rewritten before fan-out')
  t.equal(m1.from, 'alice')
  t.same(await alice.nextOfType('message'), m1, 'the publisher gets the rewritten message too')
  t.equal((await alice.nextOfType('ack')).id, m1.id)

  alice.send({ type: 'publish', data: { text: 'Frak!', n: 1, tags: ['heck', 'fine'] }, ref: 2 })
  t.same((await bob.nextOfType('message')).data, { text: '****!', n: 1, tags: ['****', 'fine'] }, 'strings inside objects too')

  alice.send({ type: 'publish', data: 'STOP SHOUTING AT ME', ref: 3 })
  const err = await alice.nextOfType('error')
  t.equal(err.code, 'forbidden', 'a hook throwing GatecastError(403, forbidden) from the package → error frame forbidden')
  t.equal(err.ref, 3)
  t.equal(err.message, 'please do not shout')
  t.equal(alice.ws.readyState, alice.ws.OPEN)

  // the stored history holds the rewritten data and nothing refused
  const hist = await api(app.base, 'GET', '/api/channels/chat/messages', { headers: { 'x-api-key': KEY } })
  t.same(hist.body.messages.map((m: { data: unknown }) => m.data), ['what the **** is this **** thing', { text: '****!', n: 1, tags: ['****', 'fine'] }])
  t.same(bob.frames.filter(f => f.type === 'message'), [], 'the shouted message reached nobody')

  // the hook runs for the server API as well
  const pub = await api(app.base, 'POST', '/api/channels/chat/messages', { body: { data: 'oh heck' }, headers: { 'x-api-key': KEY } })
  t.equal(pub.status, 201)
  t.equal((await bob.nextOfType('message')).data, 'oh ****')
  const loud = await api(app.base, 'POST', '/api/channels/chat/messages', { body: { data: 'EVERYONE LISTEN' }, headers: { 'x-api-key': KEY } })
  t.equal(loud.status, 403)
  t.equal(loud.body.code, 'forbidden')

  const stats = await api(app.base, 'GET', '/stats')
  t.equal(stats.status, 200)
  t.same(stats.body, { channels: [{ name: 'chat', connections: 2, users: 2 }] })
})

t.test('PLUGINS environment variable loads the same plugin', async t => {
  const app = await startApp(t, { env: { PLUGINS: PROFANITY }, verifyCredentials: noUsersFile })
  const alice = await open(t, app, 'chat', 'alice')
  alice.send({ type: 'publish', data: 'heck' })
  t.equal((await alice.nextOfType('message')).data, '****')
  const stats = await api(app.base, 'GET', '/stats')
  t.same(stats.body, { channels: [{ name: 'chat', connections: 1, users: 1 }] })
})

t.test('onConnect hook: rejecting with GatecastError(403) refuses the upgrade with HTTP 403', async t => {
  const seen: ConnectContext[] = []
  const plugin: FastifyPluginAsync = async (app) => {
    app.gatecast.onConnect(async (ctx) => {
      seen.push(ctx)
      if (ctx.userId === 'mallory') throw new GatecastError(403, 'banned', 'mallory is banned')
      if (ctx.channel === 'broken') throw new Error('a bug in the hook')
    })
  }
  const app = await startApp(t, { plugins: [plugin], verifyCredentials: noUsersFile })

  const res = await refused(`${app.ws}/ws/chat`, { headers: { authorization: `Bearer ${app.token({ sub: 'mallory' })}` } })
  t.equal(res.status, 403)
  t.same(res.body, { statusCode: 403, error: 'Forbidden', message: 'mallory is banned', code: 'banned' })

  const broken = await refused(`${app.ws}/ws/broken`, { headers: { authorization: `Bearer ${app.token({ sub: 'alice' })}` } })
  t.equal(broken.status, 500, 'a hook failing with a plain Error: 500, no socket')
  t.equal(broken.body.code, 'internal')
  t.notMatch(broken.body.message, /a bug in the hook/, 'internals are not leaked')

  const alice = await open(t, app, 'chat', 'alice')
  t.equal(alice.ws.readyState, alice.ws.OPEN, 'others are admitted')
  t.match(seen.map(c => ({ userId: c.userId, channel: c.channel })), [
    { userId: 'mallory', channel: 'chat' },
    { userId: 'alice', channel: 'broken' },
    { userId: 'alice', channel: 'chat' }
  ])
  t.type(seen[0].remoteAddress, 'string')
  t.equal(seen[0].identity.userId, 'mallory')
  t.same((await app.app.gatecast.userStatus('mallory')).connections, 0, 'no socket was counted for the refused user')
})

t.test('onClose hook sees the close code', async t => {
  const closes: CloseContext[] = []
  const plugin: FastifyPluginAsync = async (app) => {
    app.gatecast.onClose((ctx) => { closes.push(ctx) })
  }
  const app = await startApp(t, { plugins: [plugin], verifyCredentials: noUsersFile })

  const byClient = await connect(`${app.ws}/ws/chat`, { headers: { authorization: `Bearer ${app.token({ sub: 'alice' })}` } })
  const ready = await byClient.nextOfType('ready')
  byClient.ws.close(4000, 'bye')
  await byClient.closed
  await waitFor(() => closes.length === 1, { ms: 3000, every: 20, what: 'the first close' })
  t.match(closes[0], { connectionId: ready.connectionId, userId: 'alice', channel: 'chat', code: 4000 })
  t.type(closes[0].durationMs, 'number')
  t.ok(closes[0].durationMs >= 0)

  const kicked = await open(t, app, 'news', 'bob')
  await app.app.gatecast.disconnectUser('bob')
  t.equal((await kicked.closed).code, 4403)
  await waitFor(() => closes.length === 2, { ms: 3000, every: 20, what: 'the second close' })
  t.match(closes[1], { userId: 'bob', channel: 'news', code: 4403 })

  const dropped = await open(t, app, 'chat', 'carol')
  dropped.ws.terminate()
  await waitFor(() => closes.length === 3, { ms: 3000, every: 20, what: 'the third close' })
  t.match(closes[2], { userId: 'carol', channel: 'chat', code: 1006 })
})

t.test('examples/host-app.js: host route, login through its verifyCredentials, a socket with the issued token', async t => {
  const { createHostApp } = await import(HOST_APP) as {
    createHostApp: (opts: Record<string, unknown>) => Promise<FastifyInstance>
  }
  const logs: string[] = []
  const app = await createHostApp({
    logger: { level: 'info', stream: { write: (line: string) => { logs.push(line) } } },
    env: {},
    cwd: mkdtempSync(join(tmpdir(), 'gatecast-host-')),
    config: { jwtSecret: SECRET },
    users: { carol: { password: 'correct horse battery', name: 'Carol', roles: ['editor'] } }
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const base = `http://127.0.0.1:${port}`

  const hello = await api(base, 'GET', '/hello')
  t.equal(hello.status, 200)
  t.same(hello.body, { hello: 'from the host app', subscriptions: 0 })

  const wrong = await api(base, 'POST', '/auth/login', { body: { username: 'carol', password: 'wrong' } })
  t.equal(wrong.status, 401)
  const unknown = await api(base, 'POST', '/auth/login', { body: { username: 'nobody', password: 'correct horse battery' } })
  t.equal(unknown.status, 401)
  t.equal(unknown.body.message, wrong.body.message, 'one message for unknown user and wrong password')

  const login = await api(base, 'POST', '/auth/login', { body: { username: 'carol', password: 'correct horse battery' } })
  t.equal(login.status, 200)
  t.equal(login.body.token_type, 'Bearer')
  t.type(login.body.access_token, 'string')
  t.type(login.body.refresh_token, 'string')

  const c = await connect(`ws://127.0.0.1:${port}/ws/chat`, { headers: { authorization: `Bearer ${login.body.access_token}` } })
  t.teardown(() => c.ws.terminate())
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'carol')
  t.equal(ready.channel, 'chat')
  c.send({ type: 'publish', data: 'hello from carol', ref: 'x' })
  const m = await c.nextOfType('message')
  t.equal(m.from, 'carol')
  t.equal(m.data, 'hello from carol')

  // the token also works in the query (browsers), and on a 128-character channel name
  const long = 'c'.repeat(128)
  const c2 = await connect(`ws://127.0.0.1:${port}/ws/${long}?token=${encodeURIComponent(login.body.access_token)}`)
  t.teardown(() => c2.ws.terminate())
  t.equal((await c2.nextOfType('ready')).channel, long)

  const after = await api(base, 'GET', '/hello')
  t.same(after.body, { hello: 'from the host app', subscriptions: 2 }, 'the host route sees the gatecast decorator')
  const noToken = await refused(`ws://127.0.0.1:${port}/ws/chat`)
  t.equal(noToken.status, 401)
  // the host's own Fastify logger logs requests, the ?token= upgrade included: path only
  const requestLines = logs.filter(l => l.includes('"url":"/ws/'))
  t.ok(requestLines.some(l => l.includes('?[redacted]')), 'the ?token= upgrade was logged, redacted')
  t.notOk(logs.some(l => l.includes(login.body.access_token)), 'no access token in the host app\'s logs')
})
