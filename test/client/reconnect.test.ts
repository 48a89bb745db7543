// Reconnects: a socket dropped mid-stream resumes with `since` and loses or
// repeats nothing; close codes decide between reconnecting and stopping.
import { createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { startApp, api } from '../helpers/app.ts'
import { connect, type TokenReason } from '../../client/index.ts'
import { record, terminate, trackConnections, wsOf } from '../helpers/client-lib.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const fast = { initial: 50, max: 200 }

t.test('dropped mid-stream (1006) while messages keep coming: every message exactly once, in order', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null, historySize: 5000 } })
  const conns = trackConnections(app)
  const reasons: TokenReason[] = []
  const client = connect({ url: ws, channel: 'stream', WebSocket, backoff: fast, getToken: ({ reason }) => { reasons.push(reason); return token({ sub: 'alice' }) } })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')

  const total = 600
  const drops = [100, 250, 400]
  for (let i = 0; i < total; i++) {
    if (drops.includes(i)) {
      await waitFor(() => client.state === 'open' && conns.open('alice').length === 1, { ms: 5000, what: `open again before drop at ${i}` })
      const open = conns.open('alice')
      t.equal(open.length, 1, `one server socket before drop at ${i}`)
      terminate(open)
    }
    await app.gatecast.publish('stream', { n: i })
    if (i % 10 === 0) await sleep(5)
  }
  await waitFor(() => rec.messages.length >= total, { ms: 10_000, what: () => `all ${total} messages (have ${rec.messages.length})` })
  await sleep(100)
  const ns = rec.messages.map(m => (m.data as { n: number }).n)
  t.equal(ns.length, total, 'no duplicates')
  t.same(ns, Array.from({ length: total }, (_, i) => i), 'every message, in order')
  t.equal(new Set(rec.messages.map(m => m.id)).size, total, 'distinct ids')
  t.equal(client.lastId, rec.messages.at(-1)?.id)

  const reconnecting = rec.states.filter(s => s.state === 'reconnecting')
  const reopened = rec.states.filter(s => s.state === 'open').slice(1)
  t.ok(reconnecting.length >= drops.length, `reconnected after each drop (${reconnecting.length})`)
  t.ok(reconnecting.every(s => s.code === 1006), 'the client saw 1006')
  t.ok(reopened.length >= drops.length, 'opened again each time')
  t.ok(reopened.every(s => s.recovered === true), 'each resume reports recovered: true')
  // a retry after an attempt that failed before `ready` (attempt ≥ 2: a loaded machine can
  // refuse or drop one) asks for a fresh token by design; a retry after a ready socket
  // dropped reuses the still valid one
  const retries = reconnecting.filter(s => (s.attempt ?? 1) >= 2).length
  t.same(reasons, ['connect', ...Array(retries).fill('reconnect')], `the token was reused after each drop: it was still valid (states ${JSON.stringify(rec.states.map(s => [s.state, s.attempt, s.code, s.reason]))}, errors ${JSON.stringify(rec.errors)})`)
  t.equal(client.state, 'open')
})

t.test('a publish in flight when the socket drops is rejected; one queued while reconnecting is sent after', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null } })
  const conns = trackConnections(app)
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: { initial: 300, max: 300 }, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  // the publish is written to the socket, and the socket dies before the ack comes back
  const inflight = client.publish('in flight')
  terminate(conns.open('alice'))
  const err = await inflight.then(() => null, (e: { code?: string }) => e)
  t.ok(err === null || err.code === 'connection_lost', `in flight: ${err === null ? 'acked before the drop' : err.code}`)
  await rec.nextState('reconnecting')
  const queued = client.publish('queued')
  const id = await queued
  t.type(id, 'string', 'queued publish sent after reconnecting')
  await waitFor(() => rec.messages.some(m => m.data === 'queued'), { ms: 3000, what: 'the queued message' })
})

t.test('4403 (disconnected by the server) stops: state closed, no reconnect', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null } })
  let calls = 0
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: fast, getToken: () => { calls++; return token({ sub: 'alice' }) } })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  await app.gatecast.disconnectUser('alice')
  const closed = await rec.nextState('closed')
  t.equal(closed.code, 4403)
  await sleep(600)
  t.equal(client.state, 'closed')
  t.equal(calls, 1, 'no new token asked for')
  t.notOk(rec.states.some(s => s.state === 'reconnecting'), 'never reconnecting')
  t.equal(app.gatecast.hub.size, 0, 'no socket on the server')
  const err = await client.publish('x').then(() => null, (e: { code?: string }) => e)
  t.equal(err?.code, 'closed')
})

