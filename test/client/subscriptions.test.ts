// One socket, many channels, through the client library against a real server:
// subscribe and unsubscribe, each subscription with its own messages, refusals,
// resubscribing with `since` after a reconnect, and subscriptions the server makes.
import t from 'tap'
import WebSocket from 'ws'
import { api, startApp } from '../helpers/app.ts'
import { connect, PublishError, SubscriptionError, type GatecastClient, type Subscription } from '../../client/index.ts'
import { record, recordSub, spyingWebSocket, terminate, trackConnections } from '../helpers/client-lib.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const KEY = 'subscriptions-test-api-key-0123456789-0123456789'
const config = { usersFile: null, apiKey: KEY, channels: { room: { presence: true } } }
const fast = { initial: 50, max: 200 }
const auth = { 'x-api-key': KEY }

const dataOf = (sub: { messages: Array<{ data: unknown }> }): unknown[] => sub.messages.map(m => m.data)

t.test('without a channel the client opens /ws; each subscription gets its own channel\'s messages', async t => {
  const { app, ws, token } = await startApp(t, { config })
  const conns = trackConnections(app)
  const client = connect({ url: ws, WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  t.equal(client.channel, undefined)
  t.equal(client.subscriptions.size, 0)

  // subscribed before the socket is open: sent once it is ready
  const a = client.subscribe('room:a')
  const b = client.subscribe('room:b')
  t.equal(a.state, 'subscribing')
  t.equal(client.subscribe('room:a'), a, 'a channel that has a subscription returns that one')
  const ra = recordSub(a)
  const rb = recordSub(b)
  const open = await rec.nextState('open')
  t.equal(open.ready?.channel, undefined, 'ready names no path channel')
  t.same(await a.whenSubscribed(), { by: 'client' }, 'no since, no recovered')
  await b.whenSubscribed()
  t.equal(a.state, 'subscribed')
  t.same([...client.subscriptions.keys()], ['room:a', 'room:b'])
  t.equal(client.subscriptions.get('room:b'), b)

  const id = await a.publish({ text: 'to a' })
  t.type(id, 'string', 'publish on a subscription resolves with the ack id')
  await app.gatecast.publish('room:b', 'to b')
  await waitFor(() => ra.messages.length === 1 && rb.messages.length === 1, { what: 'one message per room' })
  await sleep(50)
  t.same(dataOf(ra), [{ text: 'to a' }], 'room:a got only its own')
  t.same(dataOf(rb), ['to b'], 'room:b got only its own')
  t.equal(ra.messages[0].id, id)
  t.equal(ra.messages[0].from, 'alice')
  t.equal(a.lastId, id, 'lastId per subscription')
  t.equal(b.lastId, rb.messages[0].id)
  t.same(rec.messages.map(m => m.channel).sort(), ['room:a', 'room:b'], 'the client-level event sees every channel')
  t.equal(client.lastId, undefined, 'no path channel, no client-level lastId')

  const noPath = await client.publish('x').then(() => null, (e: unknown) => e)
  t.ok(noPath instanceof PublishError)
  t.equal((noPath as PublishError).code, 'bad_request', 'client.publish needs a path channel')

  // presence follows subscriptions: bob joins room:b only
  const bob = connect({ url: ws, WebSocket, getToken: () => token({ sub: 'bob' }) })
  t.teardown(() => bob.close())
  await bob.subscribe('room:b').whenSubscribed()
  await waitFor(() => rb.presence.some(p => p.event === 'join' && p.userId === 'bob'), { what: 'bob\'s join on room:b' })
  t.same(ra.presence.filter(p => p.userId === 'bob'), [], 'nothing about bob on room:a')

  await a.unsubscribe()
  t.equal(a.state, 'unsubscribed')
  t.same(ra.unsubscribed, [{ reason: 'client' }])
  t.same([...client.subscriptions.keys()], ['room:b'])
  t.equal(await a.unsubscribe(), undefined, 'a second unsubscribe resolves too')
  const late = await a.publish('late').then(() => null, (e: unknown) => e)
  t.equal((late as PublishError).code, 'unsubscribed')
  const gone = await a.whenSubscribed().then(() => null, (e: unknown) => e)
  t.ok(gone instanceof SubscriptionError)
  await app.gatecast.publish('room:a', 'after leaving')
  await app.gatecast.publish('room:b', 'still here')
  await waitFor(() => rb.messages.length === 2, { what: 'room:b still delivers' })
  await sleep(50)
  t.same(dataOf(ra), [{ text: 'to a' }], 'nothing of room:a after unsubscribe')
  t.notOk(rec.messages.some(m => m.data === 'after leaving'), 'not even at client level')

  // subscribing again after leaving: a new subscription
  const again = client.subscribe('room:a')
  t.not(again, a)
  await again.whenSubscribed()
  t.equal(client.state, 'open')
  t.equal(conns.all.filter(c => c.userId === 'alice').length, 1, 'one socket all along')
  t.same(rec.errors, [])
})

t.test('refused subscribes end with an error on that subscription; the socket stays', async t => {
  const { ws, token } = await startApp(t, { config: { ...config, wsChannelsPerSocket: 2 } })
  const client = connect({ url: ws, WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')

  async function refused (sub: Subscription): Promise<{ code: string, error: SubscriptionError }> {
    const rs = recordSub(sub)
    const error = await sub.whenSubscribed().then(() => null, (e: unknown) => e)
    t.ok(error instanceof SubscriptionError, `${sub.channel}: whenSubscribed rejects`)
    t.equal(sub.state, 'unsubscribed')
    t.equal(rs.errors.length, 1, 'one error event')
    t.equal(rs.errors[0]?.channel, sub.channel, 'the error frame names the channel')
    t.equal(rs.unsubscribed.length, 1)
    t.equal(rs.unsubscribed[0]?.reason, 'refused')
    t.equal(rs.unsubscribed[0]?.error?.code, rs.errors[0]?.code)
    t.notOk(client.subscriptions.has(sub.channel), 'not among the live subscriptions')
    return { code: rs.errors[0]?.code ?? '', error: error as SubscriptionError }
  }

  // `#`: only the listed users may join
  const dm = await refused(client.subscribe('dm#bob,carol'))
  t.equal(dm.code, 'forbidden')
  t.equal(dm.error.code, 'forbidden')
  t.equal(dm.error.channel, 'dm#bob,carol')
  t.equal((await refused(client.subscribe('bad name!'))).code, 'bad_request')

  await client.subscribe('dm#alice,bob').whenSubscribed()
  await client.subscribe('room:one').whenSubscribed()
  const third = await refused(client.subscribe('room:two'))
  t.equal(third.code, 'too_many_channels', 'past WS_CHANNELS_PER_SOCKET')
  const pub = await client.subscribe('room:two').publish('x').then(() => null, (e: unknown) => e)
  t.equal((pub as PublishError).code, 'unsubscribed', 'a publish waiting on a refused subscription is rejected')

  t.equal(client.state, 'open', 'the socket stays open')
  t.same(rec.errors, [], 'a refusal goes to its subscription, not the client')
  t.same([...client.subscriptions.keys()], ['dm#alice,bob', 'room:one'])
})

t.test('the path channel is a subscription too, and can be left without closing the socket', async t => {
  const { app, ws, token } = await startApp(t, { config })
  const conns = trackConnections(app)
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: fast, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  const path = client.subscriptions.get('chat')
  t.ok(path !== undefined, 'the path channel is in client.subscriptions before the socket opens')
  if (path === undefined) return
  t.equal(path.state, 'subscribing')
  const rp = recordSub(path)
  const first = await rec.nextState('open')
  t.equal(first.ready?.channel, 'chat')
  t.equal(path.state, 'subscribed', 'subscribed by the upgrade itself')
  t.same(rp.subscribed, [{ by: 'client' }])

  const id = await client.publish('legacy')
  const id2 = await path.publish('through the subscription')
  const other = client.subscribe('room:x')
  const ro = recordSub(other)
  await other.whenSubscribed()
  await app.gatecast.publish('room:x', 'x1')
  await waitFor(() => rp.messages.length === 2 && ro.messages.length === 1, { what: 'messages' })
  t.same(dataOf(rp), ['legacy', 'through the subscription'])
  t.same(rp.messages.map(m => m.id), [id, id2])
  t.equal(client.lastId, id2, 'client.lastId is the path channel\'s')
  t.same(rec.messages.map(m => m.data), ['legacy', 'through the subscription', 'x1'], 'client-level messages as before')

  await path.unsubscribe()
  t.same(rp.unsubscribed, [{ reason: 'client' }])
  t.equal(client.state, 'open', 'leaving the path channel keeps the socket')
  const err = await client.publish('gone').then(() => null, (e: unknown) => e)
  t.equal((err as PublishError).code, 'unsubscribed')
  await app.gatecast.publish('chat', 'not for us')
  await app.gatecast.publish('room:x', 'x2')
  await waitFor(() => ro.messages.length === 2, { what: 'room:x still delivers' })
  t.notOk(rec.messages.some(m => m.data === 'not for us'))

  // the next socket opens on /ws: the path channel is not joined again
  client.reconnect()
  const again = await rec.nextState('open')
  t.equal(again.ready?.channel, undefined, 'reconnected without the path channel')
  await waitFor(() => other.state === 'subscribed', { what: 'room:x resubscribed' })
  t.same([...client.subscriptions.keys()], ['room:x'])
  await app.gatecast.publish('chat', 'still not for us')
  await app.gatecast.publish('room:x', 'x3')
  await waitFor(() => ro.messages.length === 3, { what: 'room:x after the reconnect' })
  await sleep(50)
  t.notOk(rec.messages.some(m => m.data === 'still not for us'))
  t.equal(conns.open('alice').length, 1)
})

t.test('a path channel left before the socket is ready: opened on /ws, or left once ready', async t => {
  const { app, ws, token } = await startApp(t, { config })

  // left before any socket exists: the first socket opens on /ws
  const early = spyingWebSocket()
  const first = connect({ url: `${ws}/ws/chat`, WebSocket: early.WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => first.close())
  t.equal(first.channel, 'chat', 'the path channel comes from the URL')
  await first.subscriptions.get('chat')?.unsubscribe()
  t.equal(first.subscriptions.size, 0, 'ended at once: no socket to tell')
  const open1 = await record(first).nextState('open')
  t.equal(open1.ready?.channel, undefined)
  t.match(early.urls, [/\/ws$/], 'opened on /ws')
  first.close()

  // left while the socket is on its way with the path channel: left on the server once ready
  const late = spyingWebSocket()
  const client = connect({ url: `${ws}/ws/chat`, WebSocket: late.WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  // getToken has answered and the socket is created, but no I/O has happened yet
  await new Promise(resolve => setImmediate(resolve))
  t.match(late.urls, [/\/ws\/chat$/])
  t.equal(client.state, 'connecting')
  await client.subscriptions.get('chat')?.unsubscribe()
  const open = await rec.nextState('open')
  t.equal(open.ready?.channel, 'chat', 'the socket came with the path channel')
  await waitFor(() => late.sent.some(f => f.type === 'unsubscribe'), { what: 'the unsubscribe' })
  t.same(late.sent.filter(f => f.type === 'unsubscribe').map(f => f.type === 'unsubscribe' ? f.channel : ''), ['chat'])
  const other = client.subscribe('room:y')
  await other.whenSubscribed()
  await app.gatecast.publish('chat', 'not for us')
  await app.gatecast.publish('room:y', 'y')
  await waitFor(() => rec.messages.some(m => m.data === 'y'), { what: 'room:y' })
  await sleep(50)
  t.same(rec.messages.map(m => m.data), ['y'], 'nothing of the left path channel')
  t.same([...client.subscriptions.keys()], ['room:y'])
})

t.test('after a drop every subscription resubscribes with since: recovered, nothing lost or doubled', async t => {
  const { app, ws, token } = await startApp(t, { config })
  const conns = trackConnections(app)
  const spy = spyingWebSocket()
  const client = connect({ url: ws, WebSocket: spy.WebSocket, backoff: { initial: 400, max: 400 }, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  const a = client.subscribe('room:a')
  const b = client.subscribe('room:b')
  const quiet = client.subscribe('room:quiet')
  const ra = recordSub(a)
  const rb = recordSub(b)
  const rq = recordSub(quiet)
  await rec.nextState('open')
  await Promise.all([a.whenSubscribed(), b.whenSubscribed(), quiet.whenSubscribed()])
  for (let i = 0; i < 3; i++) {
    await app.gatecast.publish('room:a', `a${i}`)
    await app.gatecast.publish('room:b', `b${i}`)
  }
  await waitFor(() => ra.messages.length === 3 && rb.messages.length === 3, { what: 'the first messages' })
  const before = { a: a.lastId, b: b.lastId }
  // read at the event: the reconnect may be done before a poll would look
  const atDrop: string[] = []
  client.on('state', s => { if (s.state === 'reconnecting') atDrop.push(a.state) })

  terminate(conns.open('alice'))
  const down = await rec.nextState('reconnecting')
  t.equal(down.code, 1006)
  t.same(atDrop, ['subscribing'], 'a dropped socket takes its subscriptions along until they are back')
  // published while the socket is down
  for (let i = 3; i < 6; i++) {
    await app.gatecast.publish('room:a', `a${i}`)
    await app.gatecast.publish('room:b', `b${i}`)
  }
  await rec.nextState('open')
  await waitFor(() => ra.subscribed.length === 2 && rb.subscribed.length === 2 && rq.subscribed.length === 2, { what: 'every subscription answered again' })
  t.same(ra.subscribed[1], { by: 'client', recovered: true }, 'room:a reports recovered: true')
  t.same(rb.subscribed[1], { by: 'client', recovered: true }, 'room:b reports recovered: true')
  t.same(rq.subscribed[1], { by: 'client' }, 'a subscription that has seen nothing resubscribes without since')
  t.equal(a.recovered, true)

  const resubscribes = spy.sent.filter(f => f.type === 'subscribe').slice(3)
  t.same(resubscribes.map(f => f.type === 'subscribe' ? [f.channel, f.since] : null), [
    ['room:a', before.a],
    ['room:b', before.b],
    ['room:quiet', undefined]
  ], 'each resubscribe carries its subscription\'s last delivered id')

  await waitFor(() => ra.messages.length === 6 && rb.messages.length === 6, { what: 'the missed messages' })
  await app.gatecast.publish('room:a', 'a6')
  await waitFor(() => ra.messages.length === 7, { what: 'a live message after the replay' })
  await sleep(50)
  t.same(dataOf(ra), ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6'], 'room:a: every message once, in order')
  t.same(dataOf(rb), ['b0', 'b1', 'b2', 'b3', 'b4', 'b5'], 'room:b: every message once, in order')
  t.same(rq.messages, [])
  t.equal(conns.open('alice').length, 1)
})

t.test('drops while two channels stream: every message of each exactly once, in order', async t => {
  const { app, ws, token } = await startApp(t, { config: { ...config, historySize: 5000 } })
  const conns = trackConnections(app)
  const client = connect({ url: ws, WebSocket, backoff: fast, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  const subs = ['s:1', 's:2'].map(ch => client.subscribe(ch))
  const recs = subs.map(recordSub)
  await Promise.all(subs.map(s => s.whenSubscribed()))
  const total = 300
  const drops = [60, 150, 230]
  for (let i = 0; i < total; i++) {
    if (drops.includes(i)) {
      await waitFor(() => client.state === 'open' && subs.every(s => s.state === 'subscribed') && conns.open('alice').length === 1, { what: `open again before the drop at ${i}` })
      terminate(conns.open('alice'))
    }
    await app.gatecast.publish(i % 2 === 0 ? 's:1' : 's:2', { n: i })
    if (i % 10 === 0) await sleep(5)
  }
  await waitFor(() => recs.every(r => r.messages.length >= total / 2), { ms: 10_000, what: () => `all messages (have ${recs.map(r => r.messages.length).join(', ')})` })
  await sleep(100)
  const even = Array.from({ length: total / 2 }, (_, i) => i * 2)
  t.same(recs[0].messages.map(m => (m.data as { n: number }).n), even, 's:1: every message, once, in order')
  t.same(recs[1].messages.map(m => (m.data as { n: number }).n), even.map(n => n + 1), 's:2: every message, once, in order')
  for (const [i, r] of recs.entries()) {
    const again = r.subscribed.slice(1)
    t.ok(again.length >= drops.length, `s:${i + 1} resubscribed after each drop (${again.length})`)
    t.ok(again.every(e => e.recovered === true), `s:${i + 1}: each resubscribe recovered`)
  }
  t.same(rec.errors.filter(e => e.type !== 'client'), [], 'no error frames')
})

t.test('a subscription started with since replays what came after it, or says recovered: false', async t => {
  const { app, ws, token } = await startApp(t, { config: { ...config, historySize: 2 } })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await app.gatecast.publish('room:h', i)).id)
  const client = connect({ url: ws, WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const recent = client.subscribe('room:h', { since: ids[3] })
  t.equal(recent.lastId, ids[3], 'since is the starting lastId')
  const rr = recordSub(recent)
  t.same(await recent.whenSubscribed(), { by: 'client', recovered: true })
  await waitFor(() => rr.messages.length === 1, { what: 'the replay' })
  t.same(dataOf(rr), [4])
  await recent.unsubscribe()

  const old = client.subscribe('room:h', { since: ids[0] })
  const ro = recordSub(old)
  t.same(await old.whenSubscribed(), { by: 'client', recovered: false }, 'history no longer reaches back that far')
  await sleep(100)
  t.same(ro.messages, [], 'recovery is never partial')
})

t.test('subscriptions made by the server appear, come back after a reconnect, and end when removed', async t => {
  const { app, base, ws, token } = await startApp(t, { config })
  const conns = trackConnections(app)
  const spy = spyingWebSocket()
  const client = connect({ url: ws, WebSocket: spy.WebSocket, backoff: fast, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  const made: Subscription[] = []
  const recs = new Map<string, ReturnType<typeof recordSub>>()
  client.on('subscription', sub => {
    made.push(sub)
    // attached in the event: the subscription's own 'subscribed' follows it
    recs.set(sub.channel, recordSub(sub))
  })
  await rec.nextState('open')

  // by user id: every socket of the user
  t.equal((await api(base, 'POST', '/api/users/alice/channels/room:srv', { headers: auth })).status, 202)
  await waitFor(() => made.length === 1, { what: 'the server-made subscription' })
  const srv = made[0]
  t.equal(srv.channel, 'room:srv')
  t.equal(srv.by, 'server')
  t.equal(srv.state, 'subscribed')
  t.equal(client.subscriptions.get('room:srv'), srv)
  t.same(recs.get('room:srv')?.subscribed, [{ by: 'server' }])

  // by connection id: this one socket
  const connectionId = client.ready?.connectionId ?? ''
  t.equal((await api(base, 'POST', `/api/connections/${connectionId}/channels/room:conn`, { headers: auth })).status, 202)
  await waitFor(() => made.length === 2, { what: 'the second server-made subscription' })
  t.equal(made[1].channel, 'room:conn')

  await app.gatecast.publish('room:srv', 'one')
  await waitFor(() => srv.lastId !== undefined, { what: 'a message on room:srv' })
  t.same(dataOf(recs.get('room:srv') ?? { messages: [] }), ['one'])

  // a drop: the server-made subscriptions are subscribed again by the client, with since
  terminate(conns.open('alice'))
  await rec.nextState('reconnecting')
  await app.gatecast.publish('room:srv', 'while down')
  await rec.nextState('open')
  await waitFor(() => (recs.get('room:srv')?.subscribed.length ?? 0) === 2 && (recs.get('room:conn')?.subscribed.length ?? 0) === 2, { what: 'both back' })
  t.same(recs.get('room:srv')?.subscribed[1], { by: 'client', recovered: true }, 'resubscribed by the client, recovered')
  t.equal(made.length, 2, 'the same subscription objects, no new ones')
  await waitFor(() => (recs.get('room:srv')?.messages.length ?? 0) === 2, { what: 'the missed message' })
  t.same(dataOf(recs.get('room:srv') ?? { messages: [] }), ['one', 'while down'])

  // removed by the server: ended for good, not subscribed again on the next reconnect
  t.equal((await api(base, 'DELETE', '/api/users/alice/channels/room:srv', { headers: auth })).status, 202)
  await waitFor(() => srv.state === 'unsubscribed', { what: 'room:srv removed' })
  t.same(recs.get('room:srv')?.unsubscribed, [{ reason: 'server' }])
  t.same([...client.subscriptions.keys()], ['room:conn'])
  const sentBefore = spy.sent.length
  client.reconnect()
  await rec.nextState('open')
  await waitFor(() => (recs.get('room:conn')?.subscribed.length ?? 0) === 3, { what: 'room:conn back again' })
  const subscribes = spy.sent.slice(sentBefore).filter(f => f.type === 'subscribe').map(f => f.type === 'subscribe' ? f.channel : '')
  t.same(subscribes, ['room:conn'], 'room:srv is not asked for again')
  await app.gatecast.publish('room:srv', 'after removal')
  await sleep(100)
  t.notOk(rec.messages.some(m => m.data === 'after removal'))
})

t.test('a refresh whose token no longer allows a channel ends that subscription (forbidden)', async t => {
  const { ws, token } = await startApp(t, { config: { ...config, wsExpiryGrace: 0 } })
  let allowed = ['room:*']
  const client = connect({
    url: ws,
    WebSocket,
    backoff: fast,
    getToken: () => token({ sub: 'alice', channels: allowed }, { expiresIn: 3 })
  })
  t.teardown(() => client.close())
  const rec = record(client)
  const a = client.subscribe('room:a')
  const b = client.subscribe('room:b')
  const rb = recordSub(b)
  await Promise.all([a.whenSubscribed(), b.whenSubscribed()])
  allowed = ['room:a']
  await waitFor(() => rb.unsubscribed.length === 1, { ms: 6000, what: 'room:b withdrawn at the refresh' })
  t.same(rb.unsubscribed, [{ reason: 'forbidden' }])
  t.equal(b.state, 'unsubscribed')
  t.equal(a.state, 'subscribed', 'the allowed one stays')
  t.ok(rec.refreshed.length >= 1, 'refreshed in-band')
  t.equal(client.state, 'open', 'the socket stays')
  t.same(rec.states.map(s => s.state), ['open'], 'no reconnect')
})

t.test('a resubscribe refused by the rate limit is tried again, not dropped', async t => {
  // 3 frames a second, bursts of 6: 7 resubscribes at once get one refusal
  const { app, ws, token } = await startApp(t, { config: { ...config, wsMessageRate: 3 } })
  const conns = trackConnections(app)
  const client = connect({ url: ws, WebSocket, backoff: { initial: 1000, max: 1000 }, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  const subs: Subscription[] = []
  for (let i = 0; i < 7; i++) {
    // within the budget the first time round
    if (i === 5) await sleep(1200)
    subs.push(client.subscribe(`room:${i}`))
  }
  await Promise.all(subs.map(s => s.whenSubscribed()))
  const recs = subs.map(recordSub)
  terminate(conns.open('alice'))
  await rec.nextState('reconnecting')
  await rec.nextState('open', 3000)
  await waitFor(() => subs.every(s => s.state === 'subscribed'), { ms: 5000, what: () => `all back (${subs.map(s => s.state).join(', ')})` })
  const refusals = recs.flatMap(r => r.errors)
  t.ok(refusals.length >= 1, `a resubscribe was refused first (${refusals.map(e => e.code).join(', ')})`)
  t.ok(refusals.every(e => e.code === 'rate_limited'))
  t.ok(recs.every(r => r.unsubscribed.length === 0), 'none ended')
  t.equal(client.state, 'open')
  t.notOk(rec.states.some(s => s.code === 4429), 'no 4429')
})

t.test('close() ends every subscription; subscribe() after close() gives an ended one', async t => {
  const { ws, token } = await startApp(t, { config })
  const client: GatecastClient = connect({ url: ws, WebSocket, getToken: () => token({ sub: 'alice' }) })
  const a = client.subscribe('room:a')
  const ra = recordSub(a)
  await a.whenSubscribed()
  const waiting = client.subscribe('room:b').publish('never sent')
  client.close()
  t.equal(a.state, 'unsubscribed')
  t.same(ra.unsubscribed, [{ reason: 'closed' }])
  t.equal(client.subscriptions.size, 0)
  const pending = await waiting.then(() => null, (e: unknown) => e)
  t.ok(pending instanceof PublishError)
  const after = client.subscribe('room:c')
  t.equal(after.state, 'unsubscribed')
  const err = await after.whenSubscribed().then(() => null, (e: unknown) => e)
  t.equal((err as SubscriptionError).code, 'closed')
})
