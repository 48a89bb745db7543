// What only a Redis Cluster engine does (the suites of test/engine run on it
// too): topics on their slot's shard, channels found by a scan of the masters,
// a dead node's socket slots kept in each user's slot, the history byte
// indexes kept up in batches.
import { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { messageFrameText } from '../../src/protocol/frames.ts'
import { openEngine, until } from '../helpers/engine.ts'
import { mastersServe } from '../../src/engine/redis/connection.ts'
import { clusterUrl, seedsOf } from '../helpers/redis-cluster.ts'

const KEEP = { historySize: 100, historyTtl: 60 }

async function raw (t: Test): Promise<Cluster> {
  const c = new Cluster(seedsOf(await clusterUrl(t)))
  t.teardown(() => c.disconnect())
  return c
}

t.test('two nodes on a cluster are one gateway: channels on every shard, control and presence', async t => {
  const a = await openEngine(t, 'cluster')
  const b = await openEngine(t, 'cluster', { prefix: a.prefix })
  // enough channels to land on all three shards
  const channels = Array.from({ length: 12 }, (_v, i) => `room:${i}`)
  // asked of one node, one after another: a fresh cluster client may drop commands sent
  // in a burst while it first learns the slots (a test client's quirk, not the engine's)
  const one = new Redis(seedsOf(await clusterUrl(t))[0])
  t.teardown(() => one.disconnect())
  const shards = await one.cluster('SLOTS') as Array<[number, number]>
  const slots = new Set<number>()
  for (const c of channels) {
    const slot = await one.cluster('KEYSLOT', `${a.prefix}:{ch:${c}}:pub`) as number
    slots.add(shards.findIndex(([from, to]) => slot >= from && slot <= to))
  }
  t.equal(slots.size, 3, 'the channels live on three shards')
  for (const c of channels) await b.engine.broker.subscribe(c)
  const ts = Date.now()
  const ids: string[] = []
  for (const c of channels) ids.push(await a.engine.broker.publish(c, { from: 'alice', dataJson: JSON.stringify(c), ts }, KEEP))
  await until(() => b.rec.deliveries.length === channels.length, 'every channel heard on the other node')
  t.strictSame(b.rec.deliveries.map(d => d.frame).sort(), channels.map((c, i) => messageFrameText(c, ids[i], 'alice', JSON.stringify(c), ts)).sort())
  t.strictSame(a.rec.deliveries, [], 'a node not subscribed hears nothing')

  await a.engine.broker.control({ kind: 'all', frame: '{}' })
  await until(() => a.rec.controls.length === 1 && b.rec.controls.length === 1, 'control on both nodes')

  for (const [i, c] of channels.entries()) {
    await (i % 2 === 0 ? a : b).engine.presence.addConnection({ connectionId: `c${i}`, userId: `u${i % 3}`, channel: c })
  }
  const listed = await a.engine.presence.channels()
  t.strictSame(listed.map(c => c.name), [...channels].sort(), 'every channel, from every master')
  t.ok(listed.every(c => c.users === 1 && c.connections === 1))
  t.strictSame(await b.engine.presence.userStatus('u0'), { connections: 0, channels: ['room:0', 'room:3', 'room:6', 'room:9'] })
})

t.test('a dead node\'s socket slots are given back from each user\'s slot, and its presence with them', async t => {
  const { engine, rec, prefix: p } = await openEngine(t, 'cluster', { nodeTimeoutMs: 300 })
  const r = await raw(t)
  t.equal(await engine.presence.reserveSocket('alice', 10), true)
  await engine.presence.addConnection({ connectionId: 'c1', userId: 'alice', channel: 'room:1' })
  // what a node that crashed would have left on a cluster: two sockets of zed, one of alice
  await Promise.all([
    r.hincrby(`${p}:{ch:room:1}:users`, 'zed', 2), r.hincrby(`${p}:{u:zed}:chans`, 'room:1', 2),
    r.hincrby(`${p}:{ch:room:1}:users`, 'alice', 1), r.hincrby(`${p}:{u:alice}:chans`, 'room:1', 1),
    r.set(`${p}:{u:zed}:socks`, 2), r.incrby(`${p}:{u:alice}:socks`, 1),
    r.hset(`${p}:{u:zed}:nodes`, 'dead-1', 2), r.hset(`${p}:{u:alice}:nodes`, 'dead-1', 1),
    // a user listed who has no slot there any more costs nothing
    r.sadd(`${p}:node:dead-1:users`, 'zed', 'alice', 'gone'),
    r.hset(`${p}:node:dead-1:conns`, 'room:1\nzed', 2, 'room:1\nalice', 1)
  ])
  await r.hset(`${p}:nodes`, 'dead-1', Date.now() - 10_000)
  t.strictSame((await engine.presence.userStatus('alice')).connections, 2)
  await until(async () => (await r.hexists(`${p}:nodes`, 'dead-1')) === 0, 'the dead node reaped')
  t.strictSame(await engine.presence.presence('room:1'), [{ userId: 'alice', connections: 1 }])
  t.strictSame(await engine.presence.userStatus('zed'), { connections: 0, channels: [] })
  t.strictSame(await engine.presence.userStatus('alice'), { connections: 1, channels: ['room:1'] }, 'the dead node\'s slot of alice is back, this node\'s stays')
  t.strictSame(await r.hgetall(`${p}:{u:alice}:nodes`), { [await nodeIdOf(r, p)]: '1' })
  t.equal(await r.exists(`${p}:{u:zed}:socks`), 0)
  t.equal(await r.exists(`${p}:node:dead-1:users`), 0)
  t.strictSame(rec.lost, [{ channel: 'room:1', userId: 'zed' }])
  // this node's own slot comes back on release
  await engine.presence.releaseSocket('alice')
  t.strictSame((await engine.presence.userStatus('alice')).connections, 0)
})

/** the id of the live node of prefix `p` (the one beating) */
async function nodeIdOf (r: Cluster, p: string): Promise<string> {
  const beats = await r.hgetall(`${p}:nodes`)
  return Object.keys(beats)[0]
}

t.test('history bytes reach the indexes (one slot, one step) in batches, and a trim takes them out', async t => {
  const { engine, prefix: p } = await openEngine(t, 'cluster')
  const r = await raw(t)
  for (let i = 0; i < 5; i++) await engine.broker.publish('h1', { from: null, dataJson: '"x"', ts: Date.now() }, { historySize: 3, historyTtl: 60 })
  const bytes = Number(await r.hget(`${p}:{ch:h1}:meta`, 'bytes'))
  t.ok(bytes > 0, `the channel counts its own bytes (${bytes})`)
  // the two indexes are on their own slots, written together: either may land first
  await until(async () => Number(await r.get(`${p}:{hist}:histtotal`)) === bytes && Number(await r.zscore(`${p}:{hist}:histsizes`, 'h1')) === bytes, 'the total and the channel\'s size follow within a batch')
  t.equal(await r.xlen(`${p}:{ch:h1}:hist`), 3, 'trimmed to the history size')
  // an eviction's trim takes bytes out of both indexes together, and an empty channel leaves the sizes
  await engine.broker.publish('h2', { from: null, dataJson: '"y"', ts: Date.now() }, { historySize: 3, historyTtl: 60 })
  await (engine.broker as unknown as { settled: () => Promise<void> }).settled()
  await r.del(`${p}:{ch:h1}:hist`)
  await (engine.broker as unknown as { sweepHistory: (ms: number) => Promise<void> }).sweepHistory(2000)
  t.equal(await r.zscore(`${p}:{hist}:histsizes`, 'h1'), null, 'the vanished stream left the sizes')
  t.equal(Number(await r.get(`${p}:{hist}:histtotal`)), Number(await r.zscore(`${p}:{hist}:histsizes`, 'h2')), 'the total is h2 alone')
})

t.test('mastersServe: ready unless a master that serves slots is failing', async t => {
  const line = (flags: string, slots = '0-5460') => `id1 127.0.0.1:7000@17000 ${flags} - 0 0 1 connected${slots === '' ? '' : ' ' + slots}`
  t.equal(mastersServe([line('myself,master'), line('slave', ''), ''].join('\n')), true)
  t.equal(mastersServe(line('master,fail?')), false, 'suspected (fail?) from the moment it stops answering')
  t.equal(mastersServe(line('master,fail')), false, 'failed, its replica not promoted yet')
  t.equal(mastersServe(line('master,fail', '')), true, 'a dead master whose slots moved to its replica')
  t.equal(mastersServe(line('slave,fail', '')), true, 'a dead replica')
})
