// A session's frames, one socket at a time, through a fake transport: what it
// answers, what it refuses, and when it closes.
import t from 'tap'
import { CloseCodes } from '../../src/protocol/codes.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import type { Session } from '../../src/core/session.ts'
import { sleep } from '../helpers/wait.ts'
import { coreNode } from '../helpers/core.ts'

t.test('ready comes first; ping, publish with ack, and the publisher receives its own message', async t => {
  const n = await coreNode(t)
  const s = await n.connect('chat')
  const [ready] = s.frames()
  t.match(ready, { type: 'ready', channel: 'chat', userId: 'alice' })
  t.type(ready.connectionId, 'string')
  s.receive({ type: 'ping' })
  s.receive({ type: 'publish', data: { text: 'hi' }, ref: 7 })
  await new Promise(resolve => setImmediate(resolve))
  const frames = s.frames()
  t.same(frames[1], { type: 'pong' })
  t.match(frames[2], { type: 'message', channel: 'chat', from: 'alice', data: { text: 'hi' } })
  t.match(frames[3], { type: 'ack', ref: 7, id: frames[2].id })
  t.equal(n.stats.publishedByClient, 1)
  t.equal(n.stats.framesIn, 2)
})

t.test('bad frames get bad_request with their ref; fifty in a row close 1008', async t => {
  const n = await coreNode(t)
  const s = await n.connect('chat')
  s.receive('{not json')
  s.receive({ type: 'shout', ref: 'r1' })
  s.receive({ type: 'publish', ref: 'r2' })
  s.handler?.onMessage(Buffer.from('x'), true)
  const errors = s.frames().slice(1)
  t.match(errors[0], { type: 'error', code: 'bad_request', message: 'invalid JSON' })
  t.match(errors[1], { type: 'error', code: 'bad_request', ref: 'r1', message: 'unknown frame type' })
  t.match(errors[2], { type: 'error', code: 'bad_request', ref: 'r2' })
  t.match(errors[3], { type: 'error', code: 'bad_request', message: 'binary frames are not supported' })
  s.receive({ type: 'ping' })
  for (let i = 0; i < 49; i++) s.receive('[')
  t.equal(s.closedWith, null, 'a valid frame resets the count: 49 in a row are tolerated')
  s.receive('[')
  t.same(s.closedWith, { code: CloseCodes.policy, reason: 'too many invalid frames' })
})

t.test('publishes beyond the rate get rate_limited, and a second of them closes 4429', async t => {
  const n = await coreNode(t, { wsMessageRate: 5 })
  const s = await n.connect('chat')
  for (let i = 0; i < 10; i++) s.receive({ type: 'publish', data: i })
  t.equal(s.frames().filter(f => f.type === 'error').length, 0, 'the burst (2× rate) passes')
  s.receive({ type: 'publish', data: 'over', ref: 'x' })
  t.match(s.frames().at(-1), { type: 'error', code: 'rate_limited', ref: 'x' })
  for (let i = 0; i < 3; i++) s.receive({ type: 'publish', data: 'over' })
  t.equal(s.closedWith, null)
  s.receive({ type: 'publish', data: 'over' })
  t.same(s.closedWith, { code: CloseCodes.rateLimited, reason: 'message rate exceeded' })
})

t.test('publish refusals: a namespace without client publish, publish hooks, data too deep', async t => {
  const n = await coreNode(t, { channels: { news: { publish: false } } })
  n.gatecast.onPublish(ctx => {
    if ((ctx.data as { secret?: boolean }).secret === true) throw new GatecastError(451, 'censored', 'not here')
    return { data: { ...(ctx.data as object), by: ctx.userId } }
  })
  const news = await n.connect('news:today')
  news.receive({ type: 'publish', data: {}, ref: 1 })
  t.match(news.frames().at(-1), { type: 'error', code: 'forbidden', ref: 1, message: 'clients may not publish on this channel' })
  const chat = await n.connect('chat')
  chat.receive({ type: 'publish', data: { secret: true }, ref: 2 })
  chat.receive({ type: 'publish', data: { text: 'ok' }, ref: 3 })
  let deep: unknown = 1
  for (let i = 0; i < 40; i++) deep = [deep]
  chat.receive({ type: 'publish', data: deep, ref: 4 })
  await sleep(10)
  const frames = chat.frames()
  t.match(frames.find(f => f.ref === 2), { type: 'error', code: 'forbidden', message: 'not here' }, 'a hook refusal maps to forbidden')
  t.match(frames.find(f => f.type === 'message'), { data: { text: 'ok', by: 'alice' } }, 'a hook replaced the data')
  t.match(frames.find(f => f.ref === 4), { type: 'error', code: 'bad_request' })
})

t.test('refresh: another user is refused, a withdrawn channel is left with `unsubscribed` forbidden, a good token extends the session', async t => {
  const n = await coreNode(t)
  const s = await n.connect('room:1', { channels: ['room:*'] })
  s.receive({ type: 'refresh', token: n.token({ sub: 'mallory' }) })
  await sleep(10)
  t.match(s.frames().at(-1), { type: 'error', code: 'forbidden', message: 'token belongs to another user' })
  const exp = Math.floor(Date.now() / 1000) + 3600
  s.receive({ type: 'refresh', token: n.token({ channels: ['room:*'], exp }) })
  await sleep(10)
  t.same(s.frames().at(-1), { type: 'refreshed', expiresAt: exp })
  s.receive({ type: 'refresh', token: 'not.a.token' })
  await sleep(10)
  t.match(s.frames().at(-1), { type: 'error', code: 'forbidden' }, 'a 401 from verification is a forbidden frame')
  s.receive({ type: 'refresh', token: n.token({ channels: ['lobby'], exp }) })
  await sleep(10)
  t.same(s.frames().slice(-2), [{ type: 'unsubscribed', channel: 'room:1', reason: 'forbidden' }, { type: 'refreshed', expiresAt: exp }])
  t.equal(s.closedWith, null, 'the socket stays')
  await n.gatecast.publish('room:1', 'after')
  t.notOk(s.frames().some(f => f.type === 'message'), 'nothing of the withdrawn channel')
})

