// One socket, many channels across a cluster: two Gatecast nodes on one
// Redis, under a key prefix of the test's own. A server-side join reaches a
// user's sockets on every node; a per-connection call made on the node that
// does not hold the socket is routed to the one that does (and is 404 where no
// node has it); a node that dies holding sockets on several channels gives a
// presence leave for each of them on the nodes that live on.
import t from 'tap'
import type { TestApp } from '../helpers/app.ts'
import { call, cluster, node, redisLine, settle, socket, subscribe } from '../helpers/multi.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { closedWithin } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'

const enc = encodeURIComponent
const presence = { channels: { room: { presence: true } } }
const sortedChannels = (s: { channels: string[] }): string[] => [...s.channels].sort()
const nodeOf = (connectionId: string): string => connectionId.slice(0, connectionId.indexOf('.'))

t.test('POST/DELETE /api/users/:userId/channels/:channel on one node reaches the user\'s sockets on both; presence counts the user once', async t => {
  const [a, b] = await cluster(t, 2, { ...presence, wsChannelsPerSocket: 3 })
  const { c: onA } = await socket(t, a, '/ws', 'alice')
  const { c: onB } = await socket(t, b, '/ws/chat', 'alice')
  const { c: full } = await socket(t, b, '/ws/chat', 'alice')
  for (const ch of ['x', 'y']) t.match(await subscribe(full, ch), { type: 'subscribed' })
  const { c: bob } = await socket(t, b, '/ws/chat', 'bob')
  const { c: watcher } = await socket(t, b, '/ws', 'watcher')
  t.match(await subscribe(watcher, 'room:5'), { type: 'subscribed' })
  await settle(watcher, 100)

  const res = await call(a, 'POST', '/api/users/alice/channels/room:5')
  t.equal(res.status, 202)
  t.same(res.body, { status: 'accepted' })
  t.same(await onA.next(), { type: 'subscribed', channel: 'room:5', by: 'server' }, 'the socket on the node that took the call')
  t.same(await onB.next(f => f.type !== 'presence'), { type: 'subscribed', channel: 'room:5', by: 'server' }, 'the socket on the other node')
  const refused = await full.next()
  t.match(refused, { type: 'error', code: 'too_many_channels', channel: 'room:5', message: String }, 'a full socket says so, on its own node')
  t.notOk('ref' in refused)

  const { id } = await b.app.gatecast.publish('room:5', 'from b')
  for (const c of [onA, onB]) t.match(await c.next(f => f.type !== 'presence'), { type: 'message', channel: 'room:5', id, data: 'from b' })
  onA.send({ type: 'publish', channel: 'room:5', data: 'from alice on a', ref: 'p' })
  t.match(await onB.next(f => f.type === 'message'), { data: 'from alice on a', from: 'alice' }, 'a client publish on one node reaches the other')
  t.match(await onA.nextOfType('ack'), { ref: 'p' })
  t.same((await settle(onA)).filter(f => f.type === 'message' && f.data !== 'from alice on a'), [], 'each message once')
  t.same((await settle(onB)).filter(f => f.type === 'message'), [])
  t.same(await settle(bob), [], 'bob is untouched')
  t.same(await settle(full), [], 'the full socket gets nothing of room:5')

  const joins = (await settle(watcher)).filter(f => f.type === 'presence' && f.userId === 'alice')
  t.same(joins, [{ type: 'presence', channel: 'room:5', event: 'join', userId: 'alice' }], 'one join for two sockets on two nodes')
  t.same((await a.app.gatecast.presence('room:5')).users.find(u => u.userId === 'alice'), { userId: 'alice', connections: 2 })
  for (const n of [a, b]) {
    const s = await n.app.gatecast.userStatus('alice')
    t.same({ ...s, channels: sortedChannels(s) }, { userId: 'alice', online: true, connections: 3, channels: ['chat', 'room:5', 'x', 'y'] }, 'the same status from either node')
  }

  const del = await call(b, 'DELETE', '/api/users/alice/channels/room:5')
  t.equal(del.status, 202)
  for (const c of [onA, onB]) t.same(await c.next(f => f.type !== 'presence'), { type: 'unsubscribed', channel: 'room:5', reason: 'server' })
  t.same(await full.next(), { type: 'unsubscribed', channel: 'room:5', reason: 'server' }, 'answered also where it was not subscribed')
  await a.app.gatecast.publish('room:5', 'after')
  for (const c of [onA, onB, full]) t.same((await settle(c, 200)).filter(f => f.type !== 'presence'), [], 'nothing of room:5 after unsubscribed')
  t.same((await settle(watcher)).filter(f => f.userId === 'alice'), [{ type: 'presence', channel: 'room:5', event: 'leave', userId: 'alice' }], 'one leave')
  t.same(sortedChannels(await a.app.gatecast.userStatus('alice')), ['chat', 'x', 'y'])
})

