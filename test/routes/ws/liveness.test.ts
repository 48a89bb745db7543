// Liveness and shutdown (contract §3): server pings, dead peers terminated,
// app.close() closes every socket with 1001.
import t from 'tap'
import WebSocket from 'ws'
import { Client, connect } from '../../helpers/client.ts'
import { bearer, closeAtEnd, closedWithin, pingPong, start } from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'

t.test('dead peer: no pong within one ping interval → terminated', async t => {
  const a = await start(t, { wsPingInterval: 1 })
  const started = Date.now()
  // the ping listener is on before the socket opens, so no ping goes uncounted
  const deadWs = new WebSocket(`${a.ws}/ws/chat`, { ...bearer(a.token({ sub: 'dead' })), autoPong: false })
  let pings = 0
  deadWs.on('ping', () => { pings++ })
  const dead = new Client(deadWs)
  const alive = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alive' })))
  closeAtEnd(t, dead, alive)
  t.equal((await dead.nextOfType('ready')).userId, 'dead')
  const closed = await closedWithin(dead, 4000)
  t.equal(closed.code, 1006, 'terminated without a close frame')
  t.ok(pings >= 1, `the server pinged first (${pings})`)
  t.ok(Date.now() - started <= 3500, `within ~2–3 s (${Date.now() - started} ms)`)
  // the socket that answers pings is kept
  await pingPong(alive)
  t.equal(alive.ws.readyState, WebSocket.OPEN)
  await waitFor(() => a.app.gatecast.hub.size === 1, { ms: 2000, what: 'hub forgot the dead socket' })
  t.equal((await a.app.gatecast.userStatus('dead')).connections, 0, 'dead user has no connections')
})

t.test('a peer that answers pings survives several intervals', async t => {
  const a = await start(t, { wsPingInterval: 1 })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  closeAtEnd(t, c)
  let pings = 0
  c.ws.on('ping', () => { pings++ })
  await waitFor(() => pings >= 3, { ms: 5000, what: 'three server pings' })
  await pingPong(c)
  t.equal(c.ws.readyState, WebSocket.OPEN)
})

t.test('app.close() closes open sockets with 1001', async t => {
  const a = await start(t)
  const clients = []
  for (let i = 0; i < 5; i++) clients.push(await connect(`${a.ws}/ws/${i % 2 === 0 ? 'a' : 'b'}`, bearer(a.token({ sub: `u${i}` }))))
  closeAtEnd(t, ...clients)
  const started = Date.now()
  await a.app.close()
  t.ok(Date.now() - started < 5000, 'close did not wait for the deadline')
  for (const [i, c] of clients.entries()) {
    const closed = await closedWithin(c, 2000)
    t.equal(closed.code, 1001, `client ${i} closed 1001`)
  }
  t.equal(a.app.gatecast.hub.size, 0)
})