t.test('a closed socket: no frame handled or written after close, close hooks and presence run once', async t => {
  const n = await coreNode(t, { channels: { room: { presence: true } } })
  const closes: unknown[] = []
  n.gatecast.onClose(ctx => { closes.push([ctx.userId, ctx.channel, ctx.code]) })
  const watcher = await n.connect('room:1', { sub: 'bob' })
  const s = await n.connect('room:1')
  const written = s.written.length
  s.gone(1000)
  s.receive({ type: 'ping' })
  t.equal(s.written.length, written, 'nothing answered after the socket went')
  await sleep(10)
  t.same(closes, [['alice', 'room:1', 1000]])
  t.same(n.gatecast.hub.size, 1)
  t.match(watcher.frames().at(-1), { type: 'presence', event: 'leave', userId: 'alice' })
  t.equal(n.stats.closes.get(1000), 1)
  t.ok(n.log.lines.some(l => l.msg === 'socket closed'), 'the close is logged')
})

t.test('a channel the server joins again is the server\'s: a refresh without it in the token keeps it', async t => {
  const n = await coreNode(t)
  const s = await n.connect('room:1', { channels: ['room:*'] })
  const id = s.frames()[0].connectionId as string
  t.equal(await n.gatecast.subscribeConnection(id, 'room:1'), true)
  await sleep(10)
  t.match(s.frames().at(-1), { type: 'subscribed', channel: 'room:1', by: 'server' })
  const exp = Math.floor(Date.now() / 1000) + 3600
  s.receive({ type: 'refresh', token: n.token({ channels: ['lobby'], exp }) })
  await sleep(10)
  t.same(s.frames().at(-1), { type: 'refreshed', expiresAt: exp }, 'no unsubscribed: the server joined it')
  await n.gatecast.publish('room:1', 'still here')
  t.match(s.frames().at(-1), { type: 'message', channel: 'room:1', data: 'still here' })
})

t.test('a socket slot release the engine fails is tried again: the user is not locked out at the cap', async t => {
  const n = await coreNode(t, { wsSocketsPerUser: 1 })
  const s = await n.connect('room:1')
  const presence = n.engine.presence
  const release = presence.releaseSocket.bind(presence)
  let failures = 1
  presence.releaseSocket = async (userId: string) => {
    if (failures-- > 0) throw new Error('engine away for a moment')
    await release(userId)
  }
  t.teardown(() => { presence.releaseSocket = release })
  s.gone(1000)
  await sleep(50)
  t.equal((await n.gatecast.userStatus('alice')).connections, 1, 'the first release failed')
  await t.rejects(n.connect('room:1'), { statusCode: 429, code: 'too_many_sockets' }, 'the slot is still taken')
  await sleep(1100)
  t.equal((await n.gatecast.userStatus('alice')).connections, 0, 'given back by the retry')
  const again = await n.connect('room:1')
  t.ok(again, 'a new socket is admitted')

  // the same retry for a slot given back by a refused admission
  again.gone(1000)
  await sleep(50)
  let refuse = true
  n.gatecast.onConnect(() => { if (refuse) throw new GatecastError(403, 'forbidden', 'not now') })
  failures = 1
  await t.rejects(n.connect('room:1'), { statusCode: 403, code: 'forbidden' }, 'refused by the hook')
  t.equal((await n.gatecast.userStatus('alice')).connections, 1, 'its release failed')
  await sleep(1100)
  refuse = false
  t.equal((await n.gatecast.userStatus('alice')).connections, 0, 'given back by the retry')
  t.ok(await n.connect('room:1'), 'and the user is admitted again')
})

t.test('refresh frames spend the message budget; a refresh is in force while a subscribe ahead of it still waits', async t => {
  const n = await coreNode(t, { wsMessageRate: 2 })
  let release: () => void = () => {}
  n.gatecast.onSubscribe(async ({ channel }) => { if (channel === 'slow') await new Promise<void>(resolve => { release = resolve }) })
  const s = await n.connect(null)
  s.receive({ type: 'subscribe', channel: 'slow', ref: 'slow' })
  const exp = Math.floor(Date.now() / 1000) + 7200
  s.receive({ type: 'refresh', token: n.token({ exp }) })
  await sleep(20)
  t.notOk(s.frames().some(f => f.type === 'refreshed'), 'the answer waits its turn behind the subscribe')
  t.equal((s.handler as Session).expiresAt, exp, 'but the new expiry is in force already')
  release()
  await sleep(20)
  t.same(s.types().slice(-2), ['subscribed', 'refreshed'])

  for (let i = 0; i < 6; i++) s.receive({ type: 'refresh', token: n.token({ exp }) })
  await sleep(20)
  t.ok(s.frames().some(f => f.type === 'error' && f.code === 'rate_limited'), 'past the budget: rate_limited')
})
