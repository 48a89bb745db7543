// The broker of both engines, the same cases on each: ids, delivery, recovery
// (exact, never partial, expiry), history paging, transient frames, control.
import t from 'tap'
import type * as Tap from 'tap'
import { messageFrameText } from '../../src/protocol/frames.ts'
import type { Engine, HistoryOptions } from '../../src/engine/index.ts'
import { Cluster } from 'ioredis'
import { KINDS, openEngine, until } from '../helpers/engine.ts'
import { clusterUrl, seedsOf } from '../helpers/redis-cluster.ts'

const KEEP: HistoryOptions = { historySize: 100, historyTtl: 60 }

/** Publishes data 1..n from `alice`; resolves to the ids and the frames each must have. */
async function publishN (engine: Engine, channel: string, n: number, opts = KEEP, ts = Date.now()) {
  const ids: string[] = []
  const frames: string[] = []
  for (let i = 1; i <= n; i++) {
    const id = await engine.broker.publish(channel, { from: 'alice', dataJson: String(i), ts }, opts)
    ids.push(id)
    frames.push(messageFrameText(channel, id, 'alice', String(i), ts))
  }
  return { ids, frames, ts }
}

const epochOf = (id: string) => id.slice(0, id.indexOf(':'))
const seqOf = (id: string) => Number(id.slice(id.indexOf(':') + 1))

/**
 * One Redis and memory count 1, 2, 3…; a cluster's sequences follow the shard's
 * clock (a failover cannot hand one out twice): rising, not by one.
 */
function counting (t: Tap.Test, kind: string, ids: string[], label: string): void {
  const seqs = ids.map(seqOf)
  if (kind !== 'cluster') t.strictSame(seqs, seqs.map((_s, i) => i + 1), `${label}: 1, 2, 3…`)
  else t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `${label}: rising`)
}

