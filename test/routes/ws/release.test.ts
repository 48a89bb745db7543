// What an accepted upgrade leaves behind and how it goes out. An open socket
// must not keep the HTTP request that opened it alive (with thousands of idle
// sockets, the upgrade's IncomingMessage, ServerResponse and Fastify
// request/reply would be most of the memory per socket), and the 101 response
// and `ready` leave in one write (one system call per accepted connection).
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import type { WebSocket as ServerSocket } from 'ws'
import WebSocket from 'ws'
import { connect } from '../../helpers/client.ts'
import { bearer, closeAtEnd, start } from '../../helpers/ws-extra.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test('once a socket is open, its upgrade request and response can be collected', async t => {
  const a = await start(t)
  const requests: Array<WeakRef<IncomingMessage>> = []
  const responses: Array<WeakRef<object>> = []
  const sockets: ServerSocket[] = []
  a.app.websocketServer.on('connection', (ws: ServerSocket, req: IncomingMessage) => {
    sockets.push(ws)
    requests.push(new WeakRef(req))
    const res = (req.socket as unknown as { _httpMessage?: object | null })._httpMessage
    if (res != null) responses.push(new WeakRef(res))
  })
  const clients = []
  for (let i = 0; i < 5; i++) clients.push(await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: `u${i}` }))))
  closeAtEnd(t, ...clients)
  t.equal(requests.length, 5, 'five upgrades seen')
  t.equal(responses.length, 5, 'each upgrade had a ServerResponse on its TCP socket')
  // let the turn that opened them end, then collect
  await sleep(50)
  gc()
  gc()
  t.equal(requests.filter(r => r.deref() !== undefined).length, 0, 'no IncomingMessage is kept by an open socket')
  t.equal(responses.filter(r => r.deref() !== undefined).length, 0, 'no ServerResponse is kept by an open socket')
  for (const ws of sockets) t.equal(ws.listenerCount('error'), 1, 'one shared error listener per socket')
  t.equal(new Set(sockets.map(ws => ws.listeners('error')[0])).size, 1, 'the same function on every socket, no closure each')

  // the sockets still work after the release: a publish reaches all of them
  clients[0].send({ type: 'publish', data: { hello: 1 } })
  for (const c of clients) t.same((await c.nextOfType('message')).data, { hello: 1 })
  for (const c of clients) t.equal(c.ws.readyState, WebSocket.OPEN)
})

t.test('the 101 response waits, corked, for ready to join it in one write', async t => {
  const a = await start(t)
  const seen: Array<{ corked: number, pending: number, tcp: Socket }> = []
  const lateInTurn: Array<{ corked: number, pending: number }> = []
  // ws emits 'connection' right after writing the 101 head to the TCP socket
  a.app.websocketServer.on('connection', (_ws: ServerSocket, req: IncomingMessage) => {
    seen.push({ corked: req.socket.writableCorked, pending: req.socket.writableLength, tcp: req.socket })
    // queued before the transport's end-of-turn uncork, so it runs just before it
    setImmediate(() => lateInTurn.push({ corked: req.socket.writableCorked, pending: req.socket.writableLength }))
  })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  closeAtEnd(t, c)
  t.equal(c.frames[0]?.type, 'ready', 'ready arrived')
  t.equal(seen.length, 1)
  const s = seen[0]
  t.ok(s !== undefined && s.corked > 0, 'the socket was corked when the 101 was written')
  t.ok(s !== undefined && s.pending > 100, `the 101 head was held in the socket, not yet written (${s?.pending ?? 0} bytes)`)
  const late = lateInTurn[0]
  const readyBytes = 2 + Buffer.byteLength(JSON.stringify(c.frames[0]))
  t.ok(late !== undefined && late.corked > 0, 'still corked at the end of the turn')
  t.ok((late?.pending ?? 0) >= (s?.pending ?? 0) + readyBytes, `the 101 head and the whole ready frame wait together (${late?.pending ?? 0} ≥ ${s?.pending ?? 0} + ${readyBytes})`)
  await waitFor(() => s?.tcp.writableCorked === 0 && s.tcp.writableLength === 0, { ms: 2000, what: 'the socket uncorked and drained after the turn' })
  t.pass('uncorked and drained once the turn ended')
})

t.test('a since replay within the send buffer reaches a reading client whole (the upgrade cork is flushed before judging); a larger one is recovered: false', async t => {
  const a = await start(t, { wsSendBuffer: 64 * 1024, historySize: 100 })
  const chunk = 'x'.repeat(4000)
  const { id: first } = await a.app.gatecast.publish('chat', { n: 0, chunk })
  for (let n = 1; n < 15; n++) await a.app.gatecast.publish('chat', { n, chunk })
  const c = await connect(`${a.ws}/ws/chat?since=${encodeURIComponent(first)}`, bearer(a.token({ sub: 'alice' })))
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).recovered, true, '14 × 4 KB fit in 64 KB')
  for (let n = 1; n < 15; n++) t.equal((await c.nextOfType('message')).data.n, n, `replayed ${n}`)
  t.equal(c.ws.readyState, WebSocket.OPEN, 'not closed as a slow consumer')

  for (let n = 15; n < 60; n++) await a.app.gatecast.publish('chat', { n, chunk })
  const late = await connect(`${a.ws}/ws/chat?since=${encodeURIComponent(first)}`, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, late)
  t.equal((await late.nextOfType('ready')).recovered, false, '59 × 4 KB would not fit: never a partial replay, and never a 4408 for it')
  await a.app.gatecast.publish('chat', { n: 60 })
  t.equal((await late.nextOfType('message')).data.n, 60, 'live messages follow, none of the replay')
  t.equal(late.ws.readyState, WebSocket.OPEN)
})