t.test('per-connection calls on the node that does not hold the socket: 200/202 and the socket gets them; 404 for unknown ids and once it closed', async t => {
  const [a, b] = await cluster(t, 2, { wsChannelsPerSocket: 2 })
  const { c, ready } = await socket(t, b, '/ws/chat', 'alice')
  const { c: twin } = await socket(t, a, '/ws/chat', 'alice')
  const { ready: onA } = await socket(t, a, '/ws', 'carol')
  const id = ready.connectionId as string
  t.match(id, /^[A-Za-z0-9_-]+\.[0-9a-f-]{36}$/, '<nodeId>.<uuid>')
  t.not(nodeOf(id), nodeOf(onA.connectionId as string), 'the two nodes have different ids')
  const path = `/api/connections/${enc(id)}`

  const info = await call(a, 'GET', path)
  t.equal(info.status, 200)
  t.same(Object.keys(info.body).sort(), ['channels', 'connectionId', 'openedAt', 'userId'])
  t.match(info.body, { connectionId: id, userId: 'alice', channels: ['chat'], openedAt: Number })

  t.equal((await call(a, 'POST', `${path}/channels/room:7`)).status, 202)
  t.same(await c.next(), { type: 'subscribed', channel: 'room:7', by: 'server' })
  t.same((await call(a, 'GET', path)).body.channels.sort(), ['chat', 'room:7'])
  const { id: m } = await a.app.gatecast.publish('room:7', 'hello')
  t.match(await c.next(), { type: 'message', channel: 'room:7', id: m })
  t.equal((await call(a, 'POST', `${path}/channels/room:8`)).status, 202, 'reached the socket…')
  t.match(await c.next(), { type: 'error', code: 'too_many_channels', channel: 'room:8' }, '…where the channel limit holds')

  t.equal((await call(a, 'POST', `${path}/messages`, { data: { only: 'you' } })).status, 202)
  t.match(await c.next(), { type: 'direct', from: null, data: { only: 'you' } })
  t.equal((await call(a, 'DELETE', `${path}/channels/room:7`)).status, 202)
  t.same(await c.next(), { type: 'unsubscribed', channel: 'room:7', reason: 'server' })
  await a.app.gatecast.publish('room:7', 'gone')
  t.same(await settle(c), [], 'nothing after it left')
  t.same(await settle(twin), [], 'the user\'s socket on the other node got none of it')

  t.equal((await call(a, 'DELETE', path)).status, 202)
  t.equal((await closedWithin(c, 3000)).code, 4403, 'closed by a call on the other node')
  await waitFor(async () => (await a.app.gatecast.userStatus('alice')).connections === 1, { what: 'alice down to one socket' })
  const unknown = [
    id,
    `${nodeOf(id)}.00000000-0000-0000-0000-000000000000`,
    `${nodeOf(onA.connectionId as string)}.00000000-0000-0000-0000-000000000000`,
    'deadnode.00000000-0000-0000-0000-000000000000',
    '00000000-0000-0000-0000-000000000000'
  ]
  for (const n of [a, b]) {
    for (const u of unknown) {
      for (const [method, p, body] of [
        ['GET', '', undefined], ['POST', '/channels/x', undefined], ['DELETE', '/channels/x', undefined], ['POST', '/messages', { data: 1 }], ['DELETE', '', undefined]
      ] as const) {
        const res = await call(n, method, `/api/connections/${enc(u)}${p}`, body)
        t.equal(res.status, 404, `${n === a ? 'a' : 'b'} ${method} ${u}${p}: 404`)
        t.equal(res.body?.code, 'connection_not_found')
      }
    }
  }
  t.equal(twin.ws.readyState, twin.ws.OPEN, 'the twin is still open')
})

