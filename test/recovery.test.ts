// Reconnecting with `?since=<last id>`: a full replay or `recovered: false`,
// never a partial one, and never a gap or a duplicate at the replay/live seam.
import t from 'tap'
import WebSocket from 'ws'
import { startApp, type TestApp } from './helpers/app.ts'
import { Client, type Frame } from './helpers/client.ts'
import { sleep } from './helpers/wait.ts'

const noUsersFile = () => null

/** Opens a socket without consuming anything, so the very first frame can be checked. */
async function open (app: TestApp, channel: string, since?: string, sub = 'alice'): Promise<Client> {
  const query = since === undefined ? '' : `?since=${encodeURIComponent(since)}`
  const ws = new WebSocket(`${app.ws}/ws/${encodeURIComponent(channel)}${query}`, { headers: { authorization: `Bearer ${app.token({ sub })}` } })
  const c = new Client(ws)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
  return c
}

/** The first frame, which must be `ready`. */
async function ready (c: Client): Promise<Frame> {
  const first = await c.next()
  if (first.type !== 'ready') throw new Error(`first frame is ${JSON.stringify(first)}, not ready`)
  return first
}

async function publish (app: TestApp, channel: string, data: unknown): Promise<string> {
  return (await app.app.gatecast.publish(channel, data)).id
}

async function quiet (c: Client, ms = 150): Promise<Frame[]> {
  await sleep(ms)
  return c.frames.splice(0)
}

t.test('since = last id seen: ready recovered:true, exactly the missed messages in order, then live ones', async t => {
  const app = await startApp(t, { verifyCredentials: noUsersFile })
  // a witness stays connected the whole time: replayed frames must be identical to what it saw live
  const witness = await open(app, 'chat', undefined, 'bob')
  t.teardown(() => witness.ws.terminate())
  await ready(witness)

  const c1 = await open(app, 'chat')
  const r1 = await ready(c1)
  t.notOk('recovered' in r1, 'no `recovered` without since')
  await publish(app, 'chat', { n: 1 })
  await publish(app, 'chat', { n: 2 })
  const seen = [await c1.nextOfType('message'), await c1.nextOfType('message')]
  t.same(seen.map(m => m.data.n), [1, 2])
  c1.close()
  await c1.closed

  const missed = [
    await publish(app, 'chat', { n: 3 }),
    await publish(app, 'chat', 'four'),
    await publish(app, 'chat', null)
  ]
  await publish(app, 'elsewhere', { n: 'not this channel' })

  const c2 = await open(app, 'chat', seen[1].id)
  t.teardown(() => c2.ws.terminate())
  const r2 = await ready(c2)
  t.equal(r2.recovered, true)
  t.equal(r2.channel, 'chat')
  t.equal(r2.userId, 'alice')
  const live = await publish(app, 'chat', { n: 'live' })

  const frames = [await c2.next(), await c2.next(), await c2.next(), await c2.next()]
  t.same(frames.map(f => f.id), [...missed, live], 'the missed ones in publish order, then the live one')
  t.ok(frames.every(f => f.type === 'message' && f.channel === 'chat'))
  t.same(frames.map(f => f.data), [{ n: 3 }, 'four', null, { n: 'live' }])

  const witnessed = [] as Frame[]
  for (let i = 0; i < 6; i++) witnessed.push(await witness.nextOfType('message'))
  t.same(frames.slice(0, 3), witnessed.slice(2, 5), 'replayed frames are the original frames (id, from, data, ts)')
  t.same(await quiet(c2), [], 'nothing more: no duplicates')
})

t.test('since = the newest id: recovered:true and nothing replayed', async t => {
  const app = await startApp(t, { verifyCredentials: noUsersFile })
  const ids = [await publish(app, 'chat', 1), await publish(app, 'chat', 2)]
  const c = await open(app, 'chat', ids[1])
  t.teardown(() => c.ws.terminate())
  const r = await ready(c)
  t.equal(r.recovered, true)
  t.same(await quiet(c), [], 'nothing replayed')
  const live = await publish(app, 'chat', 3)
  const m = await c.next()
  t.equal(m.type, 'message')
  t.equal(m.id, live, 'the next frame is the live message')
})

