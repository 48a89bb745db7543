// The direct-write fast path (src/transport/ws.ts) is taken with the installed
// ws: WsTransport writes ready-made frames to the TCP socket only while ws's
// private fields look as it expects, and falls back to ws.send otherwise, which
// is correct but slower and silent. Over a real socket, this proves deliveries
// reach the TCP socket as the frames the hub built without passing through
// ws.send, so a ws release that renames those fields fails here.
import type { Socket } from 'node:net'
import t from 'tap'
import { trackConnections, wsOf } from '../../helpers/client-lib.ts'
import { connect, type Frame } from '../../helpers/client.ts'
import { bearer, closeAtEnd, start } from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'
import type { WsTransport } from '../../../src/transport/ws.ts'

/** The text frames (FIN, opcode 1, unmasked) among what was written to a socket, as parsed JSON. */
function textFrames (chunks: Buffer[]): Frame[] {
  const out: Frame[] = []
  for (const chunk of chunks) {
    if (chunk[0] !== 0x81) continue
    const len = chunk[1] & 0x7f
    const start = len < 126 ? 2 : len === 126 ? 4 : 10
    const size = len < 126 ? len : len === 126 ? chunk.readUInt16BE(2) : Number(chunk.readBigUInt64BE(2))
    // one write, one whole frame: the transport writes each frame as the hub built it
    if (chunk.length !== start + size) continue
    out.push(JSON.parse(chunk.subarray(start).toString()) as Frame)
  }
  return out
}

t.test('frames go straight to the TCP socket, never through ws.send', async t => {
  const a = await start(t)
  const conns = trackConnections(a.app)
  // the server's side of each upgrade, as Node hands it over before ws sees it
  const written: Buffer[] = []
  a.app.server.on('upgrade', (_req, tcp: Socket) => {
    const write = tcp.write.bind(tcp) as (chunk: unknown, ...rest: unknown[]) => boolean
    tcp.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (Buffer.isBuffer(chunk)) written.push(chunk)
      return write(chunk, ...rest)
    }) as Socket['write']
  })

  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  closeAtEnd(t, c)
  await waitFor(() => conns.open('alice').length === 1, { what: 'the server-side session' })
  const session = conns.open('alice')[0]
  const transport = session.transport as WsTransport
  const ws = wsOf(session)
  t.equal(transport.ws, ws)
  t.equal(transport.direct, true, 'the fast path is available with this ws: its internals look as expected')
  t.equal(ws.extensions, '', 'no permessage-deflate (it would rule the fast path out)')

  const ready = c.frames.find(f => f.type === 'ready')
  t.ok(ready)
  t.same(textFrames(written).find(f => f.type === 'ready'), ready, '`ready` was written to the TCP socket as one ready-made frame')

  let sends = 0
  const send = ws.send.bind(ws)
  ws.send = ((...args: Parameters<typeof send>) => {
    sends++
    send(...args)
  }) as typeof ws.send
  written.length = 0

  // a 7-bit, a 16-bit and a 64-bit payload length, from the server API and from a client
  await a.app.gatecast.publish('chat', { n: 1 })
  await a.app.gatecast.publish('chat', { n: 2, pad: 'x'.repeat(1000) })
  await a.app.gatecast.publish('chat', { n: 3, pad: 'y'.repeat(70_000) })
  c.send({ type: 'publish', data: { n: 4 }, ref: 'r4' })
  await waitFor(() => c.frames.filter(f => f.type === 'message').length === 4 && c.frames.some(f => f.type === 'ack'), { what: 'four messages and the ack' })

  const received = c.frames.filter(f => f.type === 'message' || f.type === 'ack')
  t.same(received.filter(f => f.type === 'message').map(f => f.data.n), [1, 2, 3, 4])
  t.equal(sends, 0, 'ws.send was never called: no write fell back to ws')
  t.same(textFrames(written), received, 'every delivery and the ack left as one direct write of the frame the client got')
  t.equal(ws.bufferedAmount, 0, 'nothing left behind in ws or the socket')
  t.equal(transport.direct, true, 'still direct after the traffic')
})
