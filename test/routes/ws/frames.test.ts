// Frames both ways (contract §3): `ready` first, ping/pong, acks, and the
// handling of bad client frames (error bad_request, socket stays open; 50 in
// a row close 1008).
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { connect, type Client } from '../../helpers/client.ts'
import { bearer, closeAtEnd, closedWithin, nowSec, open, pingPong, signJwt, start } from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'

async function badRequest (t: Test, c: Client, frame: string | Buffer, label: string, ref?: unknown): Promise<void> {
  c.ws.send(frame, { binary: Buffer.isBuffer(frame) })
  const err = await c.nextOfType('error')
  t.equal(err.code, 'bad_request', `${label}: bad_request`)
  t.type(err.message, 'string', `${label}: has a message`)
  if (ref === undefined) t.notOk('ref' in err, `${label}: no ref`)
  else t.same(err.ref, ref, `${label}: ref echoed`)
  t.equal(c.ws.readyState, WebSocket.OPEN, `${label}: socket still open`)
  await pingPong(c)
}

t.test('ready is the first frame, with channel, connectionId, userId, expiresAt', async t => {
  const a = await start(t)
  const exp = nowSec() + 900
  const tok = signJwt({ sub: 'alice', exp, jti: 'j1' })
  // the channel is busy while we join: ready must still come before any message
  const pumping = { on: true }
  const pump = (async () => {
    let n = 0
    while (pumping.on) {
      await a.app.gatecast.publish('busy', { n: n++ })
      // frames that reach a socket outside its channel must wait for ready too
      await a.app.gatecast.sendToUser('alice', { n })
      await a.app.gatecast.broadcast({ n })
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  t.teardown(() => { pumping.on = false })
  const c = await open(`${a.ws}/ws/busy`, bearer(tok))
  const c2 = await open(`${a.ws}/ws/busy`, bearer(signJwt({ sub: 'bob', exp })))
  closeAtEnd(t, c, c2)
  await waitFor(() => c.frames.some(f => f.type === 'message') && c.frames.some(f => f.type === 'direct') &&
    c2.frames.some(f => f.type === 'message') && c2.frames.some(f => f.type === 'direct'), { ms: 3000, what: 'messages and directs after ready' })
  pumping.on = false
  await pump
  for (const [who, cl] of [['alice', c], ['bob', c2]] as const) {
    const first = cl.frames[0]
    t.equal(first.type, 'ready', `${who}: first frame is ready`)
    t.equal(cl.frames.filter(f => f.type === 'ready').length, 1, `${who}: exactly one ready`)
    t.equal(first.channel, 'busy')
    t.equal(first.userId, who)
    t.equal(first.expiresAt, exp, `${who}: expiresAt is the token exp`)
    t.type(first.connectionId, 'string')
    t.ok(first.connectionId.length > 0)
    t.notOk('recovered' in first, `${who}: no recovered without since`)
  }
  t.not(c.frames[0].connectionId, c2.frames[0].connectionId, 'connection ids differ')
})

t.test('ready.expiresAt is null for a token without exp', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ sub: 'alice' })))
  closeAtEnd(t, c)
  const ready = await c.nextOfType('ready')
  t.equal(ready.expiresAt, null)
  t.equal(ready.userId, 'alice')
})

t.test('ping gets pong, repeatedly', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  for (let i = 0; i < 5; i++) c.send({ type: 'ping' })
  for (let i = 0; i < 5; i++) t.same(await c.nextOfType('pong'), { type: 'pong' })
})

t.test('bad frames get error bad_request and the socket stays open', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  await badRequest(t, c, '{not json', 'invalid JSON')
  await badRequest(t, c, '', 'empty text')
  await badRequest(t, c, '"ping"', 'a JSON string')
  await badRequest(t, c, 'null', 'null')
  await badRequest(t, c, '[{"type":"ping"}]', 'an array')
  await badRequest(t, c, '{}', 'no type')
  await badRequest(t, c, '{"type":"join","channel":"x"}', 'unknown type')
  await badRequest(t, c, '{"type":"PING"}', 'type is case-sensitive')
  await badRequest(t, c, '{"type":"join","ref":"r1"}', 'unknown type keeps the ref', 'r1')
  await badRequest(t, c, '{"type":"subscribe","ref":"r2"}', 'subscribe without a channel keeps the ref', 'r2')
  await badRequest(t, c, '{"type":"unsubscribe","channel":7}', 'unsubscribe with a channel that is no string')
  await badRequest(t, c, '{"type":"publish"}', 'publish without data')
  await badRequest(t, c, '{"type":"publish","ref":7}', 'publish without data, with ref', 7)
  await badRequest(t, c, '{"type":"publish","data":1,"ref":{"a":1}}', 'ref an object')
  await badRequest(t, c, '{"type":"publish","data":1,"ref":[1]}', 'ref an array')
  await badRequest(t, c, '{"type":"publish","data":1,"ref":true}', 'ref a boolean')
  await badRequest(t, c, JSON.stringify({ type: 'publish', data: 1, ref: 'x'.repeat(257) }), 'ref too long', 'x'.repeat(257))
  await badRequest(t, c, '{"type":"publish","data":1,"extra":true,"ref":"e"}', 'unknown field', 'e')
  await badRequest(t, c, '{"type":"ping","x":1}', 'ping with a field')
  await badRequest(t, c, '{"type":"refresh"}', 'refresh without token')
  await badRequest(t, c, '{"type":"refresh","token":""}', 'refresh with empty token')
  await badRequest(t, c, '{"type":"refresh","token":42}', 'refresh token a number')
  await badRequest(t, c, Buffer.from('{"type":"ping"}'), 'binary frame')
  await badRequest(t, c, Buffer.from([0, 1, 2, 3]), 'binary garbage')
  // none of those published anything
  t.equal(c.frames.filter(f => f.type === 'message').length, 0)
  // and a good publish still works
  c.send({ type: 'publish', data: 'ok', ref: 'fine' })
  t.same((await c.nextOfType('message')).data, 'ok')
  t.equal((await c.nextOfType('ack')).ref, 'fine')
})

