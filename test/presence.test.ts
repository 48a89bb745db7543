// Presence (namespaces with `presence: true`), counts that survive sockets dying
// without a close frame, namespaces without client publish, and `#` channels.
import t from 'tap'
import type { ClientOptions } from 'ws'
import { api, startApp, type TestApp } from './helpers/app.ts'
import { connect, type Client, type Frame } from './helpers/client.ts'
import { waitFor } from './helpers/wait.ts'

const KEY = 'backend-api-key-0123456789'
const auth = { 'x-api-key': KEY }
const noUsersFile = () => null

async function start (test: Parameters<typeof startApp>[0], config: Record<string, unknown> = {}): Promise<TestApp> {
  return startApp(test, { config: { apiKey: KEY, channels: { room: { presence: true }, news: { publish: false } }, ...config }, verifyCredentials: noUsersFile })
}

async function open (test: { teardown: (fn: () => unknown) => void }, app: TestApp, channel: string, sub: string, opts: ClientOptions = {}): Promise<Client> {
  const c = await connect(`${app.ws}/ws/${encodeURIComponent(channel)}`, { ...opts, headers: { authorization: `Bearer ${app.token({ sub })}` } })
  test.teardown(() => c.ws.terminate())
  await c.nextOfType('ready')
  return c
}

const sortUsers = (users: Array<{ userId: string, connections: number }>) => [...users].sort((a, b) => a.userId.localeCompare(b.userId))

async function presenceOf (app: TestApp, channel: string): Promise<Array<{ userId: string, connections: number }>> {
  const res = await api(app.base, 'GET', `/api/channels/${encodeURIComponent(channel)}/presence`, { headers: auth })
  if (res.status !== 200) throw new Error(`presence: ${res.status}`)
  return sortUsers(res.body.users)
}

/** Publishes a marker and returns every frame the client got before it (the marker consumed). */
async function upToMarker (app: TestApp, c: Client, channel: string): Promise<Frame[]> {
  const { id } = await app.app.gatecast.publish(channel, { marker: true })
  await c.next(f => f.type === 'message' && f.id === id)
  const before = c.frames.splice(0)
  return before
}

const presenceFrames = (frames: Frame[], userId: string) => frames.filter(f => f.type === 'presence' && f.userId === userId)

t.test('presence: one join on a user\'s first socket, one leave after the last, whatever happens in between', async t => {
  const app = await start(t)
  const bob = await open(t, app, 'room:1', 'bob')
  await upToMarker(app, bob, 'room:1')

  const a1 = await open(t, app, 'room:1', 'alice')
  const join = await bob.next(f => f.type === 'presence' && f.userId === 'alice')
  t.same(join, { type: 'presence', channel: 'room:1', event: 'join', userId: 'alice' })
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'alice', connections: 1 }, { userId: 'bob', connections: 1 }])

  const a2 = await open(t, app, 'room:1', 'alice')
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'alice', connections: 2 }, { userId: 'bob', connections: 1 }])
  t.same(presenceFrames(await upToMarker(app, bob, 'room:1'), 'alice'), [], 'no second join for the second socket')

  a1.close()
  t.equal((await a1.closed).code, 1005)
  await waitFor(async () => (await presenceOf(app, 'room:1')).find(u => u.userId === 'alice')?.connections === 1, { ms: 4000, every: 20, what: 'alice down to one connection' })
  t.same(sortUsers((await app.app.gatecast.presence('room:1')).users), [{ userId: 'alice', connections: 1 }, { userId: 'bob', connections: 1 }])
  t.same(presenceFrames(await upToMarker(app, bob, 'room:1'), 'alice'), [], 'no leave while a socket of the user remains')

  a2.close()
  await a2.closed
  const leave = await bob.next(f => f.type === 'presence' && f.userId === 'alice')
  t.same(leave, { type: 'presence', channel: 'room:1', event: 'leave', userId: 'alice' })
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'bob', connections: 1 }])
  t.same(presenceFrames(await upToMarker(app, bob, 'room:1'), 'alice'), [], 'exactly one leave')

  // another room of the namespace is a separate presence set
  const other = await open(t, app, 'room:2', 'alice')
  t.same(presenceFrames(await upToMarker(app, bob, 'room:1'), 'alice'), [], 'joining room:2 says nothing on room:1')
  t.same(await presenceOf(app, 'room:2'), [{ userId: 'alice', connections: 1 }])
  other.close()
})

t.test('no presence frames outside presence namespaces', async t => {
  const app = await start(t)
  const bob = await open(t, app, 'chat', 'bob')
  const alice = await open(t, app, 'chat', 'alice')
  alice.close()
  await alice.closed
  await waitFor(async () => (await presenceOf(app, 'chat')).length === 1, { ms: 4000, every: 20, what: 'one user present on chat' })
  t.same((await upToMarker(app, bob, 'chat')).filter(f => f.type === 'presence'), [])
})

