// The per-connection routes of the server API (contract §4; GatewayWorker's
// joinGroup by client id, sendToClient, closeClient) and their decorator
// operations, on one node of each engine: they reach that one socket and no
// other, and answer 404 connection_not_found for an id no node has (never
// was, or closed). Calls from a node that does not hold the socket are in
// ../engine/cluster-subscriptions.test.ts.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { api, type TestApp } from '../helpers/app.ts'
import { bearerOf, call, cluster, node, settle, socket, subscribe } from '../helpers/multi.ts'
import { closedWithin } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

async function oneNode (t: Test, engine: string, config: ConfigOverrides = {}): Promise<TestApp> {
  if (engine === 'memory') return node(t, config)
  const [a] = await cluster(t, 1, config)
  return a
}

const enc = encodeURIComponent

function notFound (t: Test, res: { status: number, body: any }, label: string): void {
  t.equal(res.status, 404, `${label}: 404`)
  t.same(res.body, { statusCode: 404, error: 'Not Found', code: 'connection_not_found', message: res.body?.message }, `${label}: the error shape, code connection_not_found`)
  t.type(res.body?.message, 'string')
}

/** Every per-connection route for one id: all must say 404. */
async function allNotFound (t: Test, a: TestApp, id: string, label: string): Promise<void> {
  notFound(t, await call(a, 'GET', `/api/connections/${enc(id)}`), `${label} GET`)
  notFound(t, await call(a, 'POST', `/api/connections/${enc(id)}/channels/x`), `${label} POST channel`)
  notFound(t, await call(a, 'DELETE', `/api/connections/${enc(id)}/channels/x`), `${label} DELETE channel`)
  notFound(t, await call(a, 'POST', `/api/connections/${enc(id)}/messages`, { data: 1 }), `${label} POST message`)
  notFound(t, await call(a, 'DELETE', `/api/connections/${enc(id)}`), `${label} DELETE`)
}

