// One socket, many channels (contract §3), frame by frame over real sockets:
// subscribe and unsubscribe answers and their exact order, `since` on a
// subscribe, duplicates, refusals (bad_request, forbidden, too_many_channels,
// rate_limited), publish with a channel, a refresh that withdraws a channel,
// presence following subscriptions, the GatewayWorker URL, and subscriptions
// the server API makes for a user. Races are in subscriptions-races.test.ts,
// per-connection calls in ../api-connections.test.ts.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import type { TestApp } from '../../helpers/app.ts'
import { connect, type Frame } from '../../helpers/client.ts'
import { call, cluster, node, settle, socket, subscribe, take } from '../../helpers/multi.ts'
import { pingPong, tryUpgrade } from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'
import { GatecastError } from '../../../src/protocol/errors.ts'
import type { ConfigOverrides } from '../../../src/config/config.ts'

const presence = { channels: { room: { presence: true } } }

/** An error frame, exactly: these fields and a message, nothing else. */
function isError (t: Test, f: Frame | undefined, want: { code: string, ref?: string | number, channel?: string }, label: string): void {
  t.match(f, { type: 'error', code: want.code, message: String }, `${label}: error ${want.code}`)
  const keys = ['code', 'message', 'type', ...(want.ref === undefined ? [] : ['ref']), ...(want.channel === undefined ? [] : ['channel'])].sort()
  t.same(Object.keys(f ?? {}).sort(), keys, `${label}: exactly the fields ${keys.join(', ')}`)
  t.equal(f?.ref, want.ref, `${label}: ref`)
  t.equal(f?.channel, want.channel, `${label}: channel`)
}

const data = (frames: Frame[]): unknown[] => frames.map(f => f.data)

/** One memory node, or one node on Redis (where live frames and the history read travel apart). */
async function oneNode (t: Test, engine: string, config: ConfigOverrides = {}): Promise<TestApp> {
  if (engine === 'memory') return node(t, config)
  const [a] = await cluster(t, 1, config)
  return a
}

t.test('/ws: ready without a channel; subscribe answers subscribed; each channel gets its own messages; publish names its channel', async t => {
  const a = await node(t)
  const { c, ready } = await socket(t, a, '/ws', 'alice')
  t.notOk('channel' in ready, 'ready names no channel on /ws')
  t.match(ready, { type: 'ready', userId: 'alice', connectionId: String })

  t.same(await subscribe(c, 'room:a', { ref: 1 }), { type: 'subscribed', channel: 'room:a', ref: 1, by: 'client' }, 'no since: no recovered')
  t.same(await subscribe(c, 'room:b', { ref: 'b' }), { type: 'subscribed', channel: 'room:b', ref: 'b', by: 'client' })
  t.same(await subscribe(c, 'room:c'), { type: 'subscribed', channel: 'room:c', by: 'client' }, 'no ref: none in the answer')

  await a.app.gatecast.publish('room:b', 'to b')
  await a.app.gatecast.publish('elsewhere', 'not for it')
  await a.app.gatecast.publish('room:a', 'to a')
  const two = await take(c, 2)
  t.match(two, [{ type: 'message', channel: 'room:b', data: 'to b', from: null }, { type: 'message', channel: 'room:a', data: 'to a' }], 'in publish order, each with its channel')

  c.send({ type: 'publish', channel: 'room:c', data: 'mine', ref: 'p1' })
  const [m, ack] = [await c.nextOfType('message'), await c.nextOfType('ack')]
  t.match(m, { channel: 'room:c', from: 'alice', data: 'mine' })
  t.same(ack, { type: 'ack', ref: 'p1', id: m.id })

  c.send({ type: 'publish', data: 'where to?', ref: 'p2' })
  isError(t, await c.next(), { code: 'bad_request', ref: 'p2' }, 'publish without a channel on /ws')
  c.send({ type: 'publish', channel: 'room:z', data: 'x', ref: 'p3' })
  isError(t, await c.next(), { code: 'forbidden', ref: 'p3', channel: 'room:z' }, 'publish to a channel it is not subscribed to')
  c.send({ type: 'publish', channel: 'room:z', data: 'x' })
  isError(t, await c.next(), { code: 'forbidden', channel: 'room:z' }, 'the same without a ref')
  t.same(await settle(c), [], 'nothing else: no message of the refused publishes, nothing of other channels')
  t.same((await a.app.gatecast.history('room:z')).messages, [], 'the refused publish was not stored either')
})

