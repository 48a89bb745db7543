// An open socket must not keep the HTTP request that opened it alive: with
// thousands of idle sockets, the upgrade's IncomingMessage, ServerResponse and
// Fastify request/reply would be most of the memory per socket.
import type { IncomingMessage } from 'node:http'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import type { WebSocket as ServerSocket } from 'ws'
import WebSocket from 'ws'
import { connect } from '../../helpers/client.ts'
import { bearer, closeAtEnd, start } from '../../helpers/ws-extra.ts'

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
  await new Promise(resolve => setTimeout(resolve, 50))
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
