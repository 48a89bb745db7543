// HISTORY_MAX_BYTES on both engines: history has an overall bound, the oldest
// entries of the largest channels go first, and a client asking for them gets
// recovered: false, never a partial replay. Any user can create channels and
// fill their history: without the bound it stayed for HISTORY_TTL.
import t from 'tap'
import type { Engine } from '../../src/engine/index.ts'
import { waterLevel } from '../../src/engine/redis/broker.ts'
import { startApp } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'
import { KINDS, openEngine, rawRedis } from '../helpers/engine.ts'

const opts = { historySize: 1000, historyTtl: 300 }
const data = (n: number, size: number): string => JSON.stringify({ n, pad: 'p'.repeat(size) })

async function fill (engine: Engine, channel: string, count: number, size: number): Promise<string[]> {
  const ids: string[] = []
  for (let n = 0; n < count; n++) ids.push(await engine.broker.publish(channel, { from: null, dataJson: data(n, size), ts: Date.now() }, opts))
  return ids
}

async function kept (engine: Engine, channel: string): Promise<number[]> {
  const { messages } = await engine.broker.history(channel, { limit: 10_000 })
  return messages.map(m => (m.data as { n: number }).n)
}

async function settled (engine: Engine): Promise<void> {
  await (engine.broker as unknown as { settled?: () => Promise<void> }).settled?.()
}

for (const kind of KINDS) {
  t.test(`${kind}: past the bound the largest channel loses its oldest entries first; small channels keep theirs`, async t => {
    // each entry is a frame of about 1.1 KB: 100 KB hold about 90 of them
    const { engine } = await openEngine(t, kind, { historyMaxBytes: 100_000 })
    const small = await fill(engine, 'small', 10, 1000)
    const big = await fill(engine, 'big', 150, 1000)
    await settled(engine)
    const bigKept = await kept(engine, 'big')
    t.same(await kept(engine, 'small'), [...Array(10).keys()], 'the small channel keeps all of its history')
    t.ok(bigKept.length < 150 && bigKept.length > 40, `the big channel keeps its newest (${bigKept.length} of 150)`)
    t.same(bigKept, bigKept.map((_n, i) => 150 - bigKept.length + i), 'the newest, contiguous: the oldest went')
    const total = (bigKept.length + 10) * 1100
    t.ok(total <= 100_000, `within the bound (about ${total} bytes)`)

    const lost = await engine.broker.recover('big', big[0])
    t.same([lost.recovered, lost.frames.length], [false, 0], 'asking for evicted entries: recovered false, nothing replayed')
    const fine = await engine.broker.recover('big', big[148])
    t.same([fine.recovered, fine.frames.length], [true, 1], 'what is kept still recovers')
    const smallAll = await engine.broker.recover('small', small[0])
    t.same([smallAll.recovered, smallAll.frames.length], [true, 9])
  })

  t.test(`${kind}: equal channels share the cut, and trimming by size gives its bytes back`, async t => {
    const { engine } = await openEngine(t, kind, { historyMaxBytes: 100_000 })
    for (let round = 0; round < 40; round++) {
      for (const c of ['a', 'b', 'c']) await engine.broker.publish(c, { from: null, dataJson: data(round, 1000), ts: Date.now() }, opts)
    }
    await settled(engine)
    const counts = await Promise.all(['a', 'b', 'c'].map(async c => (await kept(engine, c)).length))
    t.ok(counts.every(n => n > 10), `every channel keeps a share (${counts.join(', ')})`)
    t.ok(counts.reduce((s, n) => s + n, 0) * 1100 <= 100_000, 'within the bound')
    // a size limit that keeps 5 entries: what it drops no longer counts, so nothing else is evicted
    for (let n = 0; n < 20; n++) await engine.broker.publish('d', { from: null, dataJson: data(n, 1000), ts: Date.now() }, { historySize: 5, historyTtl: 300 })
    await settled(engine)
    t.same(await kept(engine, 'd'), [15, 16, 17, 18, 19])
  })
}