for (const engine of ['memory', 'redis']) {
  t.test(`${engine}: subscribe with since: subscribed (recovered) first, then the replay in order, then live; never partial`, async t => {
    const a = await oneNode(t, engine)
    const ids: string[] = []
    for (let n = 0; n < 5; n++) ids.push((await a.app.gatecast.publish('room:r', n)).id)
    const { c } = await socket(t, a, '/ws', 'alice')

    c.send({ type: 'subscribe', channel: 'room:r', since: ids[1], ref: 's' })
    const got = await take(c, 4)
    t.same(got[0], { type: 'subscribed', channel: 'room:r', ref: 's', recovered: true, by: 'client' })
    t.same(got.slice(1).map(f => [f.type, f.channel, f.id, f.data]), [2, 3, 4].map(n => ['message', 'room:r', ids[n], n]), 'the three missed, in order, with their ids')
    const live = await a.app.gatecast.publish('room:r', 5)
    t.match(await c.next(), { type: 'message', id: live.id, data: 5 }, 'then live')
    t.same(await settle(c), [], 'nothing doubled')

    // up to date already: recovered, nothing to replay
    const { c: current } = await socket(t, a, '/ws', 'bob')
    t.same(await subscribe(current, 'room:r', { since: live.id, ref: 1 }), { type: 'subscribed', channel: 'room:r', ref: 1, recovered: true, by: 'client' })
    t.same(await settle(current), [], 'no replay')

    // an id from another life of the channel: recovered false and no replay at all
    const { c: lost } = await socket(t, a, '/ws', 'carol')
    t.same(await subscribe(lost, 'room:r', { since: 'zzzz:2', ref: 2 }), { type: 'subscribed', channel: 'room:r', ref: 2, recovered: false, by: 'client' })
    t.same(await settle(lost), [], 'no replay')
    const after = await a.app.gatecast.publish('room:r', 6)
    t.match(await lost.next(), { type: 'message', id: after.id, data: 6 }, 'live messages follow')
    t.match(await current.next(), { type: 'message', id: after.id })

    // a malformed since is the client's mistake, and nothing is subscribed
    lost.send({ type: 'subscribe', channel: 'room:q', since: 'not an id', ref: 3 })
    isError(t, await lost.next(), { code: 'bad_request', ref: 3, channel: 'room:q' }, 'bad since')
    await a.app.gatecast.publish('room:q', 'x')
    t.same(await settle(lost), [], 'not subscribed after a bad since')
  })

  t.test(`${engine}: a duplicate subscribe answers subscribed again, without replay or recovered, and never doubles delivery or presence`, async t => {
    const a = await oneNode(t, engine, presence)
    const first = await a.app.gatecast.publish('chat', 'old')
    const { c } = await socket(t, a, '/ws/chat', 'alice')
    const { c: watcher } = await socket(t, a, '/ws', 'watcher')
    t.match(await subscribe(watcher, 'room:x'), { type: 'subscribed' })

    // the path channel is a subscription like any other
    t.same(await subscribe(c, 'chat', { since: first.id, ref: 'd1' }), { type: 'subscribed', channel: 'chat', ref: 'd1', by: 'client' }, 'path channel again: no recovered')
    t.same(await subscribe(c, 'room:x', { ref: 1 }), { type: 'subscribed', channel: 'room:x', ref: 1, by: 'client' })
    await a.app.gatecast.publish('room:x', 'before')
    t.match(await c.next(f => f.type !== 'presence'), { type: 'message', data: 'before' })
    // on Redis the joiner hears its own join (it travels by pub/sub, after the subscription is live); on memory it does not
    const own = c.frames.splice(0)
    t.same(own.filter(f => !(f.type === 'presence' && f.userId === 'alice' && f.event === 'join' && f.channel === 'room:x')), [], 'at most its own join besides')
    t.ok(own.length <= 1, 'and that once')
    t.same(await subscribe(c, 'room:x', { ref: 2 }), { type: 'subscribed', channel: 'room:x', ref: 2, by: 'client' })
    t.same(await subscribe(c, 'room:x', { since: 'zzzz:1', ref: 3 }), { type: 'subscribed', channel: 'room:x', ref: 3, by: 'client' }, 'with since: neither recovered nor replay')
    t.same(await settle(c), [], 'no replay of chat or room:x')

    for (let n = 0; n < 3; n++) {
      await a.app.gatecast.publish('chat', `c${n}`)
      await a.app.gatecast.publish('room:x', `x${n}`)
    }
    const got = await take(c, 6)
    t.same(got.map(f => `${f.channel}/${f.data}`), ['chat/c0', 'room:x/x0', 'chat/c1', 'room:x/x1', 'chat/c2', 'room:x/x2'], 'each message once')
    t.same(await settle(c, 200), [], 'and no second copy')

    const joins = (await settle(watcher)).filter(f => f.type === 'presence' && f.userId === 'alice')
    t.same(joins, [{ type: 'presence', channel: 'room:x', event: 'join', userId: 'alice' }], 'one join for three subscribes')
    t.same((await a.app.gatecast.presence('room:x')).users.find(u => u.userId === 'alice'), { userId: 'alice', connections: 1 }, 'counted once in presence')
    const status = await a.app.gatecast.userStatus('alice')
    t.same({ ...status, channels: status.channels.sort() }, { userId: 'alice', online: true, connections: 1, channels: ['chat', 'room:x'] })

    // one unsubscribe ends it, however many subscribes there were
    c.send({ type: 'unsubscribe', channel: 'room:x', ref: 'u' })
    t.same(await c.next(), { type: 'unsubscribed', channel: 'room:x', ref: 'u', reason: 'client' })
    await a.app.gatecast.publish('room:x', 'after')
    t.same(await settle(c), [], 'nothing of room:x after one unsubscribe')
    t.same((await watcher.nextOfType('presence')), { type: 'presence', channel: 'room:x', event: 'leave', userId: 'alice' })
  })
}