t.test('history trimmed by size: recovered:false and nothing replayed, never a partial replay', async t => {
  const app = await startApp(t, { config: { historySize: 5 }, verifyCredentials: noUsersFile })
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(await publish(app, 'chat', { i }))

  // history holds ids[5..9]: since ids[4] still reaches back exactly far enough
  const full = await open(app, 'chat', ids[4])
  t.teardown(() => full.ws.terminate())
  t.equal((await ready(full)).recovered, true, 'the boundary: every missed message is still there')
  const replayed = [] as Frame[]
  for (let i = 0; i < 5; i++) replayed.push(await full.next())
  t.same(replayed.map(f => f.id), ids.slice(5))
  t.same(await quiet(full), [])

  for (const since of [ids[3], ids[0]]) {
    const c = await open(app, 'chat', since)
    t.teardown(() => c.ws.terminate())
    const r = await ready(c)
    t.equal(r.recovered, false, `since ${since}: history does not reach back`)
    t.same(await quiet(c), [], 'and none of the kept messages is replayed')
    const live = await publish(app, 'chat', 'live')
    const m = await c.next()
    t.equal(m.id, live, 'live messages flow normally afterwards')
  }
})

t.test('since from another epoch, another channel or beyond the stream: recovered:false', async t => {
  const app = await startApp(t, { verifyCredentials: noUsersFile })
  const ids = [await publish(app, 'chat', 1), await publish(app, 'chat', 2)]
  const otherChannel = await publish(app, 'other', 'x')
  const epoch = ids[0].slice(0, ids[0].lastIndexOf(':'))
  const cases: Array<[string, string, string]> = [
    ['chat', 'zzz:1', 'a fabricated epoch'],
    ['chat', 'zzz:0', 'a fabricated epoch at seq 0'],
    ['chat', otherChannel, 'an id of another channel'],
    ['chat', `${epoch}:999`, 'a seq the stream never reached'],
    ['never-used', 'zzz:1', 'a channel without any history']
  ]
  for (const [channel, since, what] of cases) {
    const c = await open(app, channel, since)
    t.teardown(() => c.ws.terminate())
    const r = await ready(c)
    t.equal(r.recovered, false, what)
    t.same(await quiet(c, 80), [], `${what}: nothing replayed`)
    c.close()
  }
})

t.test('history TTL (namespace historyTtl: 1): recovered:false once the missed messages expired', async t => {
  const app = await startApp(t, { config: { channels: { brief: { historyTtl: 1 } } }, verifyCredentials: noUsersFile })
  const ids = [await publish(app, 'brief:1', 'a'), await publish(app, 'brief:1', 'b'), await publish(app, 'brief:1', 'c')]
  const plain = [await publish(app, 'plain', 'p1'), await publish(app, 'plain', 'p2 is kept for the default 300 s')]

  const before = await open(app, 'brief:1', ids[0])
  t.teardown(() => before.ws.terminate())
  t.equal((await ready(before)).recovered, true, 'within the TTL: recovered')
  t.same([(await before.next()).id, (await before.next()).id], ids.slice(1))
  before.close()

  await sleep(1300)

  const after = await open(app, 'brief:1', ids[0])
  t.teardown(() => after.ws.terminate())
  t.equal((await ready(after)).recovered, false, 'after the TTL: not recovered')
  t.same(await quiet(after), [], 'nothing replayed')

  const newest = await open(app, 'brief:1', ids[2])
  t.teardown(() => newest.ws.terminate())
  t.equal((await ready(newest)).recovered, true, 'since the newest id nothing was missed, expired or not')
  t.same(await quiet(newest, 50), [])

  const other = await open(app, 'plain', plain[0])
  t.teardown(() => other.ws.terminate())
  const r = await ready(other)
  t.equal(r.recovered, true, 'a channel outside the namespace keeps its history')
  t.equal((await other.next()).id, plain[1])
})

