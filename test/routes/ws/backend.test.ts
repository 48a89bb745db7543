// Backend callbacks (contract §7) against a real HTTP backend: what each event
// carries and how it is signed, what each answer does, and failing closed
// (refused connection, timeout, odd status, malformed answer, too many calls
// in flight) while open sockets keep working.
import { createHmac } from 'node:crypto'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { connect as connectClient } from '../../../client/index.ts'
import { startApp, type TestApp } from '../../helpers/app.ts'
import { startBackend, type Handler, type TestBackend } from '../../helpers/backend.ts'
import { connect, type Client, type Frame } from '../../helpers/client.ts'
import { abandonedUpgrade, settle, take } from '../../helpers/multi.ts'
import { bearer, expectRefused, pingPong } from '../../helpers/ws-extra.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'
import type { ConfigOverrides } from '../../../src/config/config.ts'
import { GatecastError } from '../../../src/protocol/errors.ts'

const BACKEND_SECRET = 'backend-secret-for-tests-0123456789-0123456789'

interface Setup { a: TestApp, b: TestBackend }

async function setup (t: Test, on: Partial<Record<string, Handler>> = {}, config: ConfigOverrides = {}, path = ''): Promise<Setup> {
  const b = await startBackend(t, on, path)
  const a = await startApp(t, { config: { backendUrl: b.url, backendSecret: BACKEND_SECRET, ...config } })
  return { a, b }
}

async function open (t: Test, a: TestApp, path: string, user: string, claims: Record<string, unknown> = {}): Promise<Client> {
  const c = await connect(`${a.ws}${path}`, bearer(a.token({ sub: user, ...claims })))
  t.teardown(() => c.close())
  return c
}