t.test('unsubscribe: answered (also for a channel it did not have), nothing of the channel follows; the path channel can be left and direct frames still come', async t => {
  const a = await node(t)
  const { c } = await socket(t, a, '/ws/chat', 'alice')
  t.match(await subscribe(c, 'room:y'), { type: 'subscribed' })
  await a.app.gatecast.publish('room:y', 'in')
  t.match(await c.next(), { type: 'message', channel: 'room:y', data: 'in' })

  c.send({ type: 'unsubscribe', channel: 'room:y', ref: 'u1' })
  t.same(await c.next(), { type: 'unsubscribed', channel: 'room:y', ref: 'u1', reason: 'client' })
  c.send({ type: 'unsubscribe', channel: 'room:y', ref: 'u1b' })
  t.same(await c.next(), { type: 'unsubscribed', channel: 'room:y', ref: 'u1b', reason: 'client' }, 'again: answered all the same')
  c.send({ type: 'unsubscribe', channel: 'never', ref: 'u2' })
  t.same(await c.next(), { type: 'unsubscribed', channel: 'never', ref: 'u2', reason: 'client' }, 'a channel it never had')
  c.send({ type: 'unsubscribe', channel: 'never' })
  t.same(await c.next(), { type: 'unsubscribed', channel: 'never', reason: 'client' }, 'no ref: none in the answer')
  c.send({ type: 'unsubscribe', channel: 'bad name!', ref: 'u3' })
  isError(t, await c.next(), { code: 'bad_request', ref: 'u3', channel: 'bad name!' }, 'invalid channel name')
  c.send({ type: 'unsubscribe', ref: 'u4' })
  t.match(await c.next(), { type: 'error', code: 'bad_request', ref: 'u4' }, 'no channel at all')
  await a.app.gatecast.publish('room:y', 'out')

  c.send({ type: 'unsubscribe', channel: 'chat', ref: 'path' })
  t.same(await c.next(), { type: 'unsubscribed', channel: 'chat', ref: 'path', reason: 'client' })
  await a.app.gatecast.publish('chat', 'gone')
  c.send({ type: 'publish', data: 'x', ref: 'p' })
  isError(t, await c.next(), { code: 'forbidden', ref: 'p' }, 'a publish to the path channel it left')
  t.equal(c.ws.readyState, WebSocket.OPEN, 'the socket stays')
  await pingPong(c)
  t.equal((await call(a, 'POST', '/api/users/alice/messages', { data: 'still here' })).status, 202)
  t.match(await c.next(), { type: 'direct', data: 'still here', from: null }, 'direct frames still reach it')
  t.same(await settle(c), [], 'nothing of room:y or chat after leaving them')
  t.same(await a.app.gatecast.userStatus('alice'), { userId: 'alice', online: true, connections: 1, channels: [] })
  t.same(await a.app.gatecast.channels(), [], 'no channel left in presence')

  // and back again
  t.same(await subscribe(c, 'chat', { ref: 'back' }), { type: 'subscribed', channel: 'chat', ref: 'back', by: 'client' })
  await a.app.gatecast.publish('chat', 'again')
  t.match(await c.next(), { type: 'message', channel: 'chat', data: 'again' })
})