for (const engine of ['memory', 'redis']) {
  t.test(`${engine}: GET /api/connections/:id describes the socket; subscribe, unsubscribe and a direct frame reach that socket alone`, async t => {
    const a = await oneNode(t, engine)
    const before = Date.now()
    const { c, ready } = await socket(t, a, '/ws/chat', 'alice')
    const { c: twin } = await socket(t, a, '/ws/chat', 'alice')
    const id = ready.connectionId as string
    if (engine === 'redis') t.match(id, /^[A-Za-z0-9_-]+\.[0-9a-f-]{36}$/, 'a Redis connection id names its node: <nodeId>.<uuid>')

    const info = await call(a, 'GET', `/api/connections/${enc(id)}`)
    t.equal(info.status, 200)
    t.same(Object.keys(info.body).sort(), ['channels', 'connectionId', 'openedAt', 'userId'])
    t.match(info.body, { connectionId: id, userId: 'alice', channels: ['chat'] })
    t.ok(info.body.openedAt >= before - 1000 && info.body.openedAt <= Date.now(), 'openedAt: ms since the epoch, when it opened')

    const sub = await call(a, 'POST', `/api/connections/${enc(id)}/channels/${enc('dm#bob')}`)
    t.equal(sub.status, 202)
    t.same(sub.body, { status: 'accepted' })
    t.same(await c.next(), { type: 'subscribed', channel: 'dm#bob', by: 'server' }, 'subscribed by the server, even to a channel alice could not join herself')
    t.same((await call(a, 'GET', `/api/connections/${enc(id)}`)).body.channels.sort(), ['chat', 'dm#bob'])
    const { id: msgId } = await a.app.gatecast.publish('dm#bob', 'for the one socket')
    t.match(await c.next(), { type: 'message', channel: 'dm#bob', id: msgId })

    const direct = await call(a, 'POST', `/api/connections/${enc(id)}/messages`, { data: { to: 'one' } })
    t.equal(direct.status, 202)
    t.same(direct.body, { status: 'accepted' })
    t.match(await c.next(), { type: 'direct', from: null, data: { to: 'one' }, id: String, ts: Number })
    t.same(await settle(twin), [], 'the other socket of the same user got none of it')

    const unsub = await call(a, 'DELETE', `/api/connections/${enc(id)}/channels/${enc('dm#bob')}`)
    t.equal(unsub.status, 202)
    t.same(await c.next(), { type: 'unsubscribed', channel: 'dm#bob', reason: 'server' })
    await a.app.gatecast.publish('dm#bob', 'gone')
    t.equal((await call(a, 'DELETE', `/api/connections/${enc(id)}/channels/chat`)).status, 202, 'the path channel too')
    t.same(await c.next(), { type: 'unsubscribed', channel: 'chat', reason: 'server' })
    t.equal((await call(a, 'DELETE', `/api/connections/${enc(id)}/channels/never`)).status, 202, 'a channel it does not have: still answered')
    t.same(await c.next(), { type: 'unsubscribed', channel: 'never', reason: 'server' })
    await a.app.gatecast.publish('chat', 'for the twin only')
    t.match(await twin.next(), { type: 'message', data: 'for the twin only' })
    t.same(await settle(c), [], 'nothing of the channels it left')
    t.match((await call(a, 'GET', `/api/connections/${enc(id)}`)).body, { channels: [] })
    t.equal(c.ws.readyState, WebSocket.OPEN)
  })

  t.test(`${engine}: DELETE /api/connections/:id closes that socket 4403; afterwards, and for ids no node has, every per-connection route is 404`, async t => {
    const a = await oneNode(t, engine)
    const { c, ready } = await socket(t, a, '/ws', 'alice')
    const { c: twin } = await socket(t, a, '/ws', 'alice')
    const id = ready.connectionId as string
    const res = await call(a, 'DELETE', `/api/connections/${enc(id)}`)
    t.equal(res.status, 202)
    t.same(res.body, { status: 'accepted' })
    t.equal((await closedWithin(c, 2000)).code, 4403)
    await waitFor(async () => (await a.app.gatecast.userStatus('alice')).connections === 1, { what: 'one socket left' })
    t.equal(twin.ws.readyState, WebSocket.OPEN, 'the other socket of the user stays')
    await allNotFound(t, a, id, 'closed socket')

    await allNotFound(t, a, 'no-such-connection', 'never was')
    await allNotFound(t, a, '00000000-0000-0000-0000-000000000000', 'a uuid')
    if (engine === 'redis') {
      const node = id.slice(0, id.indexOf('.'))
      await allNotFound(t, a, `${node}.00000000-0000-0000-0000-000000000000`, 'this node, unknown socket')
      await allNotFound(t, a, 'deadnode.00000000-0000-0000-0000-000000000000', 'a node that does not exist')
    }
    t.equal((await call(a, 'GET', '/api/connections/bad%20id')).status, 400, 'an id that cannot be one: 400')
    t.same(await settle(twin), [], 'none of the failed calls reached another socket')
  })

  t.test(`${engine}: the decorator's per-connection operations answer as the routes do`, async t => {
    const a = await oneNode(t, engine, { wsChannelsPerSocket: 2 })
    let hookCalls = 0
    a.app.gatecast.onSubscribe(() => { hookCalls++; throw new GatecastError(403, 'no', 'clients may not subscribe here') })
    const { c, ready } = await socket(t, a, '/ws', 'alice')
    const id = ready.connectionId as string
    const g = a.app.gatecast
    t.match(await g.connection(id), { connectionId: id, userId: 'alice', channels: [] })
    t.equal(await g.connection('nope'), null)
    t.equal(await g.subscribeConnection(id, 'one'), true)
    t.same(await c.next(), { type: 'subscribed', channel: 'one', by: 'server' })
    t.equal(hookCalls, 0, 'onSubscribe is for clients')
    t.equal(await g.subscribeConnection(id, 'two'), true)
    t.same(await c.next(), { type: 'subscribed', channel: 'two', by: 'server' })
    t.equal(await g.subscribeConnection(id, 'three'), true, 'the call reached the socket…')
    const full = await c.next()
    t.match(full, { type: 'error', code: 'too_many_channels', channel: 'three', message: String }, '…which is full: the channel limit holds for the server too')
    t.notOk('ref' in full, 'no ref: no client asked')
    t.equal(await g.subscribeConnection('nope', 'one'), false)
    t.equal(await g.unsubscribeConnection(id, 'two'), true)
    t.same(await c.next(), { type: 'unsubscribed', channel: 'two', reason: 'server' })
    t.equal(await g.unsubscribeConnection('nope', 'two'), false)
    t.equal(await g.sendToConnection(id, [1, 2]), true)
    t.match(await c.next(), { type: 'direct', data: [1, 2], from: null })
    t.equal(await g.sendToConnection('nope', 1), false)
    const bad = await g.subscribeConnection(id, 'bad name').then(() => null, (err: unknown) => err)
    t.match(bad, { statusCode: 400 }, 'a bad channel name is refused before any node is asked')
    t.equal(await g.disconnectConnection('nope'), false)
    t.equal(await g.disconnectConnection(id), true)
    t.equal((await closedWithin(c, 2000)).code, 4403)
    t.equal(await g.connection(id), null)
    t.equal(await g.sendToConnection(id, 1), false)
  })
}