for (const kind of KINDS) {
  t.test(`${kind}: ids count up per channel in one epoch; each publish is delivered once`, async t => {
    const { engine, rec } = await openEngine(t, kind)
    await engine.broker.subscribe('a')
    await engine.broker.subscribe('b')
    const a = await publishN(engine, 'a', 3)
    const b = await publishN(engine, 'b', 1)
    for (const id of [...a.ids, ...b.ids]) t.match(id, /^[a-z0-9]{1,16}:\d+$/)
    counting(t, kind, a.ids, 'channel a')
    t.equal(new Set(a.ids.map(epochOf)).size, 1, 'one epoch')
    if (kind !== 'cluster') t.strictSame(b.ids.map(seqOf), [1], 'sequences are per channel')
    await until(() => rec.deliveries.length === 4, 'four deliveries')
    t.strictSame(rec.of('a'), a.frames.map((frame, i) => ({ channel: 'a', seq: seqOf(a.ids[i]), frame, ts: a.ts })))
    t.strictSame(rec.of('b'), [{ channel: 'b', seq: seqOf(b.ids[0]), frame: b.frames[0], ts: b.ts }])
  })

  t.test(`${kind}: recover gives exactly the messages after since`, async t => {
    const { engine } = await openEngine(t, kind)
    const { ids, frames } = await publishN(engine, 'r', 5)
    const top = seqOf(ids[4])
    t.strictSame(await engine.broker.recover('r', ids[1]), { recovered: true, frames: frames.slice(2), top })
    t.strictSame(await engine.broker.recover('r', ids[0]), { recovered: true, frames: frames.slice(1), top })
    t.strictSame(await engine.broker.recover('r', ids[4]), { recovered: true, frames: [], top }, 'up to date: nothing to replay')
    const epoch = epochOf(ids[0])
    t.strictSame(await engine.broker.recover('r', `${epoch}:${top + 1}`), { recovered: false, frames: [], top }, 'ahead of the stream')
    const other = epoch === 'zz' ? 'zy' : 'zz'
    t.strictSame(await engine.broker.recover('r', `${other}:${seqOf(ids[1])}`), { recovered: false, frames: [], top }, 'another epoch')
    if (kind === 'cluster') {
      // a number between two real ones was never an id: no entry names it as the one before
      const between = seqOf(ids[1]) + 1
      const real = between === seqOf(ids[2])
      t.strictSame(await engine.broker.recover('r', `${epoch}:${between}`), { recovered: real, frames: real ? frames.slice(3) : [], top }, 'not an id of the stream')
    }
    const garbage = await engine.broker.recover('r', 'not an id')
    t.strictSame([garbage.recovered, garbage.frames], [false, []])
    const unknown = await engine.broker.recover('never-published', ids[1])
    t.strictSame([unknown.recovered, unknown.frames], [false, []])
  })

  t.test(`${kind}: recover is never partial once history lost the start`, async t => {
    const { engine } = await openEngine(t, kind)
    const { ids, frames } = await publishN(engine, 'p', 6, { historySize: 3, historyTtl: 60 })
    const top = seqOf(ids[5])
    t.strictSame(await engine.broker.recover('p', ids[0]), { recovered: false, frames: [], top }, 'messages 2 and 3 are gone')
    t.strictSame(await engine.broker.recover('p', ids[1]), { recovered: false, frames: [], top }, 'message 3 is gone')
    t.strictSame(await engine.broker.recover('p', ids[2]), { recovered: true, frames: frames.slice(3), top }, 'history reaches back exactly')
  })

  t.test(`${kind}: expired entries count as lost`, async t => {
    const { engine } = await openEngine(t, kind)
    const opts = { historySize: 10, historyTtl: 1 }
    const old = await publishN(engine, 'e', 2, opts, Date.now() - 5000)
    t.strictSame(await engine.broker.recover('e', old.ids[0]), { recovered: false, frames: [], top: seqOf(old.ids[1]) })
    t.strictSame(await engine.broker.history('e', { limit: 10 }), { messages: [], recovered: true })
    const ts = Date.now()
    const id3 = await engine.broker.publish('e', { from: null, dataJson: '3', ts }, opts)
    const frame3 = messageFrameText('e', id3, null, '3', ts)
    counting(t, kind, [...old.ids, id3], 'after expiry the count goes on')
    const top = seqOf(id3)
    t.strictSame(await engine.broker.recover('e', old.ids[0]), { recovered: false, frames: [], top }, 'message 2 expired: a gap')
    t.strictSame(await engine.broker.recover('e', old.ids[1]), { recovered: true, frames: [frame3], top })
    t.strictSame((await engine.broker.history('e', { limit: 10 })).messages.map(m => m.data), [3])
  })

  t.test(`${kind}: with history off, messages are delivered and not kept`, async t => {
    const { engine, rec } = await openEngine(t, kind)
    await engine.broker.subscribe('off')
    const { ids, frames } = await publishN(engine, 'off', 2, { historySize: 0, historyTtl: 60 })
    await until(() => rec.of('off').length === 2, 'both delivered')
    t.strictSame(rec.of('off').map(d => d.frame), frames)
    t.strictSame(await engine.broker.history('off', { limit: 10 }), { messages: [], recovered: true })
    const top = seqOf(ids[1])
    t.strictSame(await engine.broker.recover('off', ids[0]), { recovered: false, frames: [], top })
    t.strictSame(await engine.broker.recover('off', ids[1]), { recovered: true, frames: [], top }, 'up to date needs no history')
  })

  t.test(`${kind}: history pages forward after since, newest without, oldest first`, async t => {
    const { engine } = await openEngine(t, kind)
    const { ids, ts } = await publishN(engine, 'h', 5)
    const all = await engine.broker.history('h', { limit: 10 })
    t.strictSame(all, { recovered: true, messages: ids.map((id, i) => ({ id, channel: 'h', from: 'alice', data: i + 1, ts })) })
    const data = async (opts: { since?: string, limit: number }) => {
      const r = await engine.broker.history('h', opts)
      return { recovered: r.recovered, data: r.messages.map(m => m.data) }
    }
    t.strictSame(await data({ limit: 2 }), { recovered: true, data: [4, 5] }, 'the newest two')
    t.strictSame(await data({ since: ids[0], limit: 2 }), { recovered: true, data: [2, 3] }, 'the next two after since')
    t.strictSame(await data({ since: ids[3], limit: 10 }), { recovered: true, data: [5] })
    t.strictSame(await data({ since: ids[4], limit: 10 }), { recovered: true, data: [] })
    t.strictSame(await data({ since: `${epochOf(ids[0]) === 'q' ? 'r' : 'q'}:1`, limit: 10 }), { recovered: false, data: [] })
    t.strictSame(await data({ limit: 10, since: undefined }), { recovered: true, data: [1, 2, 3, 4, 5] })
    t.strictSame(await engine.broker.history('empty', { limit: 10 }), { messages: [], recovered: true })
  })

  t.test(`${kind}: transient frames are delivered with seq 0 and ts 0 and not kept`, async t => {
    const { engine, rec } = await openEngine(t, kind)
    await engine.broker.subscribe('tr')
    const frame = '{"type":"presence","channel":"tr","event":"join","userId":"bob"}'
    await engine.broker.publishTransient('tr', frame)
    await until(() => rec.of('tr').length === 1, 'the transient frame')
    t.strictSame(rec.of('tr'), [{ channel: 'tr', seq: 0, frame, ts: 0 }])
    t.strictSame(await engine.broker.history('tr', { limit: 10 }), { messages: [], recovered: true })
  })

  t.test(`${kind}: control messages reach this node`, async t => {
    const { engine, rec } = await openEngine(t, kind)
    const msgs = [
      { kind: 'kick', userId: 'bob' },
      { kind: 'revoke', userId: 'bob', jti: 'j"1' },
      { kind: 'user', userId: 'bob', frame: '{"type":"direct"}' },
      { kind: 'all', frame: '{"x":"☃"}' }
    ] as const
    for (const m of msgs) await engine.broker.control(m)
    await until(() => rec.controls.length === msgs.length, 'every control message')
    t.strictSame(rec.controls, msgs)
    t.strictSame(rec.deliveries, [], 'no channel delivery')
  })
}

