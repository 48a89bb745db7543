// What only the Redis engine does: its keys, topics and payloads (unchanged,
// so nodes of the previous version and operators' tooling still agree), the
// epoch reset when a channel's meta key is lost, several nodes on one prefix,
// heartbeats and the reaping of dead nodes.
import t from 'tap'
import { messageFrameText } from '../../src/protocol/frames.ts'
import { openEngine, rawRedis, until } from '../helpers/engine.ts'

const KEEP = { historySize: 100, historyTtl: 60 }

t.test('keys and their TTLs', async t => {
  const { engine, prefix: p } = await openEngine(t, 'redis')
  const r = rawRedis(t)
  const ts = Date.now()
  const id = await engine.broker.publish('room:1', { from: 'alice', dataJson: '{"a":1}', ts }, KEEP)
  const meta = await r.hgetall(`${p}:{ch:room:1}:meta`)
  t.strictSame(meta, { epoch: id.slice(0, id.indexOf(':')), top: '1' })
  const metaTtl = await r.pttl(`${p}:{ch:room:1}:meta`)
  t.ok(metaTtl > 24 * 3600 * 1000 - 60_000, 'meta outlives the last publish by a day')
  const hist = await r.xrange(`${p}:{ch:room:1}:hist`, '-', '+')
  const frame = messageFrameText('room:1', id, 'alice', '{"a":1}', ts)
  t.strictSame(hist, [['1-0', ['e', String(ts + 60_000), 'f', frame, 'b', String(Buffer.byteLength(frame))]]])
  t.equal(Number(await r.zscore(`${p}:histsizes`, 'room:1')), Buffer.byteLength(frame), 'its bytes count against HISTORY_MAX_BYTES')
  t.equal(Number(await r.get(`${p}:histtotal`)), Buffer.byteLength(frame))
  const histTtl = await r.pttl(`${p}:{ch:room:1}:hist`)
  t.ok(histTtl > 59_000 && histTtl <= 60_000, 'history lives for historyTtl')

  await engine.presence.addConnection({ connectionId: 'c1', userId: 'alice', channel: 'room:1' })
  t.strictSame(await r.hgetall(`${p}:{ch:room:1}:users`), { alice: '1' })
  t.strictSame(await r.hgetall(`${p}:{u:alice}:chans`), { 'room:1': '1' })
  t.strictSame(await r.smembers(`${p}:channels`), ['room:1'])
  const nodes = await r.hgetall(`${p}:nodes`)
  t.equal(Object.keys(nodes).length, 1, 'this node beats')
  const node = Object.keys(nodes)[0]
  t.ok(Math.abs(Number(nodes[node]) - Date.now()) < 10_000)
  t.strictSame(await r.hgetall(`${p}:node:${node}:conns`), { 'room:1\nalice': '1' })

  await engine.store.revokeToken('j', 60)
  await engine.store.revokeFamily('f', 60)
  await engine.store.saveRefreshToken('k', { userId: 'alice', family: 'f' }, 60)
  await engine.store.hit('h', 60)
  await engine.store.rateHit('POST/auth/login-127.0.0.1', 60_000)
  t.equal(await r.get(`${p}:revoked:j`), '1')
  t.ok(await r.ttl(`${p}:revoked:j`) > 50)
  t.equal(await r.get(`${p}:family:f`), '1')
  t.strictSame(await r.hgetall(`${p}:rt:k`), { r: '{"userId":"alice","family":"f"}', u: '0' })
  t.ok(await r.ttl(`${p}:rt:k`) > 50)
  t.equal(await r.get(`${p}:hits:h`), '1')
  t.equal(await r.get(`${p}:rl:POST/auth/login-127.0.0.1`), '1', 'rate limits under the prefix the rate-limit store used')
  t.ok(await r.pttl(`${p}:rl:POST/auth/login-127.0.0.1`) > 59_000)
})

t.test('payloads on the channel and control topics', async t => {
  const { engine, prefix: p } = await openEngine(t, 'redis')
  const sub = rawRedis(t)
  const got: Array<[string, string]> = []
  sub.on('message', (topic: string, payload: string) => got.push([topic, payload]))
  await sub.subscribe(`${p}:{ch:room:1}:pub`, `${p}:control`)
  const ts = Date.now()
  const id = await engine.broker.publish('room:1', { from: null, dataJson: '[1]', ts }, { historySize: 0, historyTtl: 60 })
  await engine.broker.publishTransient('room:1', '{"type":"presence"}')
  await engine.broker.control({ kind: 'kick', userId: 'bob' })
  await until(() => got.length === 3, 'three payloads')
  t.strictSame(got, [
    [`${p}:{ch:room:1}:pub`, `1 ${ts} ${messageFrameText('room:1', id, null, '[1]', ts)}`],
    [`${p}:{ch:room:1}:pub`, '0 0 {"type":"presence"}'],
    [`${p}:control`, '{"kind":"kick","userId":"bob"}']
  ])
})

t.test('a lost meta key starts a new epoch, and the old history with it is dropped', async t => {
  const { engine, prefix: p } = await openEngine(t, 'redis')
  const r = rawRedis(t)
  const ids = []
  for (let i = 1; i <= 3; i++) ids.push(await engine.broker.publish('ep', { from: null, dataJson: String(i), ts: Date.now() }, KEEP))
  await r.del(`${p}:{ch:ep}:meta`)
  const fresh = await engine.broker.publish('ep', { from: null, dataJson: '4', ts: Date.now() }, KEEP)
  t.not(fresh.slice(0, fresh.indexOf(':')), ids[0].slice(0, ids[0].indexOf(':')), 'a new epoch')
  t.equal(fresh.slice(fresh.indexOf(':') + 1), '1', 'counting from 1 again')
  t.strictSame(await engine.broker.recover('ep', ids[2]), { recovered: false, frames: [], top: 1 }, 'the old since is unrecoverable')
  t.strictSame((await engine.broker.history('ep', { limit: 10 })).messages.map(m => m.data), [4])
  t.equal(await r.xlen(`${p}:{ch:ep}:hist`), 1)
})

