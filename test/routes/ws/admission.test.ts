// Admission before the upgrade (contract §3): 400 / 403 / 426 / 429 as plain
// HTTP responses with the JSON error shape, never a socket; and the accepted
// cases next to each refusal.
import type { Socket } from 'node:net'
import t from 'tap'
import { api } from '../../helpers/app.ts'
import { connect } from '../../helpers/client.ts'
import { bearer, closeAtEnd, closedWithin, expectRefused, pingPong, rawUpgrade, start } from '../../helpers/ws-extra.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'

t.test('400 bad channel name', async t => {
  const a = await start(t)
  const auth = bearer(a.token({ sub: 'alice' }))
  await expectRefused(t, a, `${a.ws}/ws/bad%20name`, auth, 400, 'bad_channel', 'space')
  await expectRefused(t, a, `${a.ws}/ws/${'x'.repeat(129)}`, auth, 400, 'bad_channel', '129 chars')
  await expectRefused(t, a, `${a.ws}/ws/caf%C3%A9`, auth, 400, 'bad_channel', 'non-ASCII')
  await expectRefused(t, a, `${a.ws}/ws/a%2Fb`, auth, 400, 'bad_channel', 'encoded slash')
  await expectRefused(t, a, `${a.ws}/ws/semi%3Bcolon`, auth, 400, 'bad_channel', 'semicolon')
  // the bad name is reported even without a token
  await expectRefused(t, a, `${a.ws}/ws/bad%20name`, {}, 400, 'bad_channel', 'no token')

  // the longest legal name and every legal character are accepted
  const longest = 'y'.repeat(128)
  const c1 = await connect(`${a.ws}/ws/${longest}`, auth)
  const c2 = await connect(`${a.ws}/ws/A-z_0.9:x@y,z`, auth)
  closeAtEnd(t, c1, c2)
  t.equal((await c1.nextOfType('ready')).channel, longest)
  t.equal((await c2.nextOfType('ready')).channel, 'A-z_0.9:x@y,z')
})

t.test('400 for a far too long channel name, and the refused upgrade is not left hanging', async t => {
  const a = await start(t)
  const conns: Socket[] = []
  a.app.server.on('connection', (s: Socket) => conns.push(s))
  const name = 'x'.repeat(300)
  await expectRefused(t, a, `${a.ws}/ws/${name}`, bearer(a.token({ sub: 'alice' })), 400, 'bad_channel', '300 chars')
  // a refused upgrade ends the exchange: the server closes the TCP connection
  const short = await rawUpgrade(a.base, '/ws/bad%20name', 1000)
  t.match(short.head, /^HTTP\/1\.1 400 /, '129-char name: 400')
  t.equal(short.serverClosed, true, 'server closed the connection after a 400')
  const long = await rawUpgrade(a.base, `/ws/${name}`, 1000)
  t.match(long.head, /^HTTP\/1\.1 400 /, '300-char name: 400')
  t.equal(long.serverClosed, true, 'server closed the connection after refusing a 300-char name')
  // both clients are gone now; shutdown must not wait for anything
  const closing = a.app.close()
  const finished = await Promise.race([closing.then(() => true), sleep(2000).then(() => false)])
  t.equal(finished, true, 'app.close() completes although such an upgrade was refused earlier')
  for (const s of conns) s.destroy() // so the teardown can finish either way
  await closing
})

t.test('400 bad since', async t => {
  const a = await start(t)
  const auth = bearer(a.token({ sub: 'alice' }))
  await expectRefused(t, a, `${a.ws}/ws/chat?since=garbage`, auth, 400, 'bad_since', 'garbage')
  await expectRefused(t, a, `${a.ws}/ws/chat?since=`, auth, 400, 'bad_since', 'empty')
  await expectRefused(t, a, `${a.ws}/ws/chat?since=${'9'.repeat(300)}`, auth, 400, 'bad_since', 'long digits')
  const { id: first } = await a.app.gatecast.publish('chat', { n: 0 })
  await expectRefused(t, a, `${a.ws}/ws/chat?since=${encodeURIComponent(first)}&since=${encodeURIComponent(first)}`, auth, 400, 'bad_since', 'since twice')

  // a real id from this channel is accepted, and the replay follows ready
  const { id } = await a.app.gatecast.publish('chat', { n: 1 })
  await a.app.gatecast.publish('chat', { n: 2 })
  const c = await connect(`${a.ws}/ws/chat?since=${encodeURIComponent(id)}`, auth)
  closeAtEnd(t, c)
  t.equal(c.frames[0].type, 'ready')
  t.equal(c.frames[0].recovered, true)
  t.same((await c.nextOfType('message')).data, { n: 2 })
})