t.test('subscribe refusals carry the ref and channel: bad name, # user lists, the channels claim, an onSubscribe hook; nothing is left subscribed', async t => {
  const a = await node(t, presence)
  const seen: Array<{ connectionId: string, userId: string, channel: string }> = []
  a.app.gatecast.onSubscribe(async ctx => {
    seen.push({ connectionId: ctx.connectionId, userId: ctx.userId, channel: ctx.channel })
    await new Promise(resolve => setTimeout(resolve, 5))
    if (ctx.channel === 'room:secret') throw new GatecastError(403, 'no_entry', 'not for you')
  })
  const { c, ready } = await socket(t, a, '/ws', 'alice', { channels: ['room:*', 'dm#*'] })

  c.send({ type: 'subscribe', channel: 'bad name!', ref: 1 })
  isError(t, await c.next(), { code: 'bad_request', ref: 1, channel: 'bad name!' }, 'bad name')
  c.send({ type: 'subscribe', channel: 'x'.repeat(129), ref: 2 })
  isError(t, await c.next(), { code: 'bad_request', ref: 2, channel: 'x'.repeat(129) }, 'name too long')
  c.send({ type: 'subscribe', channel: 'dm#bob,carol', ref: 3 })
  isError(t, await c.next(), { code: 'forbidden', ref: 3, channel: 'dm#bob,carol' }, '# list without alice')
  c.send({ type: 'subscribe', channel: 'lobby', ref: 4 })
  isError(t, await c.next(), { code: 'forbidden', ref: 4, channel: 'lobby' }, 'outside the token channels claim')
  c.send({ type: 'subscribe', channel: 'room:secret', ref: 5 })
  isError(t, await c.next(), { code: 'forbidden', ref: 5, channel: 'room:secret' }, 'refused by the onSubscribe hook')
  c.send({ type: 'subscribe', channel: 'room:secret' })
  isError(t, await c.next(), { code: 'forbidden', channel: 'room:secret' }, 'the same without a ref')

  t.same(await subscribe(c, 'dm#alice,bob', { ref: 6 }), { type: 'subscribed', channel: 'dm#alice,bob', ref: 6, by: 'client' }, 'a # list with alice')
  t.same(await subscribe(c, 'room:open', { ref: 7 }), { type: 'subscribed', channel: 'room:open', ref: 7, by: 'client' })
  t.same(seen, [
    { connectionId: ready.connectionId, userId: 'alice', channel: 'room:secret' },
    { connectionId: ready.connectionId, userId: 'alice', channel: 'room:secret' },
    { connectionId: ready.connectionId, userId: 'alice', channel: 'dm#alice,bob' },
    { connectionId: ready.connectionId, userId: 'alice', channel: 'room:open' }
  ], 'the hook runs after the built-in checks passed, with the socket\'s connection id')

  for (const ch of ['room:secret', 'lobby', 'dm#bob,carol', 'room:open']) await a.app.gatecast.publish(ch, ch)
  t.same(data(await take(c, 1)), ['room:open'], 'only the granted channel delivers')
  t.same(await settle(c), [])
  const status = await a.app.gatecast.userStatus('alice')
  t.same(status.channels.sort(), ['dm#alice,bob', 'room:open'], 'refused channels left nothing in presence')
  t.same((await a.app.gatecast.channels()).map(ch => ch.name).sort(), ['dm#alice,bob', 'room:open'])
  t.equal(c.ws.readyState, WebSocket.OPEN, 'refusals never close the socket')
})

