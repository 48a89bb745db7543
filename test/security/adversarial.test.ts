// The adversarial suite (issue 5, item 7): what a hostile client can put on
// the wire — broken UTF-8, binary and hand-made protocol frames, numbers JSON
// allows but doubles do not, absurd nesting, prototype-pollution keys,
// oversized and conflicting tokens, junk upgrade requests, floods — against a
// real server on a real socket. In every case the attacker gets an `error`
// frame, an HTTP error or a documented close, nothing else; and a bystander
// socket keeps being served with well-formed frames throughout.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { api } from '../helpers/app.ts'
import { connect, type Client, type Frame } from '../helpers/client.ts'
import {
  bearer, claims, closeAtEnd, closedWithin, countLogs, pingPong, signJwt, start, tryUpgrade, type WsOptions
} from '../helpers/ws-extra.ts'
import { sleep, waitFor } from '../helpers/wait.ts'
import {
  bystander, depthOf, encodeFrame, isServerFrame, nested, nestedObjects, rawRequest, rawWebSocket, serverFrameProblem, textFrames,
  upgradeHeaders, upgradeRequest
} from '../helpers/adversary.ts'

const KEY = 'api-key-for-the-adversarial-suite-0123456789'

async function attacker (a: { ws: string, token: (c?: Record<string, unknown>) => string }, channel: string, sub = 'mallory'): Promise<Client> {
  const c = await connect(`${a.ws}/ws/${encodeURIComponent(channel)}`, bearer(a.token({ sub })))
  await c.nextOfType('ready')
  return c
}

/** Every frame the client holds is a documented server frame. */
function allDocumented (t: Test, c: Client, label: string): void {
  const bad = c.frames.filter(f => !isServerFrame(f)).map(f => `${JSON.stringify(f).slice(0, 120)} (${serverFrameProblem(f)})`)
  t.same(bad, [], `${label}: every frame is a documented, well-formed server frame`)
}

t.test('invalid UTF-8 in a text frame closes 1007; nothing is published; the bystander is unaffected', async t => {
  const a = await start(t)
  const by = await bystander(t, a, 'chat')
  const cases: Array<[string, Buffer]> = [
    ['a lone 0xFF byte', Buffer.from([0xff])],
    ['0xFE 0xFF inside JSON', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ['an overlong "/" (C0 AF)', Buffer.from([0xc0, 0xaf])],
    ['a UTF-16 surrogate encoded as UTF-8 (ED A0 80)', Buffer.from([0xed, 0xa0, 0x80])],
    ['a code point above U+10FFFF (F4 90 80 80)', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
    ['a truncated 3-byte sequence at the end', Buffer.from([0x22, 0xe2, 0x82])],
    ['a valid publish whose data string holds 0xFF', Buffer.concat([Buffer.from('{"type":"publish","ref":1,"data":"'), Buffer.from([0xff]), Buffer.from('"}')])]
  ]
  for (const [label, bytes] of cases) {
    const c = await attacker(a, 'chat')
    c.ws.send(bytes, { binary: false })
    const closed = await closedWithin(c, 3000)
    t.equal(closed.code, 1007, `${label}: closed 1007 (invalid frame payload data)`)
    t.equal(c.frames.filter(f => f.type === 'ack' || f.type === 'message').length, 0, `${label}: nothing acked or echoed`)
  }
  // fragmented: each fragment alone could be a prefix of valid UTF-8, the whole is not
  const frag = await attacker(a, 'chat')
  frag.ws.send(Buffer.from('{"type":"publish","data":"'), { binary: false, fin: false })
  frag.ws.send(Buffer.from([0xe2, 0x82]), { binary: false, fin: false })
  frag.ws.send(Buffer.from('"}'), { binary: false, fin: true })
  t.equal((await closedWithin(frag, 3000)).code, 1007, 'invalid UTF-8 split over fragments: 1007')

  await waitFor(() => a.app.gatecast.hub.size === 1, { ms: 3000, what: 'only the bystander left on the server' })
  t.same(by.messagesFrom('mallory'), [], 'the bystander saw none of it')
  await by.healthy(t)
})

t.test('binary frames are never published, whatever they hold; protocol-level junk closes without harm', async t => {
  const a = await start(t)
  const by = await bystander(t, a, 'chat')
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)
  c.ws.send(Buffer.from(JSON.stringify({ type: 'publish', data: 'from a binary frame', ref: 'b1' })), { binary: true })
  const err = await c.nextOfType('error')
  t.match(err, { type: 'error', code: 'bad_request', message: String }, 'binary publish: bad_request')
  c.ws.send(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true })
  t.equal((await c.nextOfType('error')).code, 'bad_request', 'binary ping: bad_request, no pong')
  await pingPong(c)
  t.equal(c.frames.filter(f => f.type === 'pong' || f.type === 'ack').length, 0)
  allDocumented(t, c, 'attacker')

  // 100 fragments of 1 KiB: the total, not each fragment, is held to wsMaxPayload (64 KiB)
  const frag = await attacker(a, 'chat')
  frag.ws.send('{"type":"publish","data":"', { fin: false })
  for (let i = 0; i < 100; i++) frag.ws.send('x'.repeat(1024), { fin: false })
  frag.ws.send('"}', { fin: true })
  t.equal((await closedWithin(frag, 3000)).code, 1009, 'a fragmented message over the limit closes 1009')

  // frames no conforming client sends: the ws protocol layer closes them (1002, or 1009 for absurd lengths)
  const junk: Array<[string, Buffer, number[]]> = [
    ['an unmasked text frame', encodeFrame(1, Buffer.from('{"type":"ping"}'), { mask: false }), [1002]],
    ['RSV1 set without permessage-deflate', encodeFrame(1, Buffer.from('{"type":"ping"}'), { rsv: 4 }), [1002]],
    ['reserved opcode 0x3', encodeFrame(3, Buffer.from('x')), [1002]],
    ['a ping of 126 bytes (control frames max 125)', encodeFrame(9, Buffer.alloc(126)), [1002]],
    ['a fragmented ping', encodeFrame(9, Buffer.from('x'), { fin: false }), [1002]],
    ['a continuation with nothing to continue', encodeFrame(0, Buffer.from('x')), [1002]],
    ['a close frame with code 999', encodeFrame(8, Buffer.from([0x03, 0xe7])), [1002]],
    ['a 64-bit length of 2^63', encodeFrame(1, Buffer.alloc(0), { declaredLength: 2n ** 63n }), [1009]],
    ['a declared length of 1 GiB', encodeFrame(1, Buffer.alloc(0), { declaredLength: 2n ** 30n }), [1009]]
  ]
  for (const [label, bytes, codes] of junk) {
    const raw = await rawWebSocket(a.base, '/ws/chat', a.token({ sub: 'mallory' }))
    raw.write(bytes)
    const code = await raw.closeCode(3000)
    raw.destroy()
    t.ok(code !== null && codes.includes(code), `${label}: closed with ${codes.join('/')} (got ${code})`)
  }
  await waitFor(() => a.app.gatecast.hub.size === 2, { ms: 3000, what: 'only the bystander and the first attacker left' })
  t.same(by.messagesFrom('mallory'), [], 'the bystander saw nothing from the attacker')
  await by.healthy(t)
})