t.test('waterLevel: the highest level that frees enough, largest channels first', async t => {
  t.equal(waterLevel([100, 50, 10], 30), 70, 'the largest alone gives 30')
  t.equal(waterLevel([100, 50, 10], 60), 45, 'two cut to one level: 55 + 5')
  t.equal(waterLevel([40, 40, 40], 30), 30, 'equal channels share the cut')
  t.equal(waterLevel([10, 10], 50), 0, 'not enough here: all of them, and the next round goes on')
  t.equal(waterLevel([], 10), 0)
})

t.test('a user who fills history over many channels and leaves cannot grow it past HISTORY_MAX_BYTES', async t => {
  const a = await startApp(t, { config: { usersFile: null, historyMaxBytes: 1_000_000, wsMessageRate: 1000 } })
  const chunk = 'm'.repeat(60_000)
  const channels = ['junk:1', 'junk:2', 'junk:3']
  const sockets = await Promise.all(channels.map(c => connect(`${a.ws}/ws/${c}`, { headers: { authorization: `Bearer ${a.token({ sub: 'mallory' })}` } })))
  t.teardown(() => { for (const s of sockets) s.ws.terminate() })
  // 300 messages of 60 KB, 18 MB, sent at once over three sockets
  for (let n = 0; n < 100; n++) for (const s of sockets) s.send({ type: 'publish', data: { n, chunk }, ref: n })
  await Promise.all(sockets.map(async s => { for (let n = 0; n < 100; n++) await s.next(f => f.type === 'ack' && f.ref === n, 10_000) }))
  const first = (await a.app.gatecast.history('junk:1', { limit: 1000 })).messages
  for (const s of sockets) s.ws.close()
  const kept = (a.app.engine.broker as unknown as { historyBytes: number }).historyBytes
  t.ok(kept <= 1_000_000, `history holds ${kept} bytes of 18 MB published`)
  t.ok(kept > 500_000, 'and still the newest of it')
  t.ok(first.length > 0 && first.length < 100, `a channel keeps its newest (${first.length} of 100)`)
  t.equal((first.at(-1)?.data as { n: number }).n, 99)
})

t.test('redis: a channel whose history expired stops counting (sweep, and before any eviction), so live channels are not cut for it', async t => {
  const { engine, prefix } = await openEngine(t, 'redis', { historyMaxBytes: 100_000 })
  const r = rawRedis(t)
  for (let n = 0; n < 60; n++) await engine.broker.publish('idle', { from: null, dataJson: data(n, 1000), ts: Date.now() }, { historySize: 1000, historyTtl: 1 })
  t.ok(Number(await r.get(`${prefix}:histtotal`)) > 60_000, 'counted while kept')
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.equal(await r.exists(`${prefix}:{ch:idle}:hist`), 0, 'the stream expired with its TTL')
  // a live channel now goes over the bound with the stale count: only the stale one may go
  for (let n = 0; n < 40; n++) await engine.broker.publish('live', { from: null, dataJson: data(n, 1000), ts: Date.now() }, opts)
  await settled(engine)
  t.same((await kept(engine, 'live')).length, 40, 'the live channel keeps all 40: the expired one was taken out instead')
  t.equal(await r.zscore(`${prefix}:histsizes`, 'idle'), null)

  for (let n = 0; n < 5; n++) await engine.broker.publish('brief', { from: null, dataJson: data(n, 1000), ts: Date.now() }, { historySize: 1000, historyTtl: 1 })
  await new Promise(resolve => setTimeout(resolve, 1200))
  await (engine.broker as unknown as { sweepHistory: (ms: number) => Promise<void> }).sweepHistory(5000)
  t.equal(await r.zscore(`${prefix}:histsizes`, 'brief'), null, 'the periodic sweep takes it out too')
  t.equal(Number(await r.get(`${prefix}:histtotal`)), Number(await r.zscore(`${prefix}:histsizes`, 'live')), 'the total is the live channel alone')
})