t.test('the channel limit (wsChannelsPerSocket) counts the path channel, refuses the next with too_many_channels, and frees a place on unsubscribe; server subscriptions obey it too', async t => {
  const a = await node(t, { wsChannelsPerSocket: 3 })
  const { c } = await socket(t, a, '/ws/chat', 'alice')
  t.match(await subscribe(c, 'a'), { type: 'subscribed', channel: 'a' })
  t.match(await subscribe(c, 'b'), { type: 'subscribed', channel: 'b' })
  c.send({ type: 'subscribe', channel: 'c', ref: 'c1' })
  isError(t, await c.next(), { code: 'too_many_channels', ref: 'c1', channel: 'c' }, 'the fourth')
  t.same(await subscribe(c, 'a', { ref: 'dup' }), { type: 'subscribed', channel: 'a', ref: 'dup', by: 'client' }, 'a duplicate at the limit is no new channel')

  t.equal((await call(a, 'POST', '/api/users/alice/channels/server-side')).status, 202)
  isError(t, await c.next(), { code: 'too_many_channels', channel: 'server-side' }, 'a server subscription past the limit')
  await a.app.gatecast.publish('c', 'x')
  await a.app.gatecast.publish('server-side', 'x')
  t.same(await settle(c), [], 'the refused channels deliver nothing')

  c.send({ type: 'unsubscribe', channel: 'b' })
  t.match(await c.next(), { type: 'unsubscribed', channel: 'b' })
  t.same(await subscribe(c, 'c', { ref: 'c2' }), { type: 'subscribed', channel: 'c', ref: 'c2', by: 'client' }, 'a place came free')
  c.send({ type: 'subscribe', channel: 'd', ref: 'd1' })
  isError(t, await c.next(), { code: 'too_many_channels', ref: 'd1', channel: 'd' }, 'full again')
  await a.app.gatecast.publish('c', 'now')
  t.match(await c.next(), { type: 'message', channel: 'c', data: 'now' })
  t.same((await a.app.gatecast.userStatus('alice')).channels.sort(), ['a', 'c', 'chat'])

  // the limit is per socket: another socket of the same user has its own three
  const { c: other } = await socket(t, a, '/ws', 'alice')
  for (const ch of ['a', 'b', 'c']) t.match(await subscribe(other, ch), { type: 'subscribed', channel: ch })
})

t.test('publishes, subscribes and unsubscribes share the socket\'s message rate (wsMessageRate)', async t => {
  const a = await node(t, { wsMessageRate: 5 })
  const { c } = await socket(t, a, '/ws/chat', 'alice')
  // the burst is twice the rate: ten frames of the three kinds
  for (let i = 0; i < 4; i++) c.send({ type: 'publish', data: i, ref: `p${i}` })
  for (let i = 0; i < 3; i++) c.send({ type: 'subscribe', channel: `ch${i}`, ref: `s${i}` })
  for (let i = 0; i < 3; i++) c.send({ type: 'unsubscribe', channel: `ch${i}`, ref: `u${i}` })
  c.send({ type: 'ping' })
  c.send({ type: 'subscribe', channel: 'late', ref: 'over1' })
  c.send({ type: 'unsubscribe', channel: 'chat', ref: 'over2' })
  c.send({ type: 'publish', data: 'over', ref: 'over3' })
  await waitFor(() => c.frames.filter(f => f.ref !== undefined || f.type === 'pong').length >= 14, { what: 'every frame answered' })
  const frames = await settle(c)
  const answers = frames.filter(f => f.type !== 'message')
  t.same(answers.filter(f => f.type === 'ack').map(f => f.ref), ['p0', 'p1', 'p2', 'p3'])
  t.same(answers.filter(f => f.type === 'subscribed').map(f => f.ref), ['s0', 's1', 's2'])
  t.same(answers.filter(f => f.type === 'unsubscribed').map(f => f.ref), ['u0', 'u1', 'u2'])
  t.equal(answers.filter(f => f.type === 'pong').length, 1, 'ping is not counted')
  const errors = answers.filter(f => f.type === 'error')
  t.equal(errors.length, 3, 'the three past the burst are refused')
  isError(t, errors.find(f => f.ref === 'over1'), { code: 'rate_limited', ref: 'over1', channel: 'late' }, 'subscribe')
  isError(t, errors.find(f => f.ref === 'over2'), { code: 'rate_limited', ref: 'over2', channel: 'chat' }, 'unsubscribe')
  isError(t, errors.find(f => f.ref === 'over3'), { code: 'rate_limited', ref: 'over3' }, 'publish')
  t.equal(frames.filter(f => f.type === 'message').length, 4, 'four messages, none of the refused publish')
  t.same((await a.app.gatecast.userStatus('alice')).channels, ['chat'], 'the refused unsubscribe did not leave chat, the refused subscribe joined nothing')

  // the budget refills
  await new Promise(resolve => setTimeout(resolve, 500))
  t.same(await subscribe(c, 'late', { ref: 'ok' }), { type: 'subscribed', channel: 'late', ref: 'ok', by: 'client' })
  t.equal(c.ws.readyState, WebSocket.OPEN)
})

