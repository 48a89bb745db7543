// Fan-out through the hub: order, one frame's bytes for every socket, the
// frames held behind `ready`, slow consumers, control messages and shutdown.
import t from 'tap'
import { CloseCodes } from '../../src/protocol/codes.ts'
import { frameText } from '../../src/protocol/wire.ts'
import { Session } from '../../src/core/session.ts'
import { Hub } from '../../src/core/hub.ts'
import { Stats } from '../../src/core/stats.ts'
import { createMemoryEngine } from '../../src/engine/index.ts'
import { Subscription } from '../../src/core/subscription.ts'
import { captureLogger, coreNode, fakeHost, FakeTransport } from '../helpers/core.ts'
import { sleep } from '../helpers/wait.ts'

t.test('every socket on a channel gets every message once, in publish order, as the same bytes', async t => {
  const n = await coreNode(t)
  const a = await n.connect('chat')
  const b = await n.connect('chat', { sub: 'bob' })
  const other = await n.connect('elsewhere')
  for (let i = 0; i < 50; i++) await n.gatecast.publish('chat', i)
  const seq = (s: FakeTransport) => s.frames().filter(f => f.type === 'message').map(f => f.data)
  t.same(seq(a), [...Array(50).keys()])
  t.same(seq(b), [...Array(50).keys()])
  t.same(seq(other), [], 'another channel gets nothing')
  t.equal(a.written[1], b.written[1], 'one Buffer for all sockets: no per-socket encoding')
  const fanout = n.stats.fanout.snapshot()
  t.equal(fanout.sum, 100, 'two sockets for each of the 50 messages')
  t.equal(fanout.count, 50)
})

t.test('frames wait behind ready; the replay and the live frames meet without gap or duplicate', async t => {
  const n = await coreNode(t)
  const tr = new FakeTransport()
  const s = new Session(fakeHost(n.log, n.stats), tr, { id: 'c1', userId: 'alice', pathChannel: 'chat', remoteAddress: '127.0.0.1', identity: { userId: 'alice', roles: [] } })
  const sub = new Subscription(s, 'chat', n.gatecast.rules.resolve('chat'), 'client')
  s.add(sub)
  const msg = (seq: number) => `{"type":"message","channel":"chat","id":"e:${seq}","from":null,"data":${seq},"ts":1}`
  sub.offer(4, frameText(msg(4)))
  s.send('{"type":"direct","id":"d","from":null,"data":"hello","ts":1}')
  sub.offer(5, frameText(msg(5)))
  t.equal(tr.written.length, 0, 'nothing before ready')
  s.open('{"type":"ready","channel":"chat"}')
  sub.open([msg(3), msg(4)], 4)
  t.same(tr.frames().map(f => f.type === 'message' ? f.data : f.type), ['ready', 'direct', 3, 4, 5], 'ready, what the socket had waiting, the replay, then what the channel had waiting less what the replay held')
  sub.offer(4, frameText(msg(4)))
  t.equal(tr.frames().length, 5, 'a late live copy of a replayed message is dropped')
  sub.offer(6, frameText(msg(6)))
  t.equal(tr.frames().at(-1)?.data, 6, 'live afterwards')
  sub.offer(3, frameText(msg(3)))
  t.equal(tr.frames().at(-1)?.data, 3, 'once a newer message came, the filter is over (a restarted stream counts from 1)')
})

t.test('a slow consumer is closed 4408 and gets nothing more; a backlog the kernel takes is not one', async t => {
  const n = await coreNode(t, { wsSendBuffer: 4096 })
  const slow = await n.connect('chat')
  const fine = await n.connect('chat', { sub: 'bob' })
  fine.buffered = 10_000
  fine.backlogBytes = 100
  await n.gatecast.publish('chat', 'one')
  t.equal(fine.closedWith, null, 'over the limit only until this turn\'s bytes are offered to the kernel')
  slow.buffered = 4 * 4096 + 1
  await n.gatecast.publish('chat', 'two')
  t.same(slow.closedWith, { code: CloseCodes.slowConsumer, reason: 'slow consumer' }, 'past four times the limit: at once')
  const count = slow.written.length
  await n.gatecast.publish('chat', 'three')
  t.equal(slow.written.length, count, 'nothing written after the close')
  t.equal(fine.frames().filter(f => f.type === 'message').length, 3, 'the other socket missed nothing')
  t.equal(n.gatecast.hub.size, 1)
})