t.test('client publishes keep the namespace history size (historySize: 2)', async t => {
  const app = await startApp(t, { config: { channels: { brief: { historySize: 2 } } }, verifyCredentials: noUsersFile })
  const pub = await open(app, 'brief:2')
  t.teardown(() => pub.ws.terminate())
  await ready(pub)
  const ids: string[] = []
  for (let i = 1; i <= 4; i++) {
    pub.send({ type: 'publish', data: i, ref: i })
    ids.push(String((await pub.nextOfType('ack')).id))
  }
  const kept = await open(app, 'brief:2', ids[1])
  t.teardown(() => kept.ws.terminate())
  t.equal((await ready(kept)).recovered, true, 'the last two are kept')
  t.same([(await kept.next()).id, (await kept.next()).id], ids.slice(2))
  const lost = await open(app, 'brief:2', ids[0])
  t.teardown(() => lost.ws.terminate())
  t.equal((await ready(lost)).recovered, false, 'the second one was trimmed: no partial replay')
})

t.test('RACE: a client cycling with since while a publisher never stops gets every id exactly once, in order', async t => {
  const app = await startApp(t, { config: { historySize: 100_000, wsMessageRate: 10_000 }, verifyCredentials: noUsersFile })
  const received: string[] = []
  const recovered: unknown[] = []
  let last: string | undefined

  // the first socket is on the channel before the first publish
  let c = await open(app, 'race')
  await ready(c)

  const published: string[] = []
  const run = { stop: false }
  const publisher = (async () => {
    let n = 0
    while (!run.stop) {
      published.push(await publish(app, 'race', { n: n++ }))
      // yield to the event loop now and then, so sockets and upgrades make progress meanwhile
      if (n % 5 === 0) await new Promise(resolve => setImmediate(resolve))
      if (n % 200 === 0) await sleep(1)
    }
  })()

  const CYCLES = 30
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    // take a few messages (sometimes none), then drop the socket in different ways
    const take = cycle === 0 ? 1 : cycle % 5
    for (let i = 0; i < take; i++) {
      const m = await c.next(undefined, 5000)
      if (m.type !== 'message') throw new Error(`unexpected frame ${JSON.stringify(m)}`)
      received.push(m.id)
      last = m.id
    }
    if (cycle % 3 === 0) c.ws.terminate()
    else if (cycle % 3 === 1) c.close()
    else { c.close(); await c.closed }
    // reconnect at once, or after a short pause while the publisher runs on
    if (cycle % 4 === 3) await sleep(cycle % 7)
    if (last === undefined) throw new Error('no message seen in the first cycle')
    c = await open(app, 'race', last)
    const r = await ready(c)
    recovered.push(r.recovered)
  }
  run.stop = true
  await publisher

  // drain: everything up to the last published id
  const end = published[published.length - 1]
  while (last !== end) {
    const m = await c.next(undefined, 5000)
    if (m.type !== 'message') throw new Error(`unexpected frame ${JSON.stringify(m)}`)
    received.push(m.id)
    last = m.id
  }
  t.same(await quiet(c), [], 'nothing after the last published message')
  c.ws.terminate()

  t.ok(published.length > 100, `the publisher kept publishing during the cycles (${published.length} messages)`)
  t.equal(recovered.length, CYCLES, `${recovered.length} reconnects with since`)
  t.ok(recovered.every(r => r === true), 'every reconnect recovered')
  t.equal(new Set(received).size, received.length, 'no duplicates')
  const diff = published.findIndex((id, i) => received[i] !== id)
  t.equal(diff, -1, diff === -1 ? 'no gap' : `first difference at ${diff}: published ${published[diff]}, received ${received[diff]}`)
  t.equal(received.length, published.length, 'every published id, once')
})
