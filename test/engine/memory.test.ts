// What only the memory engine does: synchronous delivery, and the sweeper
// that drops idle streams unless someone is on the channel.
import { mock } from 'node:test'
import t from 'tap'
import { createMemoryEngine } from '../../src/engine/index.ts'
import { MemoryBroker } from '../../src/engine/memory/broker.ts'
import { MemoryPresence } from '../../src/engine/memory/presence.ts'
import { Recorder } from '../helpers/engine.ts'

const IDLE = 300_000
const epochOf = (id: string) => id.slice(0, id.indexOf(':'))

t.test('delivery happens inside publish, before it resolves', async t => {
  const engine = createMemoryEngine()
  const rec = new Recorder()
  t.equal(engine.isReady(), false, 'not ready before start')
  await engine.start(rec)
  t.equal(engine.isReady(), true)
  const pending = engine.broker.publish('c', { from: null, dataJson: '1', ts: 5 }, { historySize: 1, historyTtl: 60 })
  t.equal(rec.deliveries.length, 1, 'delivered synchronously')
  await pending
  await engine.close()
  t.equal(engine.isReady(), false)
  await engine.broker.publish('c', { from: null, dataJson: '2', ts: 5 }, { historySize: 1, historyTtl: 60 })
  t.equal(rec.deliveries.length, 1, 'nothing delivered after close')
})

t.test('sweep: an idle, empty stream goes unless someone is on the channel', async t => {
  const broker = new MemoryBroker()
  const presence = new MemoryPresence()
  const occupied = (c: string) => presence.occupied(c)
  const now = Date.now()
  // published long ago with a 1 s history: nothing left, idle for longer than IDLE
  const old = await broker.publish('c', { from: null, dataJson: '1', ts: now - IDLE - 1000 }, { historySize: 10, historyTtl: 1 })
  await presence.addConnection({ connectionId: 'x', userId: 'u', channel: 'c' })
  broker.sweep(now, occupied)
  t.strictSame(await broker.recover('c', old), { recovered: true, frames: [], top: 1 }, 'kept while someone is on the channel')
  await presence.removeConnection({ connectionId: 'x', userId: 'u', channel: 'c' })
  t.equal(presence.occupied('c'), false)
  broker.sweep(now, occupied)
  t.strictSame(await broker.recover('c', old), { recovered: false, frames: [], top: 0 }, 'dropped: the old since is unrecoverable')
  const fresh = await broker.publish('c', { from: null, dataJson: '2', ts: now }, { historySize: 10, historyTtl: 60 })
  t.not(epochOf(fresh), epochOf(old), 'a new epoch')
  t.match(fresh, /:1$/)
})

t.test('sweep: a stream with history left, or published lately, stays', async t => {
  const broker = new MemoryBroker()
  const now = Date.now()
  const kept = await broker.publish('h', { from: null, dataJson: '1', ts: now - IDLE - 1000 }, { historySize: 10, historyTtl: IDLE })
  const recent = await broker.publish('r', { from: null, dataJson: '1', ts: now - 1000 }, { historySize: 0, historyTtl: 60 })
  broker.sweep(now, () => false)
  t.equal((await broker.recover('h', kept)).recovered, true)
  t.equal((await broker.recover('r', recent)).recovered, true)
  t.strictSame((await broker.history('h', { limit: 10 })).messages.map(m => m.data), [1])
})

t.test('the engine sweeps every 10 s and asks presence first', async t => {
  mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000_000_000 })
  t.teardown(() => mock.timers.reset())
  const engine = createMemoryEngine()
  await engine.start(new Recorder())
  t.teardown(() => engine.close())
  const now = Date.now()
  const id = await engine.broker.publish('c', { from: null, dataJson: '1', ts: now }, { historySize: 10, historyTtl: 1 })
  await engine.presence.addConnection({ connectionId: 'x', userId: 'u', channel: 'c' })
  await engine.store.hit('k', 1)
  mock.timers.tick(IDLE + 10_000)
  t.strictSame(await engine.broker.recover('c', id), { recovered: true, frames: [], top: 1 }, 'kept: someone is on the channel')
  t.equal(await engine.store.hits('k'), 0)
  await engine.presence.removeConnection({ connectionId: 'x', userId: 'u', channel: 'c' })
  mock.timers.tick(10_000)
  t.strictSame(await engine.broker.recover('c', id), { recovered: false, frames: [], top: 0 }, 'swept once the channel is empty')
})