t.test('403 Origin not in allowedOrigins; allowed Origin and no Origin accepted', async t => {
  const a = await start(t, { allowedOrigins: ['https://app.example', 'http://localhost:5173'] })
  const tok = a.token({ sub: 'alice' })
  await expectRefused(t, a, `${a.ws}/ws/chat`, { ...bearer(tok), origin: 'https://evil.example' }, 403, 'origin_forbidden', 'evil origin')
  await expectRefused(t, a, `${a.ws}/ws/chat`, { ...bearer(tok), origin: 'https://app.example.evil.com' }, 403, 'origin_forbidden', 'prefix match is no match')
  await expectRefused(t, a, `${a.ws}/ws/chat`, { ...bearer(tok), origin: 'null' }, 403, 'origin_forbidden', 'opaque origin "null"')
  await expectRefused(t, a, `${a.ws}/ws/chat?token=${tok}`, { origin: 'https://evil.example' }, 403, 'origin_forbidden', 'evil origin, query token')

  const ok1 = await connect(`${a.ws}/ws/chat`, { ...bearer(tok), origin: 'https://app.example' })
  const ok2 = await connect(`${a.ws}/ws/chat`, { ...bearer(tok), origin: 'http://localhost:5173' })
  const ok3 = await connect(`${a.ws}/ws/chat`, bearer(tok)) // non-browser client: no Origin
  closeAtEnd(t, ok1, ok2, ok3)
  for (const c of [ok1, ok2, ok3]) t.equal((await c.nextOfType('ready')).userId, 'alice')
})

t.test('any Origin is accepted when allowedOrigins is not set', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, { ...bearer(a.token({ sub: 'alice' })), origin: 'https://anything.example' })
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'alice')
})

t.test('403 channel not matching the channels claim; glob matches accepted', async t => {
  const a = await start(t)
  const tok = a.token({ sub: 'alice', channels: ['room:*', 'lobby'] })
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(tok), 403, 'channel_forbidden', 'unlisted channel')
  await expectRefused(t, a, `${a.ws}/ws/lobby2`, bearer(tok), 403, 'channel_forbidden', 'exact pattern is anchored')
  await expectRefused(t, a, `${a.ws}/ws/xroom:1`, bearer(tok), 403, 'channel_forbidden', 'glob is anchored at the start')
  await expectRefused(t, a, `${a.ws}/ws/roomy`, bearer(tok), 403, 'channel_forbidden', 'glob keeps its literal part')
  // an empty list allows nothing
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(a.token({ sub: 'bob', channels: [] })), 403, 'channel_forbidden', 'empty channels claim')
  // a `.` in the pattern is literal, not a regexp wildcard
  await expectRefused(t, a, `${a.ws}/ws/aXb`, bearer(a.token({ sub: 'bob', channels: ['a.b'] })), 403, 'channel_forbidden', 'dot is literal')

  const c1 = await connect(`${a.ws}/ws/room:1`, bearer(tok))
  const c2 = await connect(`${a.ws}/ws/room:deep.nested@x`, bearer(tok))
  const c3 = await connect(`${a.ws}/ws/lobby`, bearer(tok))
  const c4 = await connect(`${a.ws}/ws/room:`, bearer(tok))
  closeAtEnd(t, c1, c2, c3, c4)
  t.equal((await c1.nextOfType('ready')).channel, 'room:1')
  t.equal((await c2.nextOfType('ready')).channel, 'room:deep.nested@x')
  t.equal((await c3.nextOfType('ready')).channel, 'lobby')
  t.equal((await c4.nextOfType('ready')).channel, 'room:')
})

t.test('403 user-limited channel dm#alice,bob for carol; alice and bob accepted', async t => {
  const a = await start(t)
  const url = `${a.ws}/ws/dm%23alice,bob`
  await expectRefused(t, a, url, bearer(a.token({ sub: 'carol' })), 403, 'channel_forbidden', 'carol')
  await expectRefused(t, a, url, bearer(a.token({ sub: 'ali' })), 403, 'channel_forbidden', 'prefix of a listed id')
  await expectRefused(t, a, url, bearer(a.token({ sub: 'alice,bob' })), 403, 'channel_forbidden', 'the whole list as an id')
  const alice = await connect(url, bearer(a.token({ sub: 'alice' })))
  const bob = await connect(url, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, alice, bob)
  t.equal((await alice.nextOfType('ready')).channel, 'dm#alice,bob')
  t.equal((await bob.nextOfType('ready')).channel, 'dm#alice,bob')
  // and they share it
  alice.send({ type: 'publish', data: 'psst' })
  t.same((await bob.nextOfType('message')).data, 'psst')
  // a channels claim still applies on top of the user list
  await expectRefused(t, a, url, bearer(a.token({ sub: 'alice', channels: ['room:*'] })), 403, 'channel_forbidden', 'alice with a narrower claim')
})