t.test('a node that dies holding sockets on several channels: a presence leave for each of them reaches the sockets of the node that lives on', async t => {
  const prefix = redisPrefix(t)
  const config = { ...presence, redisPrefix: prefix, nodeTimeout: 1 }
  const a = await node(t, { ...config, redisUrl: REDIS_URL })
  const line = await redisLine(t)
  const b: TestApp = await node(t, { ...config, redisUrl: line.url })

  const { c: watcher } = await socket(t, a, '/ws', 'watcher')
  for (const ch of ['room:1', 'room:2', 'room:3']) t.match(await subscribe(watcher, ch), { type: 'subscribed' })
  const { c: multi, ready } = await socket(t, b, '/ws', 'doomed')
  for (const ch of ['room:1', 'room:2', 'room:3']) {
    // on Redis a joiner may hear its own join
    multi.send({ type: 'subscribe', channel: ch })
    t.match(await multi.next(f => f.type !== 'presence'), { type: 'subscribed', channel: ch })
  }
  await socket(t, b, '/ws/room:1', 'doomed')
  const { c: other } = await socket(t, b, '/ws/room:2', 'other')
  // on room:3 through both nodes: still there when one of them dies
  await socket(t, a, '/ws/room:3', 'stays')
  const { c: staysOnB } = await socket(t, b, '/ws/room:3', 'stays')
  other.send({ type: 'subscribe', channel: 'plain' })
  t.match(await other.next(f => f.type !== 'presence'), { type: 'subscribed', channel: 'plain' })
  await waitFor(() => watcher.frames.filter(f => f.type === 'presence' && f.event === 'join' && f.userId !== 'watcher').length === 5, { what: 'five joins' })
  const joins = watcher.frames.splice(0).filter(f => f.type === 'presence' && f.userId !== 'watcher').map(f => `${f.event} ${f.channel} ${f.userId}`).sort()
  t.same(joins, ['join room:1 doomed', 'join room:2 doomed', 'join room:2 other', 'join room:3 doomed', 'join room:3 stays'], 'one join per user and channel')
  const s = await a.app.gatecast.userStatus('doomed')
  t.same({ ...s, channels: sortedChannels(s) }, { userId: 'doomed', online: true, connections: 2, channels: ['room:1', 'room:2', 'room:3'] })

  // cut: no leave of its own, no reaping of itself; the sockets stay open on it, unknown to the cluster
  line.cut()
  await waitFor(async () => !(await a.app.gatecast.userStatus('doomed')).online, { ms: 6000, every: 100, what: 'the dead node reaped' })
  await waitFor(() => watcher.frames.filter(f => f.type === 'presence' && f.event === 'leave').length >= 4, { ms: 3000, what: 'four leaves' })
  const leaves = (await settle(watcher, 300)).map(f => `${f.type} ${f.event} ${f.channel} ${f.userId}`).sort()
  t.same(leaves, [
    'presence leave room:1 doomed',
    'presence leave room:2 doomed',
    'presence leave room:2 other',
    'presence leave room:3 doomed'
  ], 'one leave per user and channel, once each; none for a user still on the channel through the live node; nothing for the channel without presence')
  t.same(await a.app.gatecast.userStatus('doomed'), { userId: 'doomed', online: false, connections: 0, channels: [] })
  t.same(await a.app.gatecast.userStatus('other'), { userId: 'other', online: false, connections: 0, channels: [] })
  for (const ch of ['room:1', 'room:2']) t.same((await a.app.gatecast.presence(ch)).users, [{ userId: 'watcher', connections: 1 }], `${ch}: only the watcher`)
  const room3 = (await a.app.gatecast.presence('room:3')).users.sort((x, y) => x.userId.localeCompare(y.userId))
  t.same(room3, [{ userId: 'stays', connections: 1 }, { userId: 'watcher', connections: 1 }], 'room:3: the watcher, and stays by its socket on the live node')
  t.same(await a.app.gatecast.userStatus('stays'), { userId: 'stays', online: true, connections: 1, channels: ['room:3'] })
  t.same((await a.app.gatecast.channels()).map(ch => ch.name).sort(), ['room:1', 'room:2', 'room:3'])
  t.equal((await call(a, 'GET', `/api/connections/${enc(ready.connectionId as string)}`)).status, 404, 'a socket of the dead node is no connection of the cluster')
  for (const c of [multi, other, staysOnB]) c.ws.terminate()
})