t.test('a refresh whose token no longer allows a channel the client subscribed: unsubscribed forbidden for it alone, then refreshed; server-made subscriptions stay', async t => {
  const a = await node(t)
  const { c } = await socket(t, a, '/ws', 'alice', { channels: ['room:*', 'lobby'] })
  t.match(await subscribe(c, 'room:1'), { type: 'subscribed', by: 'client' })
  t.match(await subscribe(c, 'room:2'), { type: 'subscribed', by: 'client' })
  t.match(await subscribe(c, 'lobby'), { type: 'subscribed', by: 'client' })
  t.equal((await call(a, 'POST', '/api/users/alice/channels/ops')).status, 202)
  t.same(await c.next(), { type: 'subscribed', channel: 'ops', by: 'server' }, 'outside the claim, but the server made it')

  const next = a.token({ sub: 'alice', channels: ['lobby', 'room:2'] }, { expiresIn: 1200 })
  c.send({ type: 'refresh', token: next })
  const got = await take(c, 2)
  t.same(got[0], { type: 'unsubscribed', channel: 'room:1', reason: 'forbidden' }, 'the withdrawn channel, without a ref')
  t.match(got[1], { type: 'refreshed', expiresAt: Number })
  t.same(await settle(c), [], 'nothing for the channels still allowed, nor for the server-made one')

  for (const ch of ['room:1', 'room:2', 'lobby', 'ops']) await a.app.gatecast.publish(ch, ch)
  t.same(data(await take(c, 3)), ['room:2', 'lobby', 'ops'])
  t.same(await settle(c), [], 'nothing of room:1')
  c.send({ type: 'subscribe', channel: 'room:1', ref: 'again' })
  isError(t, await c.next(), { code: 'forbidden', ref: 'again', channel: 'room:1' }, 'the new token is the one that judges')
  t.same((await a.app.gatecast.userStatus('alice')).channels.sort(), ['lobby', 'ops', 'room:2'])
  t.equal(c.ws.readyState, WebSocket.OPEN, 'the socket stays')

  // a refresh that withdraws nothing says only refreshed
  c.send({ type: 'refresh', token: next })
  t.match(await take(c, 1), [{ type: 'refreshed' }])
  t.same(await settle(c), [])
})

t.test('presence join and leave follow subscriptions, not sockets; a socket\'s close leaves each of its channels; user status counts sockets and subscribed channels', async t => {
  const a = await node(t, presence)
  const { c: watcher } = await socket(t, a, '/ws', 'watcher')
  for (const ch of ['room:1', 'room:2', 'room:3']) t.match(await subscribe(watcher, ch), { type: 'subscribed' })
  const about = async (user: string, ms = 150): Promise<Array<[string, string]>> =>
    (await settle(watcher, ms)).filter(f => f.type === 'presence' && f.userId === user).map(f => [f.event as string, f.channel as string])

  const { c: one } = await socket(t, a, '/ws', 'alice')
  t.same(await about('alice'), [], 'a socket on no channel is in no presence')
  t.match(await subscribe(one, 'room:1'), { type: 'subscribed' })
  t.match(await subscribe(one, 'room:2'), { type: 'subscribed' })
  t.same(await about('alice'), [['join', 'room:1'], ['join', 'room:2']])
  const { c: two } = await socket(t, a, '/ws/room:1', 'alice')
  t.same(await about('alice'), [], 'a second socket on room:1 is no new join')
  const p1 = await a.app.gatecast.presence('room:1')
  t.same(p1.users.sort((x, y) => x.userId.localeCompare(y.userId)), [{ userId: 'alice', connections: 2 }, { userId: 'watcher', connections: 1 }], 'two sockets of alice on room:1')
  const s = await a.app.gatecast.userStatus('alice')
  t.same({ ...s, channels: s.channels.sort() }, { userId: 'alice', online: true, connections: 2, channels: ['room:1', 'room:2'] })
  const viaApi = await call(a, 'GET', '/api/users/alice')
  t.same({ ...viaApi.body, channels: viaApi.body.channels.sort() }, { userId: 'alice', online: true, connections: 2, channels: ['room:1', 'room:2'] }, 'the same over the API')

  one.send({ type: 'unsubscribe', channel: 'room:1' })
  t.match(await one.next(), { type: 'unsubscribed', channel: 'room:1' })
  t.same(await about('alice'), [], 'still on room:1 through the other socket')
  one.send({ type: 'unsubscribe', channel: 'room:2' })
  t.match(await one.next(), { type: 'unsubscribed', channel: 'room:2' })
  t.same(await about('alice'), [['leave', 'room:2']], 'the last subscription to room:2 ended; the socket is still open')
  t.same(await a.app.gatecast.userStatus('alice'), { userId: 'alice', online: true, connections: 2, channels: ['room:1'] })
  two.close()
  await two.closed
  t.same(await about('alice', 300), [['leave', 'room:1']])
  t.same(await a.app.gatecast.userStatus('alice'), { userId: 'alice', online: true, connections: 1, channels: [] }, 'a socket on no channel is still online')

  // one socket, three channels, closed: a leave for each
  const { c: carol } = await socket(t, a, '/ws', 'carol')
  for (const ch of ['room:1', 'room:2', 'room:3']) t.match(await subscribe(carol, ch), { type: 'subscribed' })
  t.same((await about('carol')).sort(), [['join', 'room:1'], ['join', 'room:2'], ['join', 'room:3']])
  carol.ws.terminate()
  await waitFor(async () => (await a.app.gatecast.userStatus('carol')).connections === 0, { what: 'carol gone' })
  t.same((await about('carol', 300)).sort(), [['leave', 'room:1'], ['leave', 'room:2'], ['leave', 'room:3']], 'one leave per channel, once each')
  t.same(await a.app.gatecast.userStatus('carol'), { userId: 'carol', online: false, connections: 0, channels: [] })
  one.close()
  await one.closed
  await waitFor(async () => !(await a.app.gatecast.userStatus('alice')).online, { what: 'alice offline' })
  t.same(await about('alice'), [], 'closing a socket on no channel gives no leave')
})