t.test('a backlog over the limit is judged over time: drained within a second it is no slow consumer; kept for a second it is', async t => {
  const n = await coreNode(t, { wsSendBuffer: 4096 })
  const burst = await n.connect('chat')
  const stuck = await n.connect('chat', { sub: 'bob' })
  burst.buffered = stuck.buffered = 10_000
  await n.gatecast.publish('chat', 'one')
  t.equal(burst.closedWith, null, 'a burst over the limit is not judged at once')
  t.equal(stuck.closedWith, null)
  await sleep(600)
  burst.buffered = 100
  await n.gatecast.publish('chat', 'two')
  burst.buffered = 10_000
  await sleep(600)
  await n.gatecast.publish('chat', 'three')
  t.equal(burst.closedWith, null, 'it drained in between: the clock started again')
  t.same(stuck.closedWith, { code: CloseCodes.slowConsumer, reason: 'slow consumer' }, 'over the limit for 1.2 s')
})

t.test('direct frames, kicks and revocations reach exactly their sockets', async t => {
  const n = await coreNode(t)
  const alice1 = await n.connect('a', { jti: 'j1' })
  const alice2 = await n.connect('b', { jti: 'j2' })
  const bob = await n.connect('a', { sub: 'bob' })
  await n.gatecast.sendToUser('alice', { hi: 1 })
  t.match(alice1.frames().at(-1), { type: 'direct', from: null, data: { hi: 1 } })
  t.match(alice2.frames().at(-1), { type: 'direct', data: { hi: 1 } })
  t.equal(bob.frames().length, 1, 'bob got only his ready')
  await n.gatecast.broadcast('all')
  t.match(bob.frames().at(-1), { type: 'direct', data: 'all' })
  await n.auth.logout({ userId: 'alice', roles: [], jti: 'j1' })
  t.same(alice1.closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' })
  t.equal(alice2.closedWith, null, 'the other token stays')
  await n.gatecast.disconnectUser('alice')
  t.same(alice2.closedWith, { code: CloseCodes.forbidden, reason: 'disconnected by the server' })
  t.equal(bob.closedWith, null)
})

t.test('shutdown closes every socket 1001 and waits for them to go, within the deadline', async t => {
  const n = await coreNode(t)
  const a = await n.connect('a')
  const b = await n.connect('b')
  let goneAt = 0
  setTimeout(() => { a.gone(1001) }, 20)
  setTimeout(() => { goneAt = Date.now(); b.gone(1001) }, 60)
  const started = Date.now()
  await n.gatecast.shutdown(5000)
  t.ok(goneAt > 0 && Date.now() >= goneAt, 'waited for the last socket to go')
  t.ok(Date.now() - started < 2000, 'returned once both were gone, not at the deadline')
  t.same(a.closedWith, { code: CloseCodes.shuttingDown, reason: 'server shutting down' })
  t.same(b.closedWith, { code: CloseCodes.shuttingDown, reason: 'server shutting down' })
  t.ok(a.terminated && b.terminated, 'and terminated at the end')
  t.equal(n.gatecast.hub.size, 0)
})

t.test('shutdown does not wait past its deadline for a socket that never goes', async t => {
  const n = await coreNode(t)
  const a = await n.connect('a')
  const started = Date.now()
  await n.gatecast.shutdown(100)
  const took = Date.now() - started
  t.ok(took >= 95, `waited for the deadline (${took} ms)`)
  t.ok(took < 1000, 'and not longer')
  t.ok(a.terminated, 'then dropped the socket')
})

t.test('a logout between admission and attach still closes the socket 4401, before ready', async t => {
  const n = await coreNode(t)
  const upgrade = async (jti: string) => n.gatecast.admit({ channel: 'chat', tokens: { query: { token: n.token({ jti }) } }, remoteAddress: '127.0.0.1' })
  const late = await upgrade('late')
  const other = await upgrade('other')
  // the revocation reaches the hub while no session has the token yet
  await n.auth.logout({ userId: 'alice', roles: [], jti: 'late' })
  const revoked = new FakeTransport()
  await n.gatecast.attach(revoked, late)
  t.same(revoked.closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' }, 'closed as an open socket would be')
  t.same(revoked.types(), [], 'never got ready')
  const fine = new FakeTransport()
  await n.gatecast.attach(fine, other)
  t.equal(fine.closedWith, null, 'another token of the same user is not affected')
  t.same(fine.types(), ['ready'])
  t.equal(n.gatecast.hub.size, 1, 'only the other socket is on the hub')
  await n.gatecast.publish('chat', 'after')
  t.same(revoked.types(), [], 'the revoked socket gets nothing')
  await t.rejects(upgrade('late'), { statusCode: 401, code: 'token_revoked' }, 'a new upgrade with it is refused as before')
})

t.test('a token with a numeric jti is revoked like any other', async t => {
  const n = await coreNode(t)
  const token = n.token({ jti: 77 })
  const admission = await n.gatecast.admit({ channel: 'chat', tokens: { query: { token } }, remoteAddress: '127.0.0.1' })
  const open = new FakeTransport()
  await n.gatecast.attach(open, admission)
  t.same(open.types(), ['ready'])
  await n.auth.logout(await n.auth.verifyAccess(token))
  t.same(open.closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' })
  await t.rejects(n.auth.verifyAccess(token), { statusCode: 401, code: 'token_revoked' })
})

t.test('remembered revocations are bounded in time and in number', async t => {
  const engine = createMemoryEngine()
  const stats = new Stats()
  const log = captureLogger()
  const hub = new Hub({ broker: engine.broker, stats, log, pingInterval: 60, expiryGrace: 0, onPresenceLost: () => {}, rememberRevoked: { ms: 200, max: 2 } })
  t.teardown(() => hub.closeAll(0))
  const host = { ...fakeHost(log, stats), drop: (s: Session) => { hub.forget(s) } }
  let ids = 0
  const adopt = (jti: string, userId = 'alice'): FakeTransport => {
    const tr = new FakeTransport()
    hub.adopt(new Session(host, tr, { id: `c${++ids}`, userId, pathChannel: null, remoteAddress: '127.0.0.1', identity: { userId, roles: [], jti } }))
    return tr
  }
  const revoke = (jti: string, userId = 'alice'): void => { hub.control({ kind: 'revoke', userId, jti }) }

  revoke('j1')
  t.same(adopt('j1').closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' }, 'remembered')
  t.same(adopt('j1').closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' }, 'for every session with it, not once')
  t.same(adopt('j1', 'bob').closedWith, { code: CloseCodes.unauthorized, reason: 'token revoked' }, 'by jti, as the auth store revokes it')
  t.equal(adopt('j0').closedWith, null, 'another jti is not')
  revoke('j2')
  revoke('j3')
  t.equal(adopt('j1').closedWith, null, 'past the bound in number the oldest is forgotten')
  t.equal(adopt('j2').closedWith?.code, CloseCodes.unauthorized)
  t.equal(adopt('j3').closedWith?.code, CloseCodes.unauthorized)
  await sleep(250)
  t.equal(adopt('j3').closedWith, null, 'past the bound in time it is forgotten')
  t.equal(hub.size, 3, 'the sessions that were not closed stay adopted')
})