t.test('cluster: a stream that lost acknowledged entries (a failover to a replica that missed them) never replays wrongly and starts a new epoch', async t => {
  const { engine, prefix } = await openEngine(t, 'cluster')
  const url = await clusterUrl(t)
  const raw = new Cluster(seedsOf(url))
  t.teardown(() => raw.disconnect())
  const { ids } = await publishN(engine, 'lost', 4)
  // what a replica promoted before it got messages 3 and 4 holds: top at 2, entries 3 and 4 gone
  const meta = `${prefix}:{ch:lost}:meta`
  const hist = `${prefix}:{ch:lost}:hist`
  await raw.hset(meta, 'top', String(seqOf(ids[1])))
  await raw.xdel(hist, `${seqOf(ids[2])}-0`, `${seqOf(ids[3])}-0`)
  const top = seqOf(ids[1])
  t.strictSame(await engine.broker.recover('lost', ids[3]), { recovered: false, frames: [], top }, 'a since the stream no longer reaches')
  t.strictSame(await engine.broker.recover('lost', ids[1]), { recovered: false, frames: [], top }, 'a since before the loss: the lost messages cannot be replayed, so nothing is')
  t.strictSame(await engine.broker.recover('lost', ids[0]), { recovered: false, frames: [], top })
  const next = await engine.broker.publish('lost', { from: null, dataJson: '5', ts: Date.now() }, KEEP)
  t.not(epochOf(next), epochOf(ids[0]), 'the next publish starts a new epoch')
  t.ok(seqOf(next) > seqOf(ids[3]), 'and numbers above every sequence handed out')
  t.strictSame(await engine.broker.recover('lost', ids[1]), { recovered: false, frames: [], top: seqOf(next) }, 'an old since: recovered false')
  t.strictSame((await engine.broker.history('lost', { limit: 10 })).messages.map(m => m.data), [5], 'the old epoch\'s history is gone')
})

t.test('cluster: a node that saw entries a failover lost ends their epoch when the next message (from a node that did not) reaches it', async t => {
  const watcher = await openEngine(t, 'cluster')
  const publisher = await openEngine(t, 'cluster', { prefix: watcher.prefix })
  const url = await clusterUrl(t)
  const raw = new Cluster(seedsOf(url))
  t.teardown(() => raw.disconnect())
  await watcher.engine.broker.subscribe('gap')
  const { ids } = await publishN(publisher.engine, 'gap', 4)
  await until(() => watcher.rec.of('gap').length === 4, 'the watcher saw all four')
  // the replica that took over had only the first two
  const p = watcher.prefix
  await raw.hset(`${p}:{ch:gap}:meta`, 'top', String(seqOf(ids[1])))
  await raw.xdel(`${p}:{ch:gap}:hist`, `${seqOf(ids[2])}-0`, `${seqOf(ids[3])}-0`)
  // a third node, which never saw the channel, publishes next: its entry follows the second
  const fresh = await openEngine(t, 'cluster', { prefix: p })
  const next = await fresh.engine.broker.publish('gap', { from: null, dataJson: '5', ts: Date.now() }, KEEP)
  t.equal(epochOf(next), epochOf(ids[0]), 'the publishing node knew of no loss')
  await until(() => watcher.rec.of('gap').length === 5, 'the watcher got it')
  await until(async () => await raw.hget(`${p}:{ch:gap}:meta`, 'epoch') !== epochOf(ids[0]), 'the watcher ended the epoch')
  const r = await fresh.engine.broker.recover('gap', ids[1])
  t.equal(r.recovered, false, 'a since from before the loss is not answered with a replay that lacks messages 3 and 4')
  t.same(r.frames, [])
})