t.test('the GatewayWorker URL ws://host/?Authorization=Bearer <jwt> opens a socket with ready and no channel; it subscribes like /ws', async t => {
  const a = await node(t)
  const jwt = a.token({ sub: 'gw' })
  for (const [label, url] of [
    ['Bearer, space', `${a.ws}/?Authorization=Bearer ${jwt}`],
    ['Bearer, %20', `${a.ws}/?Authorization=Bearer%20${jwt}`],
    ['bare jwt', `${a.ws}/?Authorization=${jwt}`]
  ] as const) {
    const c = await connect(url)
    t.teardown(() => c.ws.terminate())
    const ready = await c.next()
    t.match(ready, { type: 'ready', userId: 'gw', connectionId: String }, `${label}: ready first`)
    t.notOk('channel' in ready, `${label}: without a channel`)
    t.same(await subscribe(c, 'group:1', { ref: label }), { type: 'subscribed', channel: 'group:1', ref: label, by: 'client' })
    const { id } = await a.app.gatecast.publish('group:1', label)
    t.match(await c.next(), { type: 'message', channel: 'group:1', id, data: label }, `${label}: messages of the subscribed channel`)
    c.send({ type: 'publish', channel: 'group:1', data: 'from gw', ref: 'p' })
    t.match(await c.nextOfType('ack'), { ref: 'p' })
    c.close()
  }
  // since belongs to a path channel; on / it is said so before any socket opens
  const withSince = await tryUpgrade(`${a.ws}/?Authorization=Bearer%20${jwt}&since=abc:1`)
  t.equal(withSince.opened, false)
  t.equal(withSince.status, 400)
  t.equal(withSince.body?.code, 'bad_since')
  const noToken = await tryUpgrade(`${a.ws}/`)
  t.equal(noToken.status, 401, 'no token: 401, no socket')
})

t.test('a since replay larger than wsSendBuffer: subscribed recovered false, no replay, live messages follow, the socket stays', async t => {
  const a = await node(t, { wsSendBuffer: 64 * 1024, historySize: 200 })
  const chunk = 'x'.repeat(4000)
  const { id: first } = await a.app.gatecast.publish('big', { n: 0, chunk })
  for (let n = 1; n < 40; n++) await a.app.gatecast.publish('big', { n, chunk })
  const { c } = await socket(t, a, '/ws', 'alice')
  t.same(await subscribe(c, 'big', { since: first, ref: 1 }), { type: 'subscribed', channel: 'big', ref: 1, recovered: false, by: 'client' })
  await a.app.gatecast.publish('big', { n: 40 })
  const next = await c.next()
  t.match(next, { type: 'message', channel: 'big', data: { n: 40 } }, 'the live message, none of the replay')
  t.same(await settle(c), [])
  t.equal(c.ws.readyState, WebSocket.OPEN, 'never a 4408 for a replay that was not started')

  // a replay that fits is whole
  const { id: near } = (await a.app.gatecast.history('big', { limit: 5 })).messages[0]
  t.same(await subscribe(c, 'big2', { since: near }), { type: 'subscribed', channel: 'big2', recovered: false, by: 'client' }, 'an id of another channel is no position in this one')
  const { c: fits } = await socket(t, a, '/ws', 'bob')
  t.same(await subscribe(fits, 'big', { since: near }), { type: 'subscribed', channel: 'big', recovered: true, by: 'client' })
  t.same((await take(fits, 4)).map(f => f.data.n), [37, 38, 39, 40], 'the four after it, in order')
})