const sign = (raw: string, secret = BACKEND_SECRET): string => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`

t.test('connect: the body, the signature over the raw body, and an answer that subscribes channels and passes data into ready', async t => {
  const { a, b } = await setup(t, { connect: () => ({ body: { channels: ['lobby', 'inbox#alice'], data: { welcome: 'hi alice', n: 1 } } }) }, {}, '/hooks/')
  const c = await open(t, a, '/ws', 'alice', { roles: ['player'], team: 'red' })
  const ready = await c.nextOfType('ready')
  t.same(ready.data, { welcome: 'hi alice', n: 1 }, 'data rides in ready')
  t.equal(ready.channel, undefined, 'no path channel')
  const subs = await take(c, 2)
  t.same(subs, [
    { type: 'subscribed', channel: 'lobby', by: 'server' },
    { type: 'subscribed', channel: 'inbox#alice', by: 'server' }
  ], 'both channels subscribed server-side, in order, after ready')

  const [call] = b.of('connect')
  t.equal(call.path, '/hooks/connect', 'POSTed to BACKEND_URL/connect (one slash)')
  t.equal(call.headers['x-gatecast-event'], 'connect')
  t.equal(call.headers['content-type'], 'application/json')
  t.equal(call.headers['x-gatecast-signature'], sign(call.raw), 'HMAC-SHA256 of the raw body with BACKEND_SECRET')
  t.match(call.body, { connectionId: ready.connectionId, userId: 'alice', channel: null, remoteAddress: '127.0.0.1' })
  t.match(call.body.claims, { sub: 'alice', roles: ['player'], team: 'red', exp: Number }, 'every claim of the token')

  // the subscriptions are real: a publish reaches them
  await a.app.gatecast.publish('inbox#alice', { mail: 1 })
  t.match(await c.nextOfType('message'), { channel: 'inbox#alice', data: { mail: 1 } })
  t.same((await a.app.gatecast.connection(ready.connectionId))?.channels, ['lobby', 'inbox#alice'])
})

t.test('connect on /ws/:channel: the channel is in the body, the path channel comes first, then the answer\'s; a duplicate is not doubled', async t => {
  const { a, b } = await setup(t, { connect: () => ({ body: { channels: ['room', 'extra'] } }) })
  const c = await open(t, a, '/ws/room', 'bob')
  const ready = await c.nextOfType('ready')
  t.equal(ready.channel, 'room')
  t.notOk('data' in ready, 'no data field when the backend gave none')
  t.same(await take(c, 2), [
    { type: 'subscribed', channel: 'room', by: 'server' },
    { type: 'subscribed', channel: 'extra', by: 'server' }
  ])
  t.equal(b.of('connect')[0].body.channel, 'room')
  await a.app.gatecast.publish('room', 'once')
  const msgs = await settle(c, 200)
  t.equal(msgs.filter(f => f.type === 'message').length, 1, 'delivered once')
})

t.test('connect refusals keep their status before any socket: 401, 403 and 429', async t => {
  let status = 401
  const { a, b } = await setup(t, { connect: () => ({ status, body: { message: 'go away' } }) })
  for (status of [401, 403, 429]) {
    const out = await expectRefused(t, a, `${a.ws}/ws`, bearer(a.token({ sub: 'mallory' })), status, 'backend_refused', `backend ${status}`)
    t.equal(out.body?.message, 'go away', 'the backend\'s reason')
  }
  t.equal(b.of('connect').length, 3)
  await waitFor(async () => (await a.app.gatecast.userStatus('mallory')).connections === 0, { what: 'no slot kept' })
})

t.test('connect fails closed: an odd status, a malformed answer, a 2xx that is not JSON, a dropped connection and a dead backend are 503', async t => {
  const answers: Handler[] = [
    () => ({ status: 500 }),
    () => ({ status: 404, raw: '<html>not here</html>' }),
    () => ({ status: 302 }),
    () => ({ body: { channels: 'lobby' } }),
    () => ({ body: { channels: ['bad channel!'] } }),
    () => ({ raw: 'OK' }),
    () => 'reset',
    // data nested past what any frame may carry
    () => ({ body: { data: JSON.parse('['.repeat(40) + ']'.repeat(40)) } })
  ]
  let i = 0
  const { a, b } = await setup(t, { connect: call => answers[i](call) })
  for (i = 0; i < answers.length; i++) {
    await expectRefused(t, a, `${a.ws}/ws`, bearer(a.token({ sub: 'carol' })), 503, 'unavailable', `answer ${i}`)
  }
  await b.close()
  await expectRefused(t, a, `${a.ws}/ws`, bearer(a.token({ sub: 'carol' })), 503, 'unavailable', 'backend down')
  t.ok(a.logs.some(l => l.includes('backend answer malformed')), 'a malformed answer is logged')
  t.ok(a.logs.some(l => l.includes('backend answered with an unexpected status')), 'an odd status is logged')
})

t.test('connect: a slow backend times out (503) within BACKEND_TIMEOUT, and calls in flight are bounded', async t => {
  const { a, b } = await setup(t, { connect: () => 'hang' }, { backendTimeout: 400, backendMaxInFlight: 2 })
  const url = `${a.ws}/ws`
  const started = Date.now()
  // two calls hang; a third fails at once without reaching the backend
  const slow = [1, 2].map(n => expectRefused(t, a, url, bearer(a.token({ sub: `slow${n}` })), 503, 'unavailable', `hanging ${n}`))
  await waitFor(() => b.hanging === 2, { what: 'two calls open' })
  const third = Date.now()
  await expectRefused(t, a, url, bearer(a.token({ sub: 'third' })), 503, 'unavailable', 'past the in-flight bound')
  t.ok(Date.now() - third < 300, 'refused at once, not queued')
  t.equal(b.of('connect').length, 2, 'the third never reached the backend')
  await Promise.all(slow)
  const took = Date.now() - started
  t.ok(took >= 350 && took < 2000, `timed out after BACKEND_TIMEOUT (${took} ms)`)
  // the backend may have taken the two connects it never answered: it hears their close (not the third's)
  await waitFor(() => b.of('close').length === 2, { what: 'the closes of the unanswered connects' })
  t.same(b.of('close').map(c => [c.body.userId, c.body.code, c.body.channels]).sort(), [['slow1', 1006, []], ['slow2', 1006, []]])

  // the bound frees up again, once the timed-out requests are over (the slot is held until then)
  b.on.connect = () => ({})
  await waitFor(async () => /gatecast_backend_calls_in_flight 0/.test(await (await fetch(`${a.base}/metrics`)).text()), { what: 'the slots given back' })
  const c = await open(t, a, '/ws', 'later')
  t.equal((await c.nextOfType('ready')).userId, 'later')

  // each outcome is counted for Prometheus
  const metrics = await (await fetch(`${a.base}/metrics`)).text()
  t.match(metrics, /gatecast_backend_calls_total\{event="connect",result="timeout"\} 2/, 'two timeouts')
  t.match(metrics, /gatecast_backend_calls_total\{event="connect",result="busy"\} 1/, 'one not sent')
  t.match(metrics, /gatecast_backend_calls_total\{event="connect",result="2xx"\} 1/, 'one answered')
  t.match(metrics, /gatecast_backend_calls_total\{event="close",result="2xx"\} 2/, 'two closes told')
  t.match(metrics, /gatecast_backend_call_seconds_count 5/, 'three connects and two closes timed (the one not sent is not)')
  t.match(metrics, /gatecast_backend_calls_in_flight 0/)
})

t.test('subscribe: allowed, denied (forbidden) or unavailable; the path channel of an upgrade asks too', async t => {
  const { a, b } = await setup(t, {
    subscribe: ({ body }) => body.channel === 'secret' ? { status: 403, body: { message: 'members only' } } : body.channel === 'broken' ? { status: 500 } : {}
  })
  const c = await open(t, a, '/ws', 'dave')
  await c.nextOfType('ready')
  c.send({ type: 'subscribe', channel: 'open', ref: 1 })
  t.same(await c.nextOfType('subscribed'), { type: 'subscribed', channel: 'open', ref: 1, by: 'client' })
  c.send({ type: 'subscribe', channel: 'secret', ref: 2 })
  t.match(await c.nextOfType('error'), { ref: 2, channel: 'secret', code: 'forbidden', message: 'members only' })
  c.send({ type: 'subscribe', channel: 'broken', ref: 3 })
  t.match(await c.nextOfType('error'), { ref: 3, channel: 'broken', code: 'unavailable' })
  const asked = b.of('subscribe')
  t.same(asked.map(x => x.body.channel), ['open', 'secret', 'broken'])
  t.same(Object.keys(asked[0].body).sort(), ['channel', 'connectionId', 'userId'])
  t.equal(asked[0].headers['x-gatecast-signature'], sign(asked[0].raw))

  await expectRefused(t, a, `${a.ws}/ws/secret`, bearer(a.token({ sub: 'dave' })), 403, 'forbidden', 'path channel denied')
  await expectRefused(t, a, `${a.ws}/ws/broken`, bearer(a.token({ sub: 'dave' })), 503, 'unavailable', 'path channel, backend failing')

  // server-made subscriptions are the server's: the backend is not asked
  const before = b.of('subscribe').length
  await a.app.gatecast.subscribeUser('dave', 'secret')
  t.match(await c.nextOfType('subscribed'), { channel: 'secret', by: 'server' })
  t.equal(b.of('subscribe').length, before, 'not asked for a server-side subscribe')
})

t.test('publish: pass, replace, skip (ack without id, nothing delivered), 403 forbidden, 422 bad_request, failure unavailable', async t => {
  const { a, b } = await setup(t, {
    publish: ({ body }) => {
      const text = String(body.data?.text ?? '')
      if (text === 'shout') return { body: { data: { text: 'SHOUT', by: body.userId } } }
      if (text.includes('spam')) return { body: { skip: true } }
      if (text === 'forbidden') return { status: 403 }
      if (text === 'invalid') return { status: 422, body: { message: 'text too silly' } }
      if (text === 'crash') return { status: 502 }
      return {}
    }
  })
  const alice = await open(t, a, '/ws/chat', 'alice')
  const bob = await open(t, a, '/ws/chat', 'bob')
  const aliceReady = await alice.nextOfType('ready')
  await bob.nextOfType('ready')

  alice.send({ type: 'publish', data: { text: 'hello' }, ref: 'p1' })
  const ack = await alice.nextOfType('ack')
  t.match(ack, { ref: 'p1', id: String })
  t.match(await bob.nextOfType('message'), { id: ack.id, from: 'alice', data: { text: 'hello' } })

  alice.send({ type: 'publish', data: { text: 'shout' }, ref: 'p2' })
  t.match(await bob.nextOfType('message'), { from: 'alice', data: { text: 'SHOUT', by: 'alice' } }, 'the backend\'s data replaced it')

  alice.send({ type: 'publish', data: { text: 'buy spam' }, ref: 'p3' })
  const skipped = await alice.next(f => f.type === 'ack' && f.ref === 'p3')
  t.same(skipped, { type: 'ack', ref: 'p3' }, 'acknowledged without an id')

  alice.send({ type: 'publish', data: { text: 'forbidden' }, ref: 'p4' })
  t.match(await alice.nextOfType('error'), { ref: 'p4', code: 'forbidden' })
  alice.send({ type: 'publish', data: { text: 'invalid' }, ref: 'p5' })
  t.match(await alice.nextOfType('error'), { ref: 'p5', code: 'bad_request', message: 'text too silly' })
  alice.send({ type: 'publish', data: { text: 'crash' }, ref: 'p6' })
  t.match(await alice.nextOfType('error'), { ref: 'p6', code: 'unavailable' })

  const seen = (await settle(bob, 200)).filter(f => f.type === 'message')
  t.same(seen, [], 'bob got nothing of the skipped or refused ones')
  const calls = b.of('publish')
  t.same(calls.map(c => c.body.data.text), ['hello', 'shout', 'buy spam', 'forbidden', 'invalid', 'crash'])
  t.same(calls[0].body, { connectionId: aliceReady.connectionId, userId: 'alice', channel: 'chat', data: { text: 'hello' } })

  // the server API's publishes are the backend's own: not sent back to it
  await a.app.gatecast.publish('chat', { text: 'from the api' })
  t.match(await bob.nextOfType('message'), { from: null, data: { text: 'from the api' } })
  t.equal(b.of('publish').length, calls.length)
})

t.test('the client library: ready carries the data, server-made subscriptions appear, a skipped publish resolves to null', async t => {
  const { a } = await setup(t, {
    connect: () => ({ body: { channels: ['lobby'], data: { nick: 'Pat' } } }),
    publish: ({ body }) => body.data === 'drop me' ? { body: { skip: true } } : {}
  })
  const client = connectClient({ url: `${a.ws}`, WebSocket, getToken: () => a.token({ sub: 'pat' }) })
  t.teardown(() => client.close())
  await waitFor(() => client.ready !== null && client.subscriptions.has('lobby'), { what: 'ready and the lobby' })
  t.same(client.ready?.data, { nick: 'Pat' })
  const lobby = client.subscriptions.get('lobby')
  if (lobby === undefined) throw new Error('no lobby')
  await lobby.whenSubscribed()
  t.equal(await lobby.publish('drop me'), null, 'dropped by the backend: no id')
  t.type(await lobby.publish('keep me'), 'string', 'published: its id')
})

t.test('one socket\'s publishes reach the channel in the order sent, whatever order the verdicts come back in', async t => {
  const { a, b } = await setup(t, {
    // the first verdict is the slowest, the rest come back at once
    publish: ({ body }) => body.data.n === 0 ? { delayMs: 300 } : body.data.n === 3 ? { body: { skip: true } } : body.data.n === 5 ? { status: 403 } : {}
  })
  const alice = await open(t, a, '/ws/chat', 'alice')
  const bob = await open(t, a, '/ws/chat', 'bob')
  await alice.nextOfType('ready')
  await bob.nextOfType('ready')
  for (let n = 0; n < 8; n++) alice.send({ type: 'publish', data: { n }, ref: n })
  const got = await take(bob, 6)
  t.same(got.map(f => f.data.n), [0, 1, 2, 4, 6, 7], 'in the order sent, less the skipped and the refused')
  const ids = got.map(f => f.id as string)
  t.same([...ids].sort(), ids, 'ids in the same order')
  const answers = (await take(alice, 14)).filter(f => f.type === 'ack' || f.type === 'error')
  t.same(answers.map(f => f.ref).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7], 'every publish answered once')
  t.match(answers.find(f => f.ref === 5), { type: 'error', code: 'forbidden' })
  t.same(answers.find(f => f.ref === 3), { type: 'ack', ref: 3 })
  t.equal(b.of('publish').length, 8)
})

t.test('an empty answer, null or [] (PHP\'s json_encode of an empty array) counts as no change', async t => {
  let raw = '[]'
  const { a } = await setup(t, { connect: () => ({ raw }), publish: () => ({ raw }) })
  for (raw of ['[]', 'null', '', '{}']) {
    const c = await open(t, a, '/ws/room', 'pia')
    const ready = await c.nextOfType('ready')
    t.notOk('data' in ready, `${JSON.stringify(raw)}: no data`)
    c.send({ type: 'publish', data: 'x', ref: 1 })
    t.match(await c.nextOfType('ack'), { ref: 1, id: String }, `${JSON.stringify(raw)}: published as is`)
    t.equal((await c.nextOfType('message')).data, 'x')
    c.close()
  }
})

t.test('backend down: upgrades 503 and publishes unavailable, while open sockets keep working', async t => {
  const { a, b } = await setup(t)
  const c = await open(t, a, '/ws/room', 'erin')
  const d = await open(t, a, '/ws/room', 'frank')
  await c.nextOfType('ready')
  await d.nextOfType('ready')
  await b.close()
  await expectRefused(t, a, `${a.ws}/ws/room`, bearer(a.token({ sub: 'gina' })), 503, 'unavailable', 'new upgrade')
  c.send({ type: 'publish', data: 1, ref: 1 })
  t.match(await c.nextOfType('error'), { ref: 1, code: 'unavailable' })
  c.send({ type: 'subscribe', channel: 'other', ref: 2 })
  t.match(await c.nextOfType('error'), { ref: 2, channel: 'other', code: 'unavailable' })
  // what needs no backend still works
  await pingPong(c)
  await a.app.gatecast.publish('room', 'still here')
  t.match(await d.nextOfType('message'), { data: 'still here' })
  t.match(await c.nextOfType('message'), { data: 'still here' })
  t.equal(c.ws.readyState, c.ws.OPEN, 'the socket stayed open')
})

t.test('close: told with the channels and the code; retried on failure, then logged; nothing waits on it', async t => {
  let failures = 2
  const { a, b } = await setup(t, { close: () => failures-- > 0 ? { status: 503 } : { status: 204 } })
  const c = await open(t, a, '/ws/room', 'hank')
  const ready = await c.nextOfType('ready')
  c.send({ type: 'subscribe', channel: 'side', ref: 1 })
  await c.nextOfType('subscribed')
  c.ws.close(4000, 'bye')
  await waitFor(() => b.of('close').length === 3, { ms: 6000, what: 'two retries then success' })
  const [first, , last] = b.of('close')
  t.same(first.body, { connectionId: ready.connectionId, userId: 'hank', channels: ['room', 'side'], code: 4000 })
  t.equal(last.raw, first.raw, 'the same event each time')
  t.equal(last.headers['x-gatecast-signature'], sign(last.raw))
  t.ok(last.at - first.at >= 1400, `backoff between tries (${last.at - first.at} ms)`)

  // a backend that never takes it: the first try and 3 retries, then a log line
  b.on.close = () => ({ status: 500 })
  const d = await open(t, a, '/ws', 'ivan')
  const readyD = await d.nextOfType('ready')
  d.close()
  await waitFor(() => a.logs.some(l => l.includes('backend close event dropped') && l.includes(readyD.connectionId)), { ms: 8000, what: 'dropped after retries' })
  t.equal(b.calls.filter(x => x.event === 'close' && x.body.connectionId === readyD.connectionId).length, 4, 'tried 1 + 3 times')

  // refused (a 4xx: a wrong secret, a wrong path): not retried, but said
  b.on.close = () => ({ status: 401 })
  const e = await open(t, a, '/ws', 'ivy')
  const readyE = await e.nextOfType('ready')
  e.close()
  await waitFor(() => a.logs.some(l => l.includes('backend refused a close event') && l.includes(readyE.connectionId)), { what: 'the refusal logged' })
  await sleep(800)
  t.equal(b.calls.filter(x => x.event === 'close' && x.body.connectionId === readyE.connectionId).length, 1, 'a refused close is not retried')
})

t.test('a connect the backend accepted always gets its close: also when the path channel is then refused, or the client leaves before the upgrade', async t => {
  const { a, b } = await setup(t, {
    subscribe: () => ({ status: 403 }),
    connect: ({ body }) => body.userId === 'slow' ? { delayMs: 400 } : {}
  })
  const closes: number[] = []
  a.app.gatecast.onClose(({ code }) => { closes.push(code) })
  const refused = await expectRefused(t, a, `${a.ws}/ws/vip`, bearer(a.token({ sub: 'olga' })), 403, 'forbidden', 'path channel refused')
  t.ok(refused)
  await waitFor(() => b.of('close').length === 1, { what: 'the close of the refused upgrade' })
  const [connected] = b.of('connect')
  t.same(b.of('close')[0].body, { connectionId: connected.body.connectionId, userId: 'olga', channels: [], code: 1006 }, 'no socket ever opened: 1006, no channels')

  await abandonedUpgrade(a.base, '/ws', a.token({ sub: 'slow' }), 100, 'rst')
  await waitFor(() => b.of('close').length === 2, { what: 'the close of the abandoned upgrade' })
  t.match(b.of('close')[1].body, { userId: 'slow', channels: [], code: 1006 })
  t.same(closes, [1006, 1006], 'the onClose hooks hear the same')
  await waitFor(async () => (await a.app.gatecast.userStatus('slow')).connections === 0, { what: 'the slot given back' })

  // refused by the backend itself: it knows, no close follows
  b.on.connect = () => ({ status: 403 })
  await expectRefused(t, a, `${a.ws}/ws`, bearer(a.token({ sub: 'olga' })), 403, 'backend_refused')
  await sleep(200)
  t.equal(b.of('close').length, 2, 'no close for a connect the backend refused')
})

t.test('BACKEND_EVENTS: only the listed events are sent', async t => {
  const { a, b } = await setup(t, {}, { backendEvents: ['publish'] })
  const c = await open(t, a, '/ws/room', 'jane')
  await c.nextOfType('ready')
  c.send({ type: 'subscribe', channel: 'x', ref: 1 })
  await c.nextOfType('subscribed')
  c.send({ type: 'publish', data: 1, ref: 2 })
  await c.nextOfType('ack')
  c.close()
  await c.closed
  await sleep(200)
  t.same(b.calls.map(x => x.event), ['publish'])
})

t.test('order: in-process hooks first, then the backend, which sees what they made', async t => {
  const b = await startBackend(t, {
    connect: () => ({ body: { channels: ['from-backend'], data: 'backend' } }),
    publish: ({ body }) => ({ body: { data: { ...body.data, backend: true } } })
  })
  const order: string[] = []
  const a = await startApp(t, {
    config: { backendUrl: b.url, backendSecret: BACKEND_SECRET },
    plugins: [async (app) => {
      app.gatecast.onConnect(() => { order.push('hook'); return { channels: ['from-hook'], data: 'hook' } })
      app.gatecast.onConnect((ctx) => { if (ctx.userId === 'blocked') throw new GatecastError(403, 'blocked', 'blocked by a plugin') })
      app.gatecast.onPublish(({ data }) => ({ data: { ...(data as object), hook: true } }))
    }]
  })
  b.on.connect = () => { order.push('backend'); return { body: { channels: ['from-backend'], data: 'backend' } } }
  const c = await open(t, a, '/ws', 'kate')
  const ready = await c.nextOfType('ready')
  t.same(order, ['hook', 'backend'])
  t.equal(ready.data, 'backend', 'the last data given wins')
  t.same((await take(c, 2)).map((f: Frame) => f.channel), ['from-hook', 'from-backend'], 'channels add up')
  c.send({ type: 'publish', channel: 'from-hook', data: { text: 'x' }, ref: 1 })
  t.same((await c.nextOfType('message')).data, { text: 'x', hook: true, backend: true })
  t.same(b.of('publish')[0].body.data, { text: 'x', hook: true }, 'the backend saw the hook\'s data')
  // a plugin's refusal costs no backend call
  const calls = b.of('connect').length
  await expectRefused(t, a, `${a.ws}/ws`, bearer(a.token({ sub: 'blocked' })), 403, 'blocked')
  t.equal(b.of('connect').length, calls)
})

t.test('shutdown: the close events of the sockets it closes reach the backend before close() resolves', async t => {
  const { a, b } = await setup(t, { close: () => ({ delayMs: 100 }) })
  const c = await open(t, a, '/ws/room', 'liam')
  await c.nextOfType('ready')
  await a.app.close()
  t.equal(b.of('close').length, 1)
  t.equal(b.of('close')[0].body.code, 1001)
})

t.test('no token, secret or signature in the logs', async t => {
  const { a, b } = await setup(t, { connect: () => ({ status: 500 }) })
  const token = a.token({ sub: 'mona' })
  await expectRefused(t, a, `${a.ws}/ws?token=${token}`, {}, 503, 'unavailable')
  b.on.connect = () => ({})
  const c = await connect(`${a.ws}/ws?token=${token}`)
  await c.nextOfType('ready')
  c.send({ type: 'publish', channel: 'nope', data: 1 })
  c.close()
  await waitFor(() => b.of('close').length === 1)
  const logs = a.logs.join('\n')
  t.ok(logs.includes('backend call failed') || logs.includes('unexpected status'), 'the failure was logged')
  t.notOk(logs.includes(token), 'no token')
  t.notOk(logs.includes(token.split('.')[2]), 'no token signature')
  t.notOk(logs.includes(BACKEND_SECRET), 'no backend secret')
  for (const call of b.calls) t.notOk(logs.includes(String(call.headers['x-gatecast-signature']).slice(7)), 'no request signature')
})

t.test('without BACKEND_SECRET (development) calls go unsigned, with a warning', async t => {
  const b = await startBackend(t)
  const a = await startApp(t, { config: { backendUrl: b.url } })
  const c = await open(t, a, '/ws', 'nina')
  await c.nextOfType('ready')
  t.equal(b.of('connect')[0].headers['x-gatecast-signature'], undefined)
  t.ok(a.logs.some(l => l.includes('without BACKEND_SECRET')))
})
