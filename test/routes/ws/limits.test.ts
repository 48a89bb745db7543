// Per-socket limits (contract §1 and §3): frame size → 1009, message rate →
// error rate_limited then 4429, slow consumer → 4408 with a bounded buffer.
import t from 'tap'
import WebSocket from 'ws'
import { connect } from '../../helpers/client.ts'
import {
  bearer, closeAtEnd, closedWithin, logLines, pingPong, rawSocket, serverSockets, start
} from '../../helpers/ws-extra.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

t.test('a frame larger than wsMaxPayload closes 1009; one at the limit is fine', async t => {
  const a = await start(t, { wsMaxPayload: 1024 })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  const other = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, c, other)
  await c.nextOfType('ready')

  // exactly 1024 bytes of JSON text
  const head = '{"type":"publish","ref":1,"data":"'
  const fits = head + 'x'.repeat(1024 - head.length - 2) + '"}'
  t.equal(Buffer.byteLength(fits), 1024)
  c.send(fits)
  t.equal((await c.nextOfType('ack')).ref, 1, 'a 1024-byte frame is accepted')

  c.send(JSON.stringify({ type: 'publish', data: 'x'.repeat(1100) }))
  const closed = await closedWithin(c, 3000)
  t.equal(closed.code, 1009, 'closed with 1009 (message too big)')
  await waitFor(() => logLines(a.logs, 'websocket error').some(l => typeof l.connectionId === 'string'), { ms: 2000, what: "ws's error logged with the connection id" })
  t.equal(c.frames.filter(f => f.type === 'message' && typeof f.data === 'string' && f.data.length > 1024).length, 0, 'the big frame was not published')
  await pingPong(other)
  t.equal(other.frames.filter(f => f.type === 'message').length, 1, 'the other socket only saw the frame that fit')
})

t.test('an oversized binary frame closes 1009 too', async t => {
  const a = await start(t, { wsMaxPayload: 512 })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  c.ws.send(Buffer.alloc(4096), { binary: true })
  t.equal((await closedWithin(c, 3000)).code, 1009)
})

t.test('exceeding wsMessageRate gets error rate_limited and the socket stays open', async t => {
  const a = await start(t, { wsMessageRate: 5 }) // bursts up to 10
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  for (let i = 0; i < 12; i++) c.send({ type: 'publish', data: i, ref: i })
  await waitFor(() => c.frames.filter(f => f.type === 'ack' || (f.type === 'error' && f.code === 'rate_limited')).length === 12, { ms: 3000, what: '12 answers' })
  const acks = c.frames.filter(f => f.type === 'ack')
  const limited = c.frames.filter(f => f.type === 'error')
  t.ok(acks.length >= 10 && acks.length <= 11, `burst of 2 × rate accepted (${acks.length} acks)`)
  t.equal(limited.length, 12 - acks.length, 'the rest refused')
  t.ok(limited.length >= 1, 'at least one refused')
  for (const e of limited) t.match(e, { type: 'error', code: 'rate_limited', message: String })
  t.same(acks.map(f => f.ref), acks.map((_f, i) => i), 'the first ones went through, in order')
  t.equal(c.frames.filter(f => f.type === 'message').length, acks.length, 'refused publishes were not delivered')
  // after the bucket refills, the socket is served again
  await sleep(400)
  await pingPong(c)
  t.equal(c.ws.readyState, WebSocket.OPEN)
})

t.test('publishing at the configured rate is never limited', async t => {
  const a = await start(t, { wsMessageRate: 50 })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  // 150 frames at ~40/s would exceed the burst (100) if the bucket did not refill
  for (let i = 0; i < 150; i++) {
    c.send({ type: 'publish', data: i, ref: i })
    if (i >= 90) await sleep(25)
  }
  await waitFor(() => c.frames.filter(f => f.type === 'ack' || f.type === 'error').length === 150, { ms: 5000, what: '150 answers' })
  t.equal(c.frames.filter(f => f.type === 'error').length, 0, 'no rate_limited')
  t.equal(c.frames.filter(f => f.type === 'ack').length, 150)
})

