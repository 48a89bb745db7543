// Presence of both engines, the same cases on each: joined/left per user and
// channel counted per subscription, the channel list, a user's status, and
// socket slots per user.
import t from 'tap'
import type { Engine } from '../../src/engine/index.ts'
import { KINDS, openEngine } from '../helpers/engine.ts'

const byUser = <T extends { userId: string }>(a: T[]) => [...a].sort((x, y) => x.userId.localeCompare(y.userId))
const byName = <T extends { name: string }>(a: T[]) => [...a].sort((x, y) => x.name.localeCompare(y.name))

async function status (engine: Engine, userId: string) {
  const s = await engine.presence.userStatus(userId)
  return { connections: s.connections, channels: [...s.channels].sort() }
}

for (const kind of KINDS) {
  t.test(`${kind}: joined on a user's first connection, left after the last`, async t => {
    const { engine } = await openEngine(t, kind)
    const p = engine.presence
    t.strictSame(await p.addConnection({ connectionId: 'c1', userId: 'alice', channel: 'room:1' }), { joined: true })
    t.strictSame(await p.addConnection({ connectionId: 'c2', userId: 'alice', channel: 'room:1' }), { joined: false }, 'second socket of alice')
    t.strictSame(await p.addConnection({ connectionId: 'c3', userId: 'bob', channel: 'room:1' }), { joined: true })
    t.strictSame(await p.addConnection({ connectionId: 'c4', userId: 'alice', channel: 'room:2' }), { joined: true }, 'first on another channel')

    t.strictSame(byUser(await p.presence('room:1')), [{ userId: 'alice', connections: 2 }, { userId: 'bob', connections: 1 }])
    t.strictSame(await p.presence('room:2'), [{ userId: 'alice', connections: 1 }])
    t.strictSame(await p.presence('nobody-here'), [])
    t.strictSame(byName(await p.channels()), [{ name: 'room:1', connections: 3, users: 2 }, { name: 'room:2', connections: 1, users: 1 }])
    t.strictSame(await status(engine, 'alice'), { connections: 0, channels: ['room:1', 'room:2'] }, 'subscriptions are not sockets')
    t.strictSame(await status(engine, 'bob'), { connections: 0, channels: ['room:1'] })
    t.strictSame(await status(engine, 'ghost'), { connections: 0, channels: [] })

    t.strictSame(await p.removeConnection({ connectionId: 'c1', userId: 'alice', channel: 'room:1' }), { left: false }, 'alice has another socket')
    t.strictSame(byUser(await p.presence('room:1')), [{ userId: 'alice', connections: 1 }, { userId: 'bob', connections: 1 }])
    t.strictSame(await p.removeConnection({ connectionId: 'c2', userId: 'alice', channel: 'room:1' }), { left: true })
    t.strictSame(await p.presence('room:1'), [{ userId: 'bob', connections: 1 }])
    t.strictSame(await status(engine, 'alice'), { connections: 0, channels: ['room:2'] })
    t.strictSame(await p.removeConnection({ connectionId: 'c3', userId: 'bob', channel: 'room:1' }), { left: true })
    t.strictSame(await p.presence('room:1'), [])
    t.strictSame(await p.channels(), [{ name: 'room:2', connections: 1, users: 1 }], 'an empty channel leaves the list')
    t.strictSame(await status(engine, 'bob'), { connections: 0, channels: [] })
    t.strictSame(await p.removeConnection({ connectionId: 'c4', userId: 'alice', channel: 'room:2' }), { left: true })
    t.strictSame(await p.channels(), [])
    t.strictSame(await status(engine, 'alice'), { connections: 0, channels: [] })
  })

  t.test(`${kind}: socket slots: exact under concurrency, given back, counted in the user's status`, async t => {
    const { engine } = await openEngine(t, kind)
    const p = engine.presence
    const tries = await Promise.all(Array.from({ length: 20 }, () => p.reserveSocket('alice', 3)))
    t.equal(tries.filter(Boolean).length, 3, '20 at once, 3 slots: exactly 3 taken')
    t.strictSame(await status(engine, 'alice'), { connections: 3, channels: [] })
    t.equal(await p.reserveSocket('bob', 3), true, 'per user')
    await p.releaseSocket('alice')
    t.equal(await p.reserveSocket('alice', 3), true, 'a slot given back is free again')
    t.equal(await p.reserveSocket('alice', 3), false)
    await Promise.all([p.releaseSocket('alice'), p.releaseSocket('alice'), p.releaseSocket('alice')])
    t.strictSame(await status(engine, 'alice'), { connections: 0, channels: [] })
    await p.releaseSocket('alice')
    t.strictSame(await status(engine, 'alice'), { connections: 0, channels: [] }, 'never below zero')
    t.equal((await Promise.all([p.reserveSocket('alice', 1), p.reserveSocket('alice', 1)])).filter(Boolean).length, 1)
  })

  t.test(`${kind}: a user who comes back joins again`, async t => {
    const { engine } = await openEngine(t, kind)
    const ref = { connectionId: 'c1', userId: 'u#"1', channel: 'ns:x#u#"1' }
    t.strictSame(await engine.presence.addConnection(ref), { joined: true })
    t.strictSame(await engine.presence.removeConnection(ref), { left: true })
    t.strictSame(await engine.presence.addConnection({ ...ref, connectionId: 'c2' }), { joined: true })
    t.strictSame(await engine.presence.presence(ref.channel), [{ userId: ref.userId, connections: 1 }])
  })
}