t.test('4401 (token revoked) gets a new token and reconnects, resuming with since', async t => {
  const { app, base, ws, token } = await startApp(t, { config: { usersFile: null } })
  const issued: string[] = []
  const reasons: TokenReason[] = []
  const client = connect({
    url: ws,
    channel: 'chat',
    WebSocket,
    backoff: fast,
    getToken: async ({ reason }) => {
      reasons.push(reason)
      const tok = token({ sub: 'alice' })
      issued.push(tok)
      return tok
    }
  })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  await app.gatecast.publish('chat', 'before')
  await waitFor(() => rec.messages.length === 1, { ms: 2000, what: 'first message' })
  // logging out revokes the access token by jti: its socket is closed with 4401
  const res = await api(base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${issued[0]}` } })
  t.equal(res.status, 204)
  const down = await rec.nextState('reconnecting')
  t.equal(down.code, 4401)
  const back = await rec.nextState('open')
  t.equal(back.recovered, true)
  t.same(reasons, ['connect', 'expired'], 'a new token was asked for because of the 4401')
  t.equal(issued.length, 2)
  await app.gatecast.publish('chat', 'after')
  await waitFor(() => rec.messages.length === 2, { ms: 2000, what: 'second message' })
  t.same(rec.messages.map(m => m.data), ['before', 'after'])
})

t.test('1009 (frame too large) stops', async t => {
  const { ws, token } = await startApp(t, { config: { usersFile: null, wsMaxPayload: 1024 } })
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: fast, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  const err = await client.publish('x'.repeat(4096)).then(() => null, (e: { code?: string }) => e)
  t.equal(err?.code, 'connection_lost')
  const closed = await rec.nextState('closed')
  t.equal(closed.code, 1009)
  await sleep(300)
  t.notOk(rec.states.some(s => s.state === 'reconnecting'))
})

t.test('1001 (server shutting down) and a refused upgrade back off and retry', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null } })
  let calls = 0
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: fast, getToken: () => { calls++; return token({ sub: 'alice' }) } })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  await app.close()
  const down = await rec.nextState('reconnecting')
  t.equal(down.code, 1001)
  t.equal(down.attempt, 1)
  // the server is gone: attempts keep failing, with growing attempt numbers
  await waitFor(() => rec.states.filter(s => s.state === 'reconnecting').length >= 3, { ms: 5000, what: 'more attempts' })
  const attempts = rec.states.filter(s => s.state === 'reconnecting').map(s => s.attempt)
  t.same(attempts.slice(0, 3), [1, 2, 3])
  t.ok(rec.states.every(s => s.delay === undefined || s.delay <= fast.max), 'delays within the cap')
  t.ok(calls >= 2, 'after a failed attempt a fresh token is asked for')
  client.close()
  t.equal(client.state, 'closed')
  const n = rec.states.length
  await sleep(400)
  t.equal(rec.states.length, n, 'nothing after close()')
})

t.test('reconnect() drops the socket and resumes at once', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null } })
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: { initial: 10_000, max: 10_000 }, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  const first = await rec.nextState('open')
  await app.gatecast.publish('chat', 1)
  await waitFor(() => rec.messages.length === 1, { ms: 2000, what: 'message' })
  client.reconnect()
  const again = await rec.nextState('open', 2000)
  t.not(again.ready?.connectionId, first.ready?.connectionId, 'a new connection')
  t.equal(again.recovered, true)
  await app.gatecast.publish('chat', 2)
  await waitFor(() => rec.messages.length === 2, { ms: 2000, what: 'second message' })
  t.same(rec.messages.map(m => m.data), [1, 2])
})

t.test('a heartbeat without an answer counts as a dead connection', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null } })
  const conns = trackConnections(app)
  const client = connect({ url: ws, channel: 'chat', WebSocket, backoff: fast, heartbeat: { interval: 100, timeout: 200 }, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  await sleep(400)
  t.notOk(rec.states.some(s => s.state === 'reconnecting'), 'pongs keep it open')
  // the server stops answering: its socket stops reading, as on a half-open TCP connection
  const [conn] = conns.open('alice')
  ;(wsOf(conn) as unknown as { _socket: { pause: () => void } })._socket.pause()
  const down = await rec.nextState('reconnecting', 2000)
  t.equal(down.code, 1006)
  t.equal(down.reason, 'heartbeat timeout')
  await rec.nextState('open', 3000)
  wsOf(conn).terminate()
})

t.test('a handshake that hangs times out and is retried; close() while connecting is clean', async t => {
  // a server that accepts TCP connections and never answers
  const sockets: Socket[] = []
  const silent = createServer(s => { sockets.push(s) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const { port } = silent.address() as AddressInfo
  const client = connect({ url: `ws://127.0.0.1:${port}`, channel: 'chat', WebSocket, connectTimeout: 150, backoff: fast, getToken: () => 'not-checked' })
  const rec = record(client)
  const down = await rec.nextState('reconnecting', 2000)
  t.equal(down.reason, 'connect timeout')
  t.equal(down.code, 1006)
  await waitFor(() => sockets.length >= 2, { ms: 2000, what: 'a second attempt' })
  // the second attempt is still in its handshake: closing must not throw (ws emits an error on abort)
  client.close()
  t.equal(client.state, 'closed')
  await sleep(100)
  t.equal(rec.states.at(-1)?.state, 'closed')
})