t.test('nodes on one prefix are one gateway', async t => {
  const a = await openEngine(t, 'redis')
  const b = await openEngine(t, 'redis', { prefix: a.prefix })
  await b.engine.broker.subscribe('x')
  const ts = Date.now()
  const id = await a.engine.broker.publish('x', { from: 'alice', dataJson: '"hi"', ts }, KEEP)
  await until(() => b.rec.deliveries.length === 1, 'the other node hears it')
  t.strictSame(b.rec.deliveries, [{ channel: 'x', seq: 1, frame: messageFrameText('x', id, 'alice', '"hi"', ts), ts }])
  t.strictSame(a.rec.deliveries, [], 'a node not subscribed hears nothing')
  await b.engine.broker.unsubscribe('x')
  await a.engine.broker.publish('x', { from: 'alice', dataJson: '"again"', ts }, KEEP)
  await a.engine.broker.control({ kind: 'all', frame: '{}' })
  await until(() => a.rec.controls.length === 1 && b.rec.controls.length === 1, 'control on both nodes')
  t.equal(b.rec.deliveries.length, 1, 'nothing after unsubscribe')

  t.strictSame(await a.engine.presence.addConnection({ connectionId: 'a1', userId: 'alice', channel: 'room' }), { joined: true })
  t.strictSame(await b.engine.presence.addConnection({ connectionId: 'b1', userId: 'alice', channel: 'room' }), { joined: false }, 'joined is cluster-wide')
  t.strictSame(await b.engine.presence.presence('room'), [{ userId: 'alice', connections: 2 }])
  t.strictSame(await a.engine.presence.removeConnection({ connectionId: 'a1', userId: 'alice', channel: 'room' }), { left: false })
  t.strictSame(await b.engine.presence.removeConnection({ connectionId: 'b1', userId: 'alice', channel: 'room' }), { left: true })
})

t.test('a node that stops beating is reaped by another; leave reported only for users gone everywhere', async t => {
  const { engine, rec, prefix: p, log } = await openEngine(t, 'redis', { nodeTimeoutMs: 300 })
  const r = rawRedis(t)
  await engine.presence.addConnection({ connectionId: 'c1', userId: 'alice', channel: 'room:1' })
  // what a node that crashed would have left: two sockets of zed, one of alice
  await r.multi()
    .hincrby(`${p}:{ch:room:1}:users`, 'zed', 2).hincrby(`${p}:{u:zed}:chans`, 'room:1', 2)
    .hincrby(`${p}:{ch:room:1}:users`, 'alice', 1).hincrby(`${p}:{u:alice}:chans`, 'room:1', 1)
    .set(`${p}:{u:zed}:socks`, 2).set(`${p}:{u:alice}:socks`, 2)
    .hset(`${p}:node:dead-1:conns`, 'room:1\nzed', 2, 'room:1\nalice', 1, '\nzed', 2, '\nalice', 1)
    .hset(`${p}:nodes`, 'dead-1', Date.now() - 10_000)
    .exec()
  t.equal((await engine.presence.presence('room:1')).length, 2)
  await until(async () => (await r.hexists(`${p}:nodes`, 'dead-1')) === 0, 'the dead node reaped')
  t.strictSame(await engine.presence.presence('room:1'), [{ userId: 'alice', connections: 1 }])
  t.strictSame(await engine.presence.userStatus('zed'), { connections: 0, channels: [] })
  t.strictSame(await engine.presence.userStatus('alice'), { connections: 1, channels: ['room:1'] }, 'the socket slots of the dead node are given back')
  t.equal(await r.exists(`${p}:{u:zed}:socks`), 0)
  t.equal(await r.exists(`${p}:node:dead-1:conns`), 0)
  t.strictSame(rec.lost, [{ channel: 'room:1', userId: 'zed' }])
  t.ok(log.some(l => l.level === 'info' && l.msg === 'removed a dead node from presence' && (l.obj as { connections: number }).connections === 4))
  t.ok(engine.health().rttMs !== null, 'the heartbeat measured the round trip')
})

t.test('a node that closes takes its connections out of presence at once', async t => {
  const a = await openEngine(t, 'redis')
  const b = await openEngine(t, 'redis', { prefix: a.prefix })
  const r = rawRedis(t)
  await a.engine.presence.addConnection({ connectionId: 'a1', userId: 'alice', channel: 'room' })
  await b.engine.presence.addConnection({ connectionId: 'b1', userId: 'bob', channel: 'room' })
  t.equal(Object.keys(await r.hgetall(`${a.prefix}:nodes`)).length, 2)
  t.equal(a.engine.isReady(), true)
  await a.close()
  await until(() => !a.engine.isReady(), 'not ready once closed')
  t.strictSame(await b.engine.presence.presence('room'), [{ userId: 'bob', connections: 1 }])
  t.strictSame(await b.engine.presence.userStatus('alice'), { connections: 0, channels: [] })
  t.equal(Object.keys(await r.hgetall(`${a.prefix}:nodes`)).length, 1, 'only the other node is left')
  t.strictSame([a.rec.lost, b.rec.lost], [[], []], 'a clean leave is no loss')
  t.strictSame(b.engine.health().errors, 0)
})