t.test('a sustained flood closes 4429', async t => {
  const a = await start(t, { wsMessageRate: 5 })
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'flooder' })))
  const other = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'calm' })))
  closeAtEnd(t, c, other)
  await c.nextOfType('ready')
  for (let i = 0; i < 60; i++) c.send({ type: 'publish', data: i })
  const closed = await closedWithin(c, 3000)
  t.equal(closed.code, 4429, 'closed 4429')
  t.ok(c.frames.some(f => f.type === 'error' && f.code === 'rate_limited'), 'warned with rate_limited first')
  const delivered = c.frames.filter(f => f.type === 'message').length
  t.ok(delivered <= 11, `at most the burst was delivered (${delivered})`)
  await pingPong(other)
  await waitFor(() => logLines(a.logs, 'socket closed').some(l => l.code === 4429 && l.userId === 'flooder'), { ms: 2000, what: 'socket closed log with 4429' })
})

t.test('slow consumer: a socket that stops reading is closed 4408, its buffer stays bounded', async t => {
  const sendBuffer = 65536
  const a = await start(t, { wsSendBuffer: sendBuffer })
  const server = serverSockets(a.app)
  const slow = await connect(`${a.ws}/ws/firehose`, bearer(a.token({ sub: 'slow' })))
  const fast = await connect(`${a.ws}/ws/firehose`, bearer(a.token({ sub: 'fast' })))
  closeAtEnd(t, slow, fast)
  t.equal(server.length, 2)
  const [slowServer, fastServer] = server

  rawSocket(slow).pause() // stops reading: the kernel buffers fill, then the server's
  const big = 'z'.repeat(32 * 1024)
  const frameSize = big.length + 200
  let published = 0
  let maxSlow = 0
  let maxFast = 0
  for (; published < 3000 && a.app.gatecast.hub.size === 2; published++) {
    await a.app.gatecast.publish('firehose', { n: published, big })
    maxSlow = Math.max(maxSlow, slowServer.bufferedAmount)
    maxFast = Math.max(maxFast, fastServer.bufferedAmount)
    await new Promise(resolve => setImmediate(resolve))
  }
  t.equal(a.app.gatecast.hub.size, 1, `one socket was dropped (after ${published} messages of 32 KiB)`)
  t.equal(slowServer.readyState, WebSocket.CLOSING, 'it is the slow one, closing')
  t.equal(fastServer.readyState, WebSocket.OPEN, 'the reading one is open')
  // over the limit for a second, or four times over it at once: the hard bound on what one socket holds
  t.ok(maxSlow <= 4 * sendBuffer + frameSize, `server buffer for the slow socket stayed bounded (max ${maxSlow} bytes)`)
  t.ok(maxFast <= sendBuffer, `the reading socket never came close (max ${maxFast} bytes)`)
  // nothing more is queued to it once it is dropped
  const after = slowServer.bufferedAmount
  for (let i = 0; i < 20; i++) await a.app.gatecast.publish('firehose', { n: published + i, big })
  t.ok(slowServer.bufferedAmount <= after, 'no more frames queued to the dropped socket')
  published += 20

  // the reader got everything and stays open
  await waitFor(() => fast.frames.filter(f => f.type === 'message').length === published, { ms: 10_000, what: 'fast socket got every message' })
  const ns = fast.frames.filter(f => f.type === 'message').map(f => f.data.n)
  t.same(ns, Array.from({ length: published }, (_v, i) => i), 'fast socket: every message, in order')
  await pingPong(fast)

  // the slow client, once it reads again, sees what was queued and then 4408
  rawSocket(slow).resume()
  const closed = await closedWithin(slow, 10_000)
  t.equal(closed.code, 4408, 'slow client sees close 4408')
  const got = slow.frames.filter(f => f.type === 'message').map(f => f.data.n)
  t.ok(got.length < published, `slow client got a prefix (${got.length} of ${published})`)
  t.same(got, Array.from({ length: got.length }, (_v, i) => i), 'what it got is a gap-free prefix')
  await waitFor(() => logLines(a.logs, 'socket closed').some(l => l.code === 4408 && l.userId === 'slow'), { ms: 3000, what: 'socket closed log with 4408' })
})