t.test('ack echoes the ref (string or number) with the message id; no ack without ref', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  const other = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, c, other)
  await c.nextOfType('ready')

  c.send({ type: 'publish', data: { n: 1 }, ref: 'abc-1' })
  const m1 = await c.nextOfType('message')
  const ack1 = await c.nextOfType('ack')
  t.same(ack1, { type: 'ack', ref: 'abc-1', id: m1.id })
  t.type(m1.id, 'string')

  c.send({ type: 'publish', data: { n: 2 }, ref: 0 })
  const m2 = await c.nextOfType('message')
  const ack2 = await c.nextOfType('ack')
  t.same(ack2, { type: 'ack', ref: 0, id: m2.id }, 'numeric ref 0 echoed as a number')

  c.send({ type: 'publish', data: { n: 3 }, ref: 1.5 })
  t.equal((await c.nextOfType('ack')).ref, 1.5)

  c.send({ type: 'publish', data: { n: 4 } })
  const m4 = await c.next(f => f.type === 'message' && f.data.n === 4)
  await pingPong(c)
  t.equal(c.frames.filter(f => f.type === 'ack').length, 0, 'no ack without a ref')

  // the message frames are complete, and identical for the other socket
  t.match(m1, { type: 'message', channel: 'chat', id: String, from: 'alice', data: { n: 1 }, ts: Number })
  t.ok(Math.abs(m1.ts - Date.now()) < 10_000, 'ts is a millisecond timestamp')
  const seen = [await other.nextOfType('message'), await other.nextOfType('message'), await other.nextOfType('message'), await other.nextOfType('message')]
  t.same(seen.map(f => f.id), [m1.id, m2.id, (seen[2]).id, m4.id])
  t.same(seen[0], m1)
  t.equal(other.frames.filter(f => f.type === 'ack').length, 0, 'acks go to the publisher only')
})

t.test('any JSON value is valid data', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  const values = [null, 0, -1.25, true, false, '', 'text "quoted" \u00e9\u{1F600}', [], [1, [2, { a: null }]], {}, { deep: { x: [1, 'two'] } }]
  for (const [i, data] of values.entries()) c.send({ type: 'publish', data, ref: i })
  for (const [i, data] of values.entries()) {
    const ack = await c.next(f => f.type === 'ack' && f.ref === i)
    const msg = await c.next(f => f.type === 'message' && f.id === ack.id)
    t.same(msg.data, data, `data ${JSON.stringify(data)}`)
  }
})

t.test('a publish that is not allowed gets error forbidden (with its ref) and the socket stays open', async t => {
  const a = await start(t, { channels: { news: { publish: false } } })
  const reader = await connect(`${a.ws}/ws/news:today`, bearer(a.token({ sub: 'reader' })))
  const open1 = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'reader' })))
  closeAtEnd(t, reader, open1)
  await reader.nextOfType('ready')
  reader.send({ type: 'publish', data: 'nope', ref: 'r-9' })
  const err = await reader.nextOfType('error')
  t.match(err, { type: 'error', code: 'forbidden', ref: 'r-9', message: String })
  await pingPong(reader)
  // the server may still publish there, and the reader receives it
  await a.app.gatecast.publish('news:today', { headline: 'x' })
  const m = await reader.nextOfType('message')
  t.equal(m.from, null)
  t.same(m.data, { headline: 'x' })
  t.equal(reader.frames.filter(f => f.type === 'message' && f.data === 'nope').length, 0, 'the refused publish was not delivered')
  // other namespaces are unaffected
  open1.send({ type: 'publish', data: 'yes', ref: 1 })
  t.equal((await open1.nextOfType('ack')).ref, 1)
})

t.test('50 bad frames in a row close 1008; a good frame resets the count', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')

  // 49 bad, one good, 49 bad: never 50 in a row
  for (let i = 0; i < 49; i++) c.send('nope')
  await pingPong(c)
  for (let i = 0; i < 49; i++) c.send({ type: 'nope' })
  await pingPong(c)
  await waitFor(() => c.frames.filter(f => f.type === 'error').length === 98, { ms: 3000, what: '98 error frames' })
  t.ok(c.frames.filter(f => f.type === 'error').every(f => f.code === 'bad_request'))
  t.equal(c.ws.readyState, WebSocket.OPEN, 'still open after 2 × 49')
  c.frames.length = 0

  // now 50 in a row
  for (let i = 0; i < 50; i++) c.send('{bad')
  const closed = await closedWithin(c, 3000)
  t.equal(closed.code, 1008, 'closed with 1008 policy violation')
  t.equal(c.frames.filter(f => f.type === 'error').length, 49, 'an error frame for each of the first 49')
})

t.test('50 bad binary frames in a row close 1008 too', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token()))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  for (let i = 0; i < 50; i++) c.ws.send(Buffer.from([i]), { binary: true })
  t.equal((await closedWithin(c, 3000)).code, 1008)
})

t.test('frames from one socket do not disturb another', async t => {
  const a = await start(t)
  const bad = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'bad' })))
  const good = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'good' })))
  closeAtEnd(t, bad, good)
  for (let i = 0; i < 50; i++) bad.send('x')
  t.equal((await closedWithin(bad, 3000)).code, 1008)
  await pingPong(good)
  good.send({ type: 'publish', data: 'still here', ref: 1 })
  t.equal((await good.nextOfType('ack')).ref, 1)
})
