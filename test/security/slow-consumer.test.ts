// A member that reads as fast as it can is no slow consumer, however fast another
// member publishes: the backlog is judged over time, not by one burst.
import t from 'tap'
import WebSocket from 'ws'
import { startApp } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'
import { rawSocket, serverSockets } from '../helpers/ws-extra.ts'

t.test('100 messages of 60 KB published back to back reach a reading member whole, live and again by since', async t => {
  const a = await startApp(t, { config: { usersFile: null, historySize: 200 } })
  const reader = await connect(`${a.ws}/ws/room`, { headers: { authorization: `Bearer ${a.token({ sub: 'reader' })}` } })
  const writer = await connect(`${a.ws}/ws/room`, { headers: { authorization: `Bearer ${a.token({ sub: 'writer' })}` } })
  t.teardown(() => { reader.ws.terminate(); writer.ws.terminate() })
  const ready = await reader.nextOfType('ready')
  await writer.nextOfType('ready')
  const chunk = 'y'.repeat(60_000)
  const { id: before } = await a.app.gatecast.publish('room', { n: -1 })
  await reader.nextOfType('message')
  for (let n = 0; n < 100; n++) writer.send({ type: 'publish', data: { n, chunk } })
  const got: number[] = []
  for (let n = 0; n < 100; n++) got.push((await reader.nextOfType('message', 10_000)).data.n)
  t.same(got, [...Array(100).keys()], 'every message, in order')
  t.equal(reader.ws.readyState, WebSocket.OPEN, 'not closed as a slow consumer')
  t.type(ready.connectionId, 'string')

  // 6 MB of replay would not fit the 1 MB send buffer: recovered false, and no 4408
  const again = await connect(`${a.ws}/ws/room?since=${encodeURIComponent(before)}`, { headers: { authorization: `Bearer ${a.token({ sub: 'reader' })}` } })
  t.teardown(() => again.ws.terminate())
  t.equal((await again.nextOfType('ready')).recovered, false)
  await a.app.gatecast.publish('room', { n: 100 })
  t.equal((await again.nextOfType('message')).data.n, 100, 'live from there on')
  t.equal(again.ws.readyState, WebSocket.OPEN)
})

t.test('a reader that stalls for a moment catches up: 6 MB (past what the kernel holds, so over the 1 MB limit) is no slow consumer if drained within a second', async t => {
  const a = await startApp(t, { config: { usersFile: null } })
  const servers = serverSockets(a.app)
  const reader = await connect(`${a.ws}/ws/room`, { headers: { authorization: `Bearer ${a.token({ sub: 'reader' })}` } })
  t.teardown(() => reader.ws.terminate())
  const chunk = 'y'.repeat(60_000)
  rawSocket(reader).pause()
  const [server] = servers
  let most = 0
  for (let n = 0; n < 100; n++) {
    await a.app.gatecast.publish('room', { n, chunk })
    await new Promise(resolve => setImmediate(resolve))
    most = Math.max(most, server.bufferedAmount)
  }
  t.ok(most > 1024 * 1024, `the server's own queue passed the limit (${most} bytes)`)
  t.equal(a.app.gatecast.hub.size, 1, 'still open while stalled')
  await new Promise(resolve => setTimeout(resolve, 200))
  rawSocket(reader).resume()
  const got: number[] = []
  for (let n = 0; n < 100; n++) got.push((await reader.nextOfType('message', 10_000)).data.n)
  t.same(got, [...Array(100).keys()], 'every message once it reads again')
  t.equal(reader.ws.readyState, WebSocket.OPEN, 'not closed as a slow consumer')
})