t.test('huge numbers: JSON that doubles cannot hold is handled, and every answer is a documented frame', async t => {
  const a = await start(t)
  const by = await bystander(t, a, 'chat')
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)

  // data: whatever JSON.parse makes of it, delivered as a valid JSON value
  c.send('{"type":"publish","ref":"big","data":1e400}')
  c.send('{"type":"publish","ref":"neg","data":-1e400}')
  c.send('{"type":"publish","ref":"2^53+1","data":9007199254740993}')
  c.send('{"type":"publish","ref":"tiny","data":1e-400}')
  c.send('{"type":"publish","ref":"long","data":' + '9'.repeat(4000) + '}')
  const want: Record<string, unknown> = { big: null, neg: null, '2^53+1': 2 ** 53, tiny: 0, long: null }
  for (const [ref, data] of Object.entries(want)) {
    const ack = await c.next(f => f.type === 'ack' && f.ref === ref)
    const mine = await c.next(f => f.type === 'message' && f.id === ack.id)
    t.same(mine.data, data, `data ${ref}: delivered as ${JSON.stringify(data)}`)
    const theirs = await by.client.next(f => f.type === 'message' && f.id === ack.id)
    t.same(theirs, mine, `data ${ref}: the bystander got the same frame`)
  }

  // refs: a number the client cannot round-trip is still echoed as a number (never null)
  c.send('{"type":"publish","data":1,"ref":9007199254740993}')
  t.equal((await c.next(f => f.type === 'ack' && typeof f.ref === 'number' && f.ref > 1e15)).ref, 2 ** 53, 'ref 2^53+1 echoed as 2^53')
  c.send('{"type":"publish","data":1,"ref":-0}')
  t.equal((await c.next(f => f.type === 'ack' && f.ref === 0)).ref, 0, 'ref -0 echoed as 0')

  // a ref of 1e400 parses to Infinity: not a valid ref (finite numbers only), so bad_request —
  // and the error frame must not carry `"ref": null`, which no schema allows
  c.send('{"type":"publish","data":1,"ref":1e400}')
  c.send('{"type":"nope","ref":-1e400}')
  const e1 = await c.nextOfType('error')
  const e2 = await c.nextOfType('error')
  for (const e of [e1, e2]) {
    t.equal(e.code, 'bad_request', 'an infinite ref is a bad_request')
    t.ok(!('ref' in e) || (typeof e.ref === 'number' && Number.isFinite(e.ref)), `the error frame has no ref or a finite one (got ${JSON.stringify(e)})`)
    t.ok(isServerFrame(e), `the error frame matches ErrorFrameSchema: ${serverFrameProblem(e)}`)
  }

  // since: the id's sequence part is bounded, so 2^53+1 is refused before it can lose precision
  const { id } = await a.app.gatecast.publish('chat', 'anchor')
  const epoch = id.split(':')[0]
  const tok = a.token({ sub: 'mallory' })
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?since=${epoch}:9007199254740993`, bearer(tok))).status, 400, 'since with a 2^53+1 sequence: 400')
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?since=${epoch}:${'9'.repeat(400)}`, bearer(tok))).status, 400, 'since with 400 digits: 400')
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?since=${epoch}:1e400`, bearer(tok))).status, 400, 'since 1e400: 400')
  const future = await connect(`${a.ws}/ws/chat?since=${epoch}:999999999999999`, bearer(tok))
  closeAtEnd(t, future)
  t.match(await future.nextOfType('ready'), { recovered: false }, 'a since from the future is not "recovered": the client resyncs')
  t.equal((await api(a.base, 'GET', `/api/channels/chat/messages?since=${epoch}:9007199254740993`, { headers: { authorization: `Bearer ${a.token({ sub: 'ops', roles: ['admin'] })}` } })).status, 400, 'history API: the same 400')

  await by.healthy(t)
})

t.test('nesting: deeper than 32 is bad_request, absurd depth costs nothing, the limit holds on every path', async t => {
  const a = await start(t, { apiKey: KEY })
  const by = await bystander(t, a, 'chat')
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)

  c.send(`{"type":"publish","ref":"d32","data":${nested(32)}}`)
  c.send(`{"type":"publish","ref":"o32","data":${nestedObjects(32)}}`)
  t.equal((await c.next(f => f.type === 'ack' && f.ref === 'd32')).ref, 'd32', '32 nested arrays: accepted')
  t.equal((await c.next(f => f.type === 'ack' && f.ref === 'o32')).ref, 'o32', '32 nested objects: accepted')

  const deep: Array<[string, string]> = [
    ['d33', nested(33)],
    ['o33', nestedObjects(33)],
    ['mixed33', '{"a":[' + nested(31) + ']}'],
    ['deep-in-a-wide-value', '[' + '1,'.repeat(5000) + nested(40) + ']'],
    // as deep as 64 KiB allows: 32 000 levels
    ['arrays32k', nested(32_000)],
    ['objects10k', nestedObjects(10_000)]
  ]
  const t0 = Date.now()
  for (const [ref, data] of deep) {
    const text = `{"type":"publish","ref":"${ref}","data":${data}}`
    t.ok(Buffer.byteLength(text) <= 65536, `${ref}: fits the frame limit`)
    c.send(text)
    const e = await c.next(f => f.type === 'error' && f.ref === ref)
    t.match(e, { type: 'error', code: 'bad_request', ref, message: /deeper than 32/ }, `${ref}: bad_request`)
  }
  t.ok(Date.now() - t0 < 2000, `the absurd ones were refused quickly (${Date.now() - t0} ms)`)
  // deep junk outside `data` is refused by the schema without walking it
  c.send(`{"type":"ping","x":${nested(32_000)}}`)
  t.equal((await c.nextOfType('error')).code, 'bad_request', 'deep extra field: bad_request')
  c.send(`{"type":"refresh","token":${nested(32_000)}}`)
  t.equal((await c.nextOfType('error')).code, 'bad_request', 'deep token field: bad_request')
  await pingPong(c)
  allDocumented(t, c, 'attacker')
  t.equal(c.ws.readyState, WebSocket.OPEN, 'the attacker socket stays open (these are bad frames, not abuse yet)')

  // the server API has the same limit (its 1 MiB body could nest 500 000 levels)
  const key = { 'x-api-key': KEY, 'content-type': 'application/json' }
  const huge = `{"data":${nested(100_000)}}`
  for (const path of ['/api/channels/chat/messages', '/api/broadcast', '/api/users/bystander/messages']) {
    for (const [label, body] of [['depth 33', `{"data":${nested(33)}}`], ['depth 100 000', huge]]) {
      const res = await fetch(a.base + path, { method: 'POST', headers: key, body })
      const json = await res.json() as Record<string, unknown>
      t.equal(res.status, 400, `POST ${path} with ${label}: 400, like a client publish (got ${res.status})`)
      t.equal(json.code, 'bad_request', `POST ${path} with ${label}: code bad_request`)
    }
  }

  const seen = by.messagesFrom('mallory').map(f => depthOf(f.data))
  t.same(seen, [32, 32], 'the bystander got exactly the two frames at the limit')
  await by.healthy(t)
})

t.test('prototype-pollution keys in data are delivered verbatim as data, and pollute nothing', async t => {
  const a = await start(t, { apiKey: KEY, channels: { news: { publish: false } } })
  const by = await bystander(t, a, 'chat')
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)
  const dataText = '{"__proto__":{"polluted":"yes","isAdmin":true},"constructor":{"prototype":{"polluted":"yes"}},' +
    '"nested":{"__proto__":{"polluted":"yes"}},"list":[{"__proto__":{"polluted":"yes"}}],"prototype":{"polluted":"yes"}}'
  c.send(`{"type":"publish","ref":"pp","data":${dataText}}`)
  const ack = await c.next(f => f.type === 'ack' && f.ref === 'pp')

  // on the wire, to the other socket: the keys as they were sent
  await by.client.next(f => f.type === 'message' && f.id === ack.id)
  const wire = by.raw.find(r => r.includes(`"id":"${ack.id}"`)) ?? ''
  t.ok(wire.includes(`"data":${dataText}`), 'the bystander received the data text verbatim')
  const parsed = JSON.parse(wire) as Frame
  t.ok(Object.hasOwn(parsed.data, '__proto__'), '__proto__ is an own data key, not a prototype')
  t.equal(Object.getPrototypeOf(parsed.data), Object.prototype)

  // replayed from history (since) and served by the history API, still verbatim
  const replay = await connect(`${a.ws}/ws/chat?since=${ack.id.split(':')[0]}:0`, bearer(a.token({ sub: 'late' })))
  closeAtEnd(t, replay)
  const replayed = await replay.next(f => f.type === 'message' && f.id === ack.id)
  t.equal(JSON.stringify(replayed.data), dataText, 'replayed from history verbatim')
  const hist = await fetch(`${a.base}/api/channels/chat/messages`, { headers: { 'x-api-key': KEY } })
  const histText = await hist.text()
  t.ok(histText.includes(dataText), 'history API returns the data verbatim')

  // the frame envelope itself: pollution keys there are unknown fields → bad_request
  c.send('{"type":"publish","data":1,"ref":"e1","__proto__":{"polluted":"yes"}}')
  c.send('{"type":"publish","data":1,"ref":"e2","constructor":{"prototype":{"polluted":"yes"}}}')
  c.send('{"__proto__":{"type":"ping"},"ref":"e3"}')
  for (const ref of ['e1', 'e2', 'e3']) t.equal((await c.next(f => f.type === 'error' && f.ref === ref)).code, 'bad_request', `envelope ${ref}: bad_request`)

  // the server API refuses poisoned bodies outright (Fastify's secure JSON parser)
  const res = await api(a.base, 'POST', '/api/channels/chat/messages', {
    body: JSON.parse(`{"data":${dataText}}`), headers: { 'x-api-key': KEY }
  })
  t.ok(res.status === 400 || res.status === 201, `server API: 400 or accepted as data (${res.status})`)

  // channel and user names that are Object.prototype members behave like any other name
  for (const channel of ['__proto__', 'constructor', '__proto__:x', 'constructor:prototype', 'hasOwnProperty:x', 'news:toString']) {
    const s = await connect(`${a.ws}/ws/${encodeURIComponent(channel)}`, bearer(a.token({ sub: '__proto__' })))
    closeAtEnd(t, s)
    t.match(await s.nextOfType('ready'), { channel, userId: '__proto__' }, `channel ${channel}: joined`)
    s.send({ type: 'publish', data: { channel }, ref: 1 })
    const answer = await s.next(f => f.type === 'ack' || f.type === 'error')
    t.equal(answer.type, channel.startsWith('news:') ? 'error' : 'ack', `channel ${channel}: namespace rules as configured`)
    s.ws.terminate()
  }
  const st = await api(a.base, 'GET', '/api/users/__proto__', { headers: { 'x-api-key': KEY } })
  t.equal(st.status, 200, 'user __proto__ status')

  // nothing in this process (the server's) was polluted
  const probe: Record<string, unknown> = {}
  t.equal(probe.polluted, undefined, '({}).polluted is undefined')
  t.equal(probe.isAdmin, undefined, '({}).isAdmin is undefined')
  t.notOk(Object.hasOwn(Object.prototype, 'polluted'), 'Object.prototype has no polluted key')
  t.equal((Object as unknown as Record<string, unknown>).polluted, undefined)
  await by.healthy(t)
})

t.test('oversized tokens are refused cleanly in every place a token can be', async t => {
  const a = await start(t)
  const by = await bystander(t, a, 'chat')
  const big = signJwt(claims('alice', 600, { pad: 'x'.repeat(100_000) }))
  t.ok(big.length > 100_000, `a validly signed ${big.length}-byte token`)
  const places: Array<[string, string, WsOptions]> = [
    ['header', '/ws/chat', bearer(big)],
    ['subprotocol', '/ws/chat', { protocols: ['gatecast', `bearer.${big}`] }],
    ['?token=', `/ws/chat?token=${big}`, {}],
    ['?Authorization=', `/ws/chat?Authorization=Bearer%20${big}`, {}]
  ]
  const opens = countLogs(a.logs, 'socket open')
  for (const [label, path, opts] of places) {
    const res = await tryUpgrade(`${a.ws}${path}`, opts)
    t.equal(res.opened, false, `${label}: no socket`)
    t.ok([400, 401, 413, 414, 431].includes(res.status), `${label}: refused with a 4xx (${res.status})`)
  }
  // just under Node's 16 KiB header limit the token reaches the verifier, which refuses it
  const mid = 'e' + 'x'.repeat(14_000)
  t.equal((await tryUpgrade(`${a.ws}/ws/chat`, bearer(mid))).status, 401, 'a 14 KB garbage token: 401')
  // in a refresh frame the token is bounded by the schema
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)
  c.send({ type: 'refresh', token: 'x'.repeat(8193) })
  t.equal((await c.nextOfType('error')).code, 'bad_request', 'a refresh token over 8192 chars: bad_request')
  c.send({ type: 'refresh', token: big.slice(0, 8192) })
  t.equal((await c.nextOfType('error')).code, 'forbidden', 'a truncated big token in refresh: forbidden')
  t.equal(countLogs(a.logs, 'socket open'), opens + 1, 'only the attacker socket was ever opened')
  t.same((await api(a.base, 'GET', '/health')).body, { status: 'ok' }, 'the server is alive')
  await by.healthy(t)
})

t.test('tokens in two places that disagree are refused, whoever they belong to', async t => {
  const a = await start(t, { wsSocketsPerUser: 1 })
  const by = await bystander(t, a, 'chat')
  const alice = signJwt(claims('alice'))
  const alice2 = signJwt(claims('alice')) // same user, another jti
  const bob = signJwt(claims('bob'))
  const forged = signJwt(claims('admin', 600, { roles: ['admin'] }), { alg: 'none' })
  const cases: Array<[string, string, WsOptions]> = [
    ['good header, forged query', `/ws/chat?token=${forged}`, bearer(alice)],
    ['forged header, good query', `/ws/chat?token=${alice}`, bearer(forged)],
    ['good subprotocol, other user in ?Authorization', `/ws/chat?Authorization=${bob}`, { protocols: ['gatecast', `bearer.${alice}`] }],
    ['same user, two different tokens', `/ws/chat?token=${alice2}`, bearer(alice)],
    ['two bearer offers in the subprotocol', '/ws/chat', { protocols: ['gatecast', `bearer.${alice}`, `bearer.${bob}`] }],
    ['?token= twice', `/ws/chat?token=${alice}&token=${bob}`, {}],
    ['?token= and an empty ?Authorization=', `/ws/chat?token=${alice}&Authorization=`, {}]
  ]
  for (const [label, path, opts] of cases) {
    const res = await tryUpgrade(`${a.ws}${path}`, opts)
    t.equal(res.opened, false, `${label}: no socket`)
    t.ok(res.status === 401 || res.status === 400, `${label}: 401/400 (${res.status})`)
  }
  // two Authorization headers (only possible by hand): Node keeps the first and drops the
  // second, so a proxy that reads the last one would see another user than the gateway
  const two = await rawRequest(a.base, upgradeRequest('/ws/chat', upgradeHeaders(null, { Authorization: [`Bearer ${alice}`, `Bearer ${bob}`] })))
  t.equal(two.status, 401, 'two Authorization headers that disagree: 401, no upgrade')
  const twice = await rawRequest(a.base, upgradeRequest('/ws/chat', upgradeHeaders(null, { Authorization: [`Bearer ${alice2}`, `Bearer ${alice2}`] })), 500)
  t.equal(twice.status, 101, 'the same Authorization header twice is one token: admitted')
  // the REST side reads every Authorization header the same way
  const api = (auth: string[]) => rawRequest(a.base, `POST /auth/logout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${auth.map(h => `Authorization: ${h}\r\n`).join('')}Connection: close\r\n\r\n{}`)
  const restTwo = await api([`Bearer ${alice}`, `Bearer ${bob}`])
  t.equal(restTwo.status, 401, 'REST: two Authorization headers that disagree: 401')
  t.match(restTwo.text, /"code":"token_invalid"/)
  // whatever happened above, no socket is left behind
  await waitFor(() => a.app.gatecast.hub.size === 1, { ms: 2000, what: 'no socket left but the bystander' })
  await by.healthy(t)
})

t.test('junk on the upgrade path gets a plain HTTP error and never a socket', async t => {
  const a = await start(t, { wsSocketsPerUser: 1, apiKey: KEY })
  const by = await bystander(t, a, 'chat')
  const tok = a.token({ sub: 'alice' })
  const opens = countLogs(a.logs, 'socket open')
  const H = (extra: Record<string, string | string[]>) => upgradeHeaders(tok, extra)
  const cases: Array<[string, string]> = [
    ['no Sec-WebSocket-Key', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Key': [] }))],
    ['a short Sec-WebSocket-Key', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Key': 'AAAA' }))],
    ['a key that is not base64', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' }))],
    ['Sec-WebSocket-Version 12', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Version': '12' }))],
    ['Sec-WebSocket-Version junk', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Version': '13abc' }))],
    ['no Sec-WebSocket-Version', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Version': [] }))],
    ['Upgrade: h2c', upgradeRequest('/ws/chat', H({ Upgrade: 'h2c' }))],
    ['Content-Length and Transfer-Encoding both', upgradeRequest('/ws/chat', H({ 'Content-Length': '5', 'Transfer-Encoding': 'chunked' }))],
    ['a bare CR inside a header', upgradeRequest('/ws/chat', H({ 'X-Junk': 'a\rb' }))],
    ['a NUL inside a header', upgradeRequest('/ws/chat', H({ 'X-Junk': 'a\u0000b' }))],
    ['whitespace before the colon', upgradeRequest('/ws/chat', H({ 'Upgrade ': 'websocket' }))],
    ['bad percent-encoding in the channel', upgradeRequest('/ws/%E0%A4%A', H({}))],
    ['POST with upgrade headers', upgradeRequest('/ws/chat', H({ 'Content-Length': '0' }), 'POST /ws/chat HTTP/1.1')],
    ['a smuggled second request behind a bad key', upgradeRequest('/ws/chat', H({ 'Sec-WebSocket-Key': 'bad' })) +
      `GET /api/channels HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n\r\n`]
  ]
  for (const [label, request] of cases) {
    const res = await rawRequest(a.base, request)
    t.ok(res.status >= 400 && res.status < 500, `${label}: HTTP 4xx (${res.status})`)
    t.notOk(res.text.includes('101 Switching Protocols'), `${label}: no upgrade`)
    t.equal((res.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, `${label}: exactly one response`)
    t.notOk(res.text.includes('"channels"'), `${label}: nothing smuggled through`)
  }
  t.equal(countLogs(a.logs, 'socket open'), opens, 'no socket was opened')
  t.equal(a.app.gatecast.hub.size, 1, 'the server holds only the bystander')
  // and none of that used up alice's only socket slot
  const ok = await connect(`${a.ws}/ws/chat`, bearer(tok))
  closeAtEnd(t, ok)
  t.equal((await ok.nextOfType('ready')).userId, 'alice', 'alice can still open her one socket')
  await by.healthy(t)
})

t.test('a publish flood from one socket ends in 4429 and never holds up anyone else', async t => {
  const a = await start(t) // default WS_MESSAGE_RATE 100/s, bursts of 200
  const same = await bystander(t, a, 'chat', 'same-channel')
  const other = await bystander(t, a, 'lobby', 'other-channel')

  // 20 000 publishes encoded up front and written at once: the cost measured is the server's
  const flooder = await rawWebSocket(a.base, '/ws/chat', a.token({ sub: 'flooder' }))
  t.teardown(() => flooder.destroy())
  const flood = textFrames(Array.from({ length: 20_000 }, (_v, i) => `{"type":"publish","data":{"n":${i}},"ref":${i}}`))

  // a server ticker every 10 ms on both channels; arrival is timed on the bystanders' sockets
  const latencies: number[] = []
  for (const b of [same, other]) {
    b.client.ws.on('message', d => {
      const f = JSON.parse(d.toString()) as Frame
      if (f.type === 'message' && f.from === null && typeof f.data?.tick === 'number') latencies.push(Date.now() - f.data.at)
    })
  }
  const state = { ticking: true }
  let ticks = 0
  const ticker = (async () => {
    while (state.ticking) {
      const at = Date.now()
      await Promise.all([a.app.gatecast.publish('chat', { tick: ticks, at }), a.app.gatecast.publish('lobby', { tick: ticks, at })])
      ticks++
      await sleep(10)
    }
  })()
  await sleep(100)
  const started = Date.now()
  flooder.write(flood)
  const code = await flooder.closeCode(5000)
  const took = Date.now() - started
  await sleep(200)
  state.ticking = false
  await ticker

  t.equal(code, 4429, `the flooder is closed 4429 (after ${took} ms)`)
  const answers = flooder.frames().filter(f => f.opcode === 1).map(f => JSON.parse(f.payload.toString()) as Frame)
  t.ok(answers.some(f => f.type === 'error' && f.code === 'rate_limited'), 'warned with rate_limited first')
  t.ok(answers.every(f => isServerFrame(f)), 'every frame it got was documented')
  const relayed = same.messagesFrom('flooder').length
  t.ok(relayed >= 200 && relayed <= 200 + Math.ceil(took / 1000 * 100) + 1, `no more than the burst plus the rate went through (${relayed})`)
  const ns = same.messagesFrom('flooder').map(f => f.data.n as number)
  t.ok(ns.every((n, i) => i === 0 || n > ns[i - 1]), 'what went through came in publish order')
  t.same(ns.slice(0, 200), Array.from({ length: 200 }, (_v, i) => i), 'the first 200 (the burst) all went through')
  await waitFor(() => latencies.length === 2 * ticks, { ms: 2000, what: 'every tick on both bystanders' })
  const worst = Math.max(...latencies)
  // the test process is the server too; with rate limiting off the same flood delays ticks by 700+ ms
  t.ok(worst < 500, `no tick was delayed beyond reason during the flood (worst ${worst} ms over ${ticks} ticks)`)
  t.equal(a.app.gatecast.hub.size, 2, 'only the two bystanders are left on the server')
  await same.healthy(t, 'same-channel bystander')
  await other.healthy(t, 'other-channel bystander')
})

t.test('many bad frames of every kind end in 1008; the bystander never notices', async t => {
  const a = await start(t)
  const by = await bystander(t, a, 'chat')
  const c = await attacker(a, 'chat')
  closeAtEnd(t, c)
  const kinds: Array<string | Buffer> = [
    '{', 'null', '[]', '"publish"', '{"type":"publish"}', '{"type":"publish","data":1,"ref":true}',
    '{"type":"subscribe","channel":7}', '{"type":"refresh"}', '{"type":"ping","x":1}', Buffer.from([1, 2, 3])
  ]
  for (let i = 0; i < 60; i++) {
    const k = kinds[i % kinds.length]
    if (typeof k === 'string') c.send(k)
    else c.ws.send(k, { binary: true })
  }
  const closed = await closedWithin(c, 3000)
  t.equal(closed.code, 1008, 'closed 1008 after a streak of bad frames')
  const errors = c.frames.filter(f => f.type === 'error')
  t.equal(errors.length, 49, 'an error frame for each of the first 49, then the close')
  t.ok(errors.every(f => f.code === 'bad_request'), 'all bad_request')
  allDocumented(t, c, 'attacker')
  await waitFor(() => a.app.gatecast.hub.size === 1, { ms: 3000, what: 'the attacker is gone from the server' })
  t.same(by.messagesFrom('mallory'), [], 'the bystander saw nothing')
  await by.healthy(t)
})

t.test('a 1 MiB deeply nested body from nobody costs no more than a refusal', async t => {
  // load shedding off: what is measured is the stall itself, not the 503s it would cause
  const a = await start(t, { apiKey: KEY, maxEventLoopDelay: 0, loginRate: 1000 })
  const by = await bystander(t, a, 'chat')
  // JSON.parse needs ~0.5 s for 500 000 levels; a flat body of the same size ~30 ms
  const deep = `{"data":${nested(500_000)}}`
  const deepLogin = `{"username":"x","password":"y","z":${nested(500_000)}}`
  t.ok(Buffer.byteLength(deep) < 1024 * 1024, 'within the 1 MiB body limit')
  const targets: Array<[string, string, number[]]> = [
    ['/api/broadcast', deep, [401]],
    ['/api/channels/chat/messages', deep, [401]],
    ['/auth/login', deepLogin, [400, 413]],
    ['/auth/refresh', deepLogin, [400, 413]]
  ]
  for (const [path, body, statuses] of targets) {
    // the longest gap between ticks of a 5 ms interval: how long the loop was blocked
    let last = performance.now()
    let stall = 0
    const timer = setInterval(() => { const now = performance.now(); stall = Math.max(stall, now - last - 5); last = now }, 5)
    const t0 = performance.now()
    const res = await Promise.all(Array.from({ length: 4 }, () => fetch(a.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body })))
    const took = Math.round(performance.now() - t0)
    await sleep(30)
    clearInterval(timer)
    t.ok(res.every(r => statuses.includes(r.status)), `${path}: refused with ${statuses.join('/')} (${res.map(r => r.status).join(',')})`)
    t.ok(stall < 200, `${path}: four such requests blocked the event loop for ${Math.round(stall)} ms at a stretch (limit 200; all answered in ${took} ms)`)
  }
  await by.healthy(t)
})

t.test('user-limited channels: no spelling, replay or lookalike lets a third user read them', async t => {
  const a = await start(t, { apiKey: KEY })
  const alice = await connect(`${a.ws}/ws/${encodeURIComponent('dm#alice,bob')}`, bearer(a.token({ sub: 'alice' })))
  const bob = await connect(`${a.ws}/ws/${encodeURIComponent('dm#alice,bob')}`, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, alice, bob)
  await alice.nextOfType('ready')
  await bob.nextOfType('ready')
  alice.send({ type: 'publish', data: { secret: 'for bob only' }, ref: 1 })
  const ack = await alice.nextOfType('ack')
  t.same((await bob.nextOfType('message')).data, { secret: 'for bob only' }, 'bob gets it')

  const carol = a.token({ sub: 'carol' })
  const since = `${ack.id.split(':')[0]}:0`
  const refusedAs: Array<[string, number]> = [
    [encodeURIComponent('dm#alice,bob'), 403],
    ['dm%23alice,bob', 403],
    ['dm%23alice%2Cbob', 403],
    [`${encodeURIComponent('dm#alice,bob')}?since=${since}`, 403],
    [encodeURIComponent('dm#alice,bob#carol'), 403], // the users are everything after the first #
    [encodeURIComponent('dm#alice,,bob'), 403],
    [encodeURIComponent('dm#alice, carol'), 400],
    [encodeURIComponent('dm#alice,bob\u0000carol'), 400],
    [encodeURIComponent('dm#alice,bob,carol\n'), 400]
  ]
  for (const [path, status] of refusedAs) {
    const res = await tryUpgrade(`${a.ws}/ws/${path}`, bearer(carol))
    t.equal(res.status, status, `carol on /ws/${path}: ${status}`)
  }
  // a `channels` claim that matches by glob does not override the user list
  t.equal((await tryUpgrade(`${a.ws}/ws/${encodeURIComponent('dm#alice,bob')}`, bearer(a.token({ sub: 'carol', channels: ['dm#*', '*'] })))).status, 403, 'a channels claim of * does not admit carol')
  // a user id that spells the list is not on it
  t.equal((await tryUpgrade(`${a.ws}/ws/${encodeURIComponent('dm#alice,bob')}`, bearer(a.token({ sub: 'alice,bob' })))).status, 403, 'user "alice,bob" is not alice or bob')
  t.equal((await tryUpgrade(`${a.ws}/ws/${encodeURIComponent('dm#alice,bob')}`, bearer(a.token({ sub: 'Alice' })))).status, 403, 'user ids are case-sensitive')

  // lookalike channels carol may join are other channels: nothing crosses over
  const looks: Client[] = []
  const readies: Frame[] = []
  for (const name of ['dm#alice,bob,carol', 'dm#bob,alice,carol', 'dm#carol,alice,bob', 'dm', 'dm:alice,bob']) {
    const c = await connect(`${a.ws}/ws/${encodeURIComponent(name)}${name === 'dm#alice,bob,carol' ? `?since=${since}` : ''}`, bearer(carol))
    closeAtEnd(t, c)
    readies.push(await c.nextOfType('ready'))
    looks.push(c)
  }
  alice.send({ type: 'publish', data: { secret: 'second' }, ref: 2 })
  await bob.next(f => f.type === 'message' && f.data.secret === 'second')
  for (const c of looks) await pingPong(c)
  t.same(looks.flatMap(c => c.frames.filter(f => f.type === 'message')), [], 'carol saw nothing on any lookalike')
  t.match(readies[0], { type: 'ready', recovered: false }, 'a since from another channel recovers nothing')
})