t.test('presence stays right when sockets die without a close frame (client terminate)', async t => {
  const app = await start(t)
  const bob = await open(t, app, 'room:1', 'bob')
  const a1 = await open(t, app, 'room:1', 'alice')
  const a2 = await open(t, app, 'room:1', 'alice')
  await bob.next(f => f.type === 'presence' && f.userId === 'alice' && f.event === 'join')
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'alice', connections: 2 }, { userId: 'bob', connections: 1 }])

  a1.ws.terminate()
  await waitFor(async () => (await presenceOf(app, 'room:1')).find(u => u.userId === 'alice')?.connections === 1, { ms: 4000, every: 20, what: 'alice down to one connection' })
  t.same(presenceFrames(await upToMarker(app, bob, 'room:1'), 'alice'), [], 'one socket left: no leave')

  a2.ws.terminate()
  const leave = await bob.next(f => f.type === 'presence' && f.userId === 'alice')
  t.equal(leave.event, 'leave')
  await waitFor(async () => (await presenceOf(app, 'room:1')).length === 1, { ms: 4000, every: 20, what: 'one user present on room:1' })
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'bob', connections: 1 }])
  t.same((await app.app.gatecast.presence('room:1')).users, [{ userId: 'bob', connections: 1 }])
  t.same((await app.app.gatecast.userStatus('alice')), { userId: 'alice', online: false, connections: 0, channels: [] })
  const channels = await api(app.base, 'GET', '/api/channels', { headers: auth })
  t.same(channels.body.channels, [{ name: 'room:1', connections: 1, users: 1 }])
})

t.test('presence stays right when a peer stops answering pings (wsPingInterval 1, autoPong false)', async t => {
  const app = await start(t, { wsPingInterval: 1 })
  const bob = await open(t, app, 'room:1', 'bob')
  const mute = await open(t, app, 'room:1', 'alice', { autoPong: false })
  await bob.next(f => f.type === 'presence' && f.userId === 'alice' && f.event === 'join')
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'alice', connections: 1 }, { userId: 'bob', connections: 1 }])

  const started = Date.now()
  const closed = await Promise.race([
    mute.closed,
    new Promise<null>(resolve => setTimeout(() => resolve(null), 4500))
  ])
  t.not(closed, null, 'the silent socket was dropped by the server')
  t.equal(closed?.code, 1006, 'terminated, no close handshake')
  t.ok(Date.now() - started < 4500)

  const leave = await bob.next(f => f.type === 'presence' && f.userId === 'alice')
  t.same(leave, { type: 'presence', channel: 'room:1', event: 'leave', userId: 'alice' })
  await waitFor(async () => (await presenceOf(app, 'room:1')).length === 1, { ms: 4000, every: 20, what: 'one user present on room:1' })
  t.same(await presenceOf(app, 'room:1'), [{ userId: 'bob', connections: 1 }])
  t.same((await app.app.gatecast.presence('room:1')).users, [{ userId: 'bob', connections: 1 }])

  // bob answers pings: still connected after more than two intervals, still receiving
  t.equal(bob.ws.readyState, bob.ws.OPEN)
  const { id } = await app.app.gatecast.publish('room:1', 'still alive')
  t.equal((await bob.nextOfType('message')).id, id)
})

t.test('publish:false namespace: client publish gets error forbidden, the server API still publishes', async t => {
  const app = await start(t)
  const alice = await open(t, app, 'news:1', 'alice')
  const bob = await open(t, app, 'news:1', 'bob')
  alice.send({ type: 'publish', data: { text: 'may I?' }, ref: 'r1' })
  const err = await alice.nextOfType('error')
  t.equal(err.code, 'forbidden')
  t.equal(err.ref, 'r1')
  t.type(err.message, 'string')
  alice.send({ type: 'publish', data: 'no ref' })
  const err2 = await alice.nextOfType('error')
  t.equal(err2.code, 'forbidden')
  t.notOk('ref' in err2, 'no ref when none was sent')
  t.equal(alice.ws.readyState, alice.ws.OPEN, 'the socket stays open')

  const res = await api(app.base, 'POST', '/api/channels/news:1/messages', { body: { data: { headline: 'server only' } }, headers: auth })
  t.equal(res.status, 201)
  for (const c of [alice, bob]) {
    const m = await c.nextOfType('message')
    t.equal(m.id, res.body.id)
    t.equal(m.from, null)
    t.same(m.data, { headline: 'server only' })
  }
  const viaDecorator = await app.app.gatecast.publish('news:1', 'from a plugin')
  t.equal((await bob.nextOfType('message')).id, viaDecorator.id)
  t.same(bob.frames.filter(f => f.type === 'message'), [], 'the refused client publishes never reached anyone')
  const history = await api(app.base, 'GET', '/api/channels/news:1/messages', { headers: auth })
  t.same(history.body.messages.map((m: { data: unknown }) => m.data), [{ headline: 'server only' }, 'from a plugin'])
})

t.test('user-limited channel dm#alice,bob admits alice and bob, who talk to each other', async t => {
  const app = await start(t)
  const alice = await open(t, app, 'dm#alice,bob', 'alice')
  const bob = await open(t, app, 'dm#alice,bob', 'bob')
  t.equal(alice.ws.readyState, alice.ws.OPEN)
  alice.send({ type: 'publish', data: 'hi bob', ref: 1 })
  const m = await bob.nextOfType('message')
  t.equal(m.channel, 'dm#alice,bob')
  t.equal(m.from, 'alice')
  t.equal(m.data, 'hi bob')
  t.equal((await alice.nextOfType('ack')).id, m.id)
})