t.test('the per-connection routes need credentials: 401 without, 403 with a token that is not admin', async t => {
  const a = await node(t)
  const { ready } = await socket(t, a, '/ws', 'alice')
  const id = enc(ready.connectionId as string)
  const user = bearerOf(a.token({ sub: 'alice' }))
  const admin = bearerOf(a.token({ sub: 'root', roles: ['admin'] }))
  for (const [method, path, body] of [
    ['GET', `/api/connections/${id}`, undefined],
    ['POST', `/api/connections/${id}/channels/x`, undefined],
    ['DELETE', `/api/connections/${id}/channels/x`, undefined],
    ['POST', `/api/connections/${id}/messages`, { data: 1 }],
    ['POST', '/api/users/alice/channels/x', undefined],
    ['DELETE', '/api/users/alice/channels/x', undefined],
    ['DELETE', `/api/connections/${id}`, undefined]
  ] as const) {
    t.equal((await api(a.base, method, path, body === undefined ? {} : { body })).status, 401, `${method} ${path}: 401 without credentials`)
    t.equal((await api(a.base, method, path, { ...user, ...(body === undefined ? {} : { body }) })).status, 403, `${method} ${path}: 403 for a user`)
  }
  t.equal((await api(a.base, 'GET', `/api/connections/${id}`, admin)).status, 200, 'an admin token will do instead of the key')
  t.equal((await api(a.base, 'DELETE', `/api/connections/${id}`, admin)).status, 202)
})

t.test('GET /api/connections/:id lists every channel the socket is subscribed to, however it got them', async t => {
  const a = await node(t)
  const { c, ready } = await socket(t, a, '/ws/path', 'alice')
  const id = enc(ready.connectionId as string)
  t.match(await subscribe(c, 'by-client'), { type: 'subscribed', by: 'client' })
  t.equal((await call(a, 'POST', '/api/users/alice/channels/by-user-call')).status, 202)
  t.match(await c.next(), { type: 'subscribed', channel: 'by-user-call', by: 'server' })
  t.equal((await call(a, 'POST', `/api/connections/${id}/channels/by-connection-call`)).status, 202)
  t.match(await c.next(), { type: 'subscribed', channel: 'by-connection-call', by: 'server' })
  const info = await call(a, 'GET', `/api/connections/${id}`)
  t.same(info.body.channels.sort(), ['by-client', 'by-connection-call', 'by-user-call', 'path'])
  const status = await call(a, 'GET', '/api/users/alice')
  t.same(status.body.channels.sort(), ['by-client', 'by-connection-call', 'by-user-call', 'path'], 'the user status agrees')
  t.equal(status.body.connections, 1)
})