t.test('429 upgrade rate (wsUpgradeRate: 3 per minute per IP)', async t => {
  const a = await start(t, { wsUpgradeRate: 3 })
  const tok = a.token({ sub: 'alice' })
  const clients = []
  for (let i = 0; i < 3; i++) clients.push(await connect(`${a.ws}/ws/chat`, bearer(tok)))
  closeAtEnd(t, ...clients)
  const res = await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(tok), 429, 'rate_limited', '4th upgrade')
  t.ok(res.headers['retry-after'] !== undefined, 'Retry-After header present')
  // below the limit nothing is computed for headers a 101 cannot carry, refusals included
  const below = await start(t, { wsUpgradeRate: 3 })
  const refused = await expectRefused(t, below, `${below.ws}/ws/chat`, {}, 401, 'token_missing', 'refused below the upgrade limit')
  t.equal(refused.headers['x-ratelimit-remaining'], undefined, 'no x-ratelimit-remaining on it')
  // another user from the same IP is limited too: the limit is per IP
  await expectRefused(t, a, `${a.ws}/ws/other`, bearer(a.token({ sub: 'bob' })), 429, 'rate_limited', 'other user, same IP')
  // the open sockets are unaffected
  for (const c of clients) await pingPong(c)
})

t.test('429 per-user socket cap (wsSocketsPerUser: 2)', async t => {
  const a = await start(t, { wsSocketsPerUser: 2 })
  const alice = a.token({ sub: 'alice' })
  const c1 = await connect(`${a.ws}/ws/chat`, bearer(alice))
  const c2 = await connect(`${a.ws}/ws/other`, bearer(alice))
  closeAtEnd(t, c1, c2)
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(alice), 429, 'too_many_sockets', 'third socket, same channel')
  await expectRefused(t, a, `${a.ws}/ws/third`, bearer(a.token({ sub: 'alice' })), 429, 'too_many_sockets', 'third socket, other token of the same user')
  // other users are not affected
  const bob = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'bob' })))
  closeAtEnd(t, bob)
  t.equal((await bob.nextOfType('ready')).userId, 'bob')
  // once one closes, alice may open another
  c1.close()
  await closedWithin(c1, 2000)
  await waitFor(async () => (await a.app.gatecast.userStatus('alice')).connections === 1, { ms: 2000, what: 'alice down to one socket' })
  const c3 = await connect(`${a.ws}/ws/chat`, bearer(alice))
  closeAtEnd(t, c3)
  t.equal((await c3.nextOfType('ready')).userId, 'alice')
  await pingPong(c2)
})

t.test('per-user socket cap holds under concurrent upgrades', async t => {
  const a = await start(t, { wsSocketsPerUser: 2 })
  const tok = a.token({ sub: 'alice' })
  const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => connect(`${a.ws}/ws/chat`, bearer(tok))))
  const opened = attempts.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  closeAtEnd(t, ...opened)
  const refusals = attempts.flatMap(r => r.status === 'rejected' ? [String(r.reason)] : [])
  t.ok(refusals.every(m => m.includes('429')), `every refusal is a 429 (${refusals.join('; ')})`)
  t.equal(opened.length, 2, `exactly wsSocketsPerUser sockets opened (got ${opened.length})`)
  t.ok((await a.app.gatecast.userStatus('alice')).connections <= 2, 'the engine never counts more than the cap')
})

t.test('426 for a plain HTTP GET', async t => {
  const a = await start(t)
  const tok = a.token({ sub: 'alice' })
  for (const [label, res] of [
    ['with token', await api(a.base, 'GET', '/ws/chat', { headers: { authorization: `Bearer ${tok}` } })],
    ['without token', await api(a.base, 'GET', '/ws/chat')],
    ['query token', await api(a.base, 'GET', `/ws/chat?token=${tok}`)]
  ] as const) {
    t.equal(res.status, 426, `${label}: 426`)
    t.match(res.body, { statusCode: 426, error: 'Upgrade Required', message: String, code: 'upgrade_required' }, `${label}: JSON error body`)
  }
  t.equal(a.app.gatecast.hub.size, 0, 'no socket')
})