t.test('POST/DELETE /api/users/:userId/channels/:channel: every socket of the user, subscribed by server, no client checks or onSubscribe; messages follow; unsubscribed reason server', async t => {
  const a = await node(t)
  let hookCalls = 0
  a.app.gatecast.onSubscribe(ctx => {
    if (!ctx.channel.startsWith('dm#')) return
    hookCalls++
    throw new GatecastError(403, 'nope', 'the hook refuses every dm# channel')
  })
  const { c: one } = await socket(t, a, '/ws', 'alice', { channels: ['nothing'] })
  const { c: two } = await socket(t, a, '/ws/nothing', 'alice')
  const { c: bob } = await socket(t, a, '/ws', 'bob')
  one.send({ type: 'subscribe', channel: 'dm#alice', ref: 'probe' })
  t.match(await one.next(), { type: 'error', code: 'forbidden', ref: 'probe' }, 'the client itself may not (claim and hook)')
  // user-limited to others, outside the token's claim, refused by the hook: the server's call decides
  const res = await call(a, 'POST', `/api/users/alice/channels/${encodeURIComponent('dm#bob,carol')}`)
  t.equal(res.status, 202)
  t.same(res.body, { status: 'accepted' })
  for (const [i, c] of [one, two].entries()) t.same(await c.next(), { type: 'subscribed', channel: 'dm#bob,carol', by: 'server' }, `socket ${i}: subscribed by server, no ref`)
  t.equal(hookCalls, 0, 'onSubscribe does not run for server subscriptions')
  const { id } = await a.app.gatecast.publish('dm#bob,carol', 'hello')
  for (const c of [one, two]) t.match(await c.next(), { type: 'message', channel: 'dm#bob,carol', id, data: 'hello' })
  t.same(await settle(bob), [], 'another user\'s sockets are untouched')

  // already there: answered again, delivered once
  t.equal((await call(a, 'POST', `/api/users/alice/channels/${encodeURIComponent('dm#bob,carol')}`)).status, 202)
  for (const c of [one, two]) t.same(await c.next(), { type: 'subscribed', channel: 'dm#bob,carol', by: 'server' })
  await a.app.gatecast.publish('dm#bob,carol', 'once')
  for (const c of [one, two]) t.same(data(await settle(c)), ['once'])

  // the client may publish on it and leave it like any other
  one.send({ type: 'publish', channel: 'dm#bob,carol', data: 'reply', ref: 'r' })
  t.match(await one.nextOfType('ack'), { ref: 'r' })
  t.match(await two.next(), { type: 'message', data: 'reply', from: 'alice' })

  const del = await call(a, 'DELETE', `/api/users/alice/channels/${encodeURIComponent('dm#bob,carol')}`)
  t.equal(del.status, 202)
  t.same(del.body, { status: 'accepted' })
  for (const c of [one, two]) {
    const got = (await settle(c)).filter(f => f.type !== 'message' || f.data !== 'reply')
    t.same(got, [{ type: 'unsubscribed', channel: 'dm#bob,carol', reason: 'server' }])
  }
  await a.app.gatecast.publish('dm#bob,carol', 'after')
  for (const c of [one, two]) t.same(await settle(c), [], 'nothing after unsubscribed')

  // a user with no sockets, and a bad channel name
  t.equal((await call(a, 'POST', '/api/users/nobody/channels/x')).status, 202)
  t.equal((await call(a, 'POST', '/api/users/alice/channels/bad%20name')).status, 400)
  t.equal((await call(a, 'DELETE', '/api/users/alice/channels/bad%20name')).status, 400)
  t.same(await settle(one), [])
})
