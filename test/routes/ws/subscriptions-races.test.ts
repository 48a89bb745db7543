// One socket, many channels under concurrency, on the memory engine and on
// Redis (where live frames come by pub/sub and the history read travels
// apart): a socket that keeps subscribing with `since` and unsubscribing while
// a publisher hammers the channel must see nothing of it between
// `unsubscribed` and the next `subscribed`, and lose or double nothing around
// each `subscribed`; a storm of pipelined frames is answered in order and ends
// in the state its last frame asked for; server subscriptions interleave with
// the client's; sockets that go while their subscribes are in flight leave no
// presence behind.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import type { TestApp } from '../../helpers/app.ts'
import type { Client, Frame } from '../../helpers/client.ts'
import { call, cluster, node, seqOf, settle, socket } from '../../helpers/multi.ts'
import { sleep, waitFor } from '../../helpers/wait.ts'
import type { ConfigOverrides } from '../../../src/config/config.ts'

const ENGINES = ['memory', 'redis'] as const

/** [the node that publishes, the node that holds the socket]: two nodes on Redis, so every frame crosses pub/sub. */
async function nodes (t: Test, engine: string, config: ConfigOverrides = {}): Promise<[TestApp, TestApp]> {
  if (engine === 'memory') {
    const a = await node(t, config)
    return [a, a]
  }
  const [a, b] = await cluster(t, 2, config)
  return [a, b]
}

/** Publishes {n} to each channel in turn, as fast as the engine answers, until stopped; resolves to how many per channel. */
function hammer (a: TestApp, channels: string[]): { published: () => number, stop: () => Promise<number> } {
  const state = { running: true }
  let n = 0
  const done = (async () => {
    while (state.running) {
      for (const ch of channels) await a.app.gatecast.publish(ch, { n })
      n++
      // a macrotask turn: sockets must get theirs too
      await sleep(0)
    }
  })()
  return { published: () => n, stop: async () => { state.running = false; await done; return n } }
}

/**
 * A socket that follows `race` from `seed`, flapping its subscription, and
 * `steady` without a break; every frame is checked the moment it arrives.
 */
function follow (c: Client, seedId: string) {
  const st = {
    violations: [] as string[],
    refs: new Set<string>(),
    subscribed: false,
    lastId: seedId,
    lastSeq: seqOf(seedId),
    lastN: -1,
    steadyN: -1,
    raceCount: 0,
    steadyCount: 0,
    recoveredAnswers: 0,
    // resubscriptions that had missed messages to recover
    gaps: 0
  }
  c.ws.removeAllListeners('message')
  c.ws.on('message', raw => {
    const f = JSON.parse(raw.toString()) as Frame
    const v = st.violations
    if (f.type === 'message' && f.channel === 'race') {
      st.raceCount++
      if (!st.subscribed) v.push(`race ${f.data.n} arrived while unsubscribed`)
      if (f.data.n !== st.lastN + 1) v.push(`race ${f.data.n} after ${st.lastN}`)
      if (seqOf(f.id) !== st.lastSeq + 1) v.push(`race id ${f.id} after ${st.lastId}`)
      st.lastN = f.data.n
      st.lastSeq = seqOf(f.id)
      st.lastId = f.id
    } else if (f.type === 'message' && f.channel === 'steady') {
      st.steadyCount++
      if (f.data.n !== st.steadyN + 1) v.push(`steady ${f.data.n} after ${st.steadyN}`)
      st.steadyN = f.data.n
    } else if (f.type === 'subscribed' && f.channel === 'race' && typeof f.ref === 'string') {
      if (f.ref.startsWith('s')) {
        if (st.subscribed) v.push(`${f.ref}: subscribed while subscribed`)
        if (f.recovered !== true) v.push(`${f.ref}: recovered ${String(f.recovered)}`)
        else st.recoveredAnswers++
        st.subscribed = true
      } else if ('recovered' in f || !st.subscribed) {
        v.push(`duplicate ${f.ref}: ${JSON.stringify(f)} (subscribed: ${st.subscribed})`)
      }
      st.refs.add(f.ref)
    } else if (f.type === 'unsubscribed' && f.channel === 'race' && f.reason === 'client') {
      st.subscribed = false
      st.refs.add(String(f.ref))
    } else if (f.type === 'subscribed' && f.channel === 'steady') {
      st.refs.add(String(f.ref))
    } else {
      v.push(`unexpected ${JSON.stringify(f)}`)
    }
  })
  const answered = (ref: string): Promise<void> => waitFor(() => st.refs.has(ref), { what: `the answer to ${ref}` })
  return { st, answered }
}

const CYCLES = 40

/** Subscribes with since and unsubscribes CYCLES times, in the different rhythms a client may use. */
async function flap (c: Client, f: ReturnType<typeof follow>, published: () => number, phase: number): Promise<void> {
  const { st, answered } = f
  for (let i = 0; i < CYCLES; i++) {
    const k = i + phase
    if (published() > st.lastN + 1) st.gaps++
    c.send({ type: 'subscribe', channel: 'race', since: st.lastId, ref: `s${i}` })
    // a duplicate in the same breath: answered, but no second replay and no second copy of anything
    if (k % 4 === 1) c.send({ type: 'subscribe', channel: 'race', since: st.lastId, ref: `d${i}` })
    if (k % 4 === 3) {
      // pipelined: the unsubscribe is on its way before the subscribe is answered
      c.send({ type: 'unsubscribe', channel: 'race', ref: `u${i}` })
    } else {
      await answered(`s${i}`)
      await sleep(k % 3)
      c.send({ type: 'unsubscribe', channel: 'race', ref: `u${i}` })
    }
    await answered(`u${i}`)
    // away for a moment: the next since has something to replay
    await sleep(k % 2 === 0 ? 1 : 6)
  }
  c.send({ type: 'subscribe', channel: 'race', since: st.lastId, ref: 's-final' })
}

for (const engine of ENGINES) {
  t.test(`${engine}: two sockets subscribe with since and unsubscribe, again and again, against a publisher: nothing between unsubscribed and subscribed, ids contiguous, no duplicates; a steady channel on the same socket loses nothing`, async t => {
    const [pub, home] = await nodes(t, engine, { historySize: 100_000 })
    const seed = await pub.app.gatecast.publish('race', { n: -1 })
    // two sockets on one node: the node's own subscription to the channel comes and goes under them too
    const flappers = await Promise.all(['flapper1', 'flapper2'].map(async user => {
      const { c } = await socket(t, home, '/ws', user)
      return { user, c, f: follow(c, seed.id) }
    }))
    for (const { c, f } of flappers) {
      c.send({ type: 'subscribe', channel: 'steady', ref: 'steady' })
      await f.answered('steady')
    }
    const publisher = hammer(pub, ['race', 'steady'])
    await sleep(20)
    await Promise.all(flappers.map(({ c, f }, i) => flap(c, f, publisher.published, i)))
    const total = await publisher.stop()
    for (const { user, f: { st } } of flappers) {
      await waitFor(() => st.lastN === total - 1 && st.steadyN === total - 1, { ms: 8000, what: () => `every message for ${user}: race ${st.lastN}, steady ${st.steadyN} of ${total - 1}` })
    }
    await sleep(150)

    t.ok(total > 100, `the publisher was busy (${total} per channel)`)
    for (const { user, c, f: { st } } of flappers) {
      t.same(st.violations, [], `${user}: no frame while unsubscribed, nothing lost, nothing doubled`)
      t.equal(st.raceCount, total, `${user}: every race message exactly once, over all the subscriptions`)
      t.equal(st.steadyCount, total, `${user}: every steady message exactly once`)
      t.equal(st.recoveredAnswers, CYCLES + 1, `${user}: every resubscription recovered`)
      t.ok(st.gaps >= CYCLES / 4, `${user}: most resubscriptions had messages to recover (${st.gaps} of ${CYCLES})`)
      t.equal(st.subscribed, true)
      t.equal(c.ws.readyState, WebSocket.OPEN)
      const status = await home.app.gatecast.userStatus(user)
      t.same(status.channels.sort(), ['race', 'steady'], `${user}: presence ends as the last answer says`)
    }
    const race = (await home.app.gatecast.presence('race')).users.sort((x, y) => x.userId.localeCompare(y.userId))
    t.same(race, [{ userId: 'flapper1', connections: 1 }, { userId: 'flapper2', connections: 1 }], 'each counted once')
  })

  t.test(`${engine}: a storm of pipelined subscribes and unsubscribes is answered in order and ends as the last frame asked`, async t => {
    const [pub, home] = await nodes(t, engine)
    const { c } = await socket(t, home, '/ws', 'stormy')
    const sent: string[] = []
    for (let i = 0; i < 30; i++) {
      const ref = `${i % 2 === 0 ? 's' : 'u'}${i}`
      sent.push(ref)
      c.send({ type: i % 2 === 0 ? 'subscribe' : 'unsubscribe', channel: 'storm', ref })
    }
    // 30 frames, the last an unsubscribe; then one more subscribe
    c.send({ type: 'subscribe', channel: 'storm', ref: 'last' })
    sent.push('last')
    await waitFor(() => c.frames.some(f => f.ref === 'last'), { what: 'the last answer' })
    const answers = c.frames.splice(0)
    t.same(answers.map(f => f.ref), sent, 'one answer per frame, in the order sent')
    t.ok(answers.every((f, i) => f.type === (i === 30 || i % 2 === 0 ? 'subscribed' : 'unsubscribed') && f.channel === 'storm' && !('recovered' in f)), 'subscribed, unsubscribed, … exactly')
    await waitFor(async () => (await home.app.gatecast.presence('storm')).users.length === 1, { what: 'presence settled' })
    t.same((await home.app.gatecast.presence('storm')).users, [{ userId: 'stormy', connections: 1 }], 'present once')
    const { id } = await pub.app.gatecast.publish('storm', 'once')
    t.match(await c.next(), { type: 'message', id })
    t.same(await settle(c), [], 'delivered once')

    for (let i = 0; i < 20; i++) c.send({ type: i % 2 === 0 ? 'unsubscribe' : 'subscribe', channel: 'storm', ref: `b${i}` })
    c.send({ type: 'unsubscribe', channel: 'storm', ref: 'end' })
    await waitFor(() => c.frames.some(f => f.ref === 'end'), { what: 'the end' })
    t.equal(c.frames.splice(0).length, 21)
    await waitFor(async () => (await home.app.gatecast.presence('storm')).users.length === 0, { what: 'presence emptied' })
    t.same((await home.app.gatecast.channels()).filter(ch => ch.name === 'storm'), [], 'off the channel list')
    await pub.app.gatecast.publish('storm', 'none')
    t.same(await settle(c, 200), [], 'nothing after the last unsubscribe')
  })

  t.test(`${engine}: server subscriptions and the client's interleave; the last answer is the state`, async t => {
    const [pub, home] = await nodes(t, engine)
    const { c } = await socket(t, home, '/ws', 'mixed')
    const calls: Array<Promise<unknown>> = []
    for (let i = 0; i < 10; i++) {
      c.send({ type: 'subscribe', channel: 'mix', ref: `s${i}` })
      calls.push(call(pub, i % 2 === 0 ? 'DELETE' : 'POST', '/api/users/mixed/channels/mix'))
      c.send({ type: 'unsubscribe', channel: 'mix', ref: `u${i}` })
    }
    await Promise.all(calls)
    // the API calls are answered before their frames land on the other node: let them come
    await waitFor(() => c.frames.filter(f => f.ref === undefined).length === 10 && c.frames.some(f => f.ref === 'u9'), { what: 'every answer' })
    const frames = await settle(c, 200)
    t.equal(frames.filter(f => f.ref !== undefined).length, 20, 'one answer per client frame')
    t.equal(frames.filter(f => f.ref === undefined && f.type === 'subscribed' && f.by === 'server').length, 5, 'five server joins answered')
    t.equal(frames.filter(f => f.ref === undefined && f.type === 'unsubscribed' && f.reason === 'server').length, 5, 'five server leaves answered')
    t.same(frames.filter(f => f.ref !== undefined).map(f => f.ref), Array.from({ length: 10 }, (_v, i) => [`s${i}`, `u${i}`]).flat(), 'the client\'s in order')
    const last = frames.filter(f => f.type === 'subscribed' || f.type === 'unsubscribed').at(-1)
    const on = last?.type === 'subscribed'
    await waitFor(async () => (await home.app.gatecast.userStatus('mixed')).channels.includes('mix') === on, { what: `presence to say ${on ? 'on' : 'off'} mix` })
    const { id } = await pub.app.gatecast.publish('mix', 'probe')
    const after = await settle(c, 250)
    t.same(after.map(f => f.id), on ? [id] : [], `the last answer was ${String(last?.type)}: ${on ? 'one delivery' : 'none'}`)
    t.same((await home.app.gatecast.presence('mix')).users, on ? [{ userId: 'mixed', connections: 1 }] : [], 'presence agrees')
  })

  t.test(`${engine}: sockets that go while their subscribes are in flight leave no presence, no channel and no socket count behind`, async t => {
    const [, home] = await nodes(t, engine, { channels: { room: { presence: true } } })
    await Promise.all(Array.from({ length: 12 }, (_v, i) => new Promise<void>(resolve => {
      const ws = new WebSocket(`${home.ws}/ws${i % 3 === 0 ? '/room:path' : ''}`, { headers: { authorization: `Bearer ${home.token({ sub: `gone${i}` })}` } })
      ws.once('error', () => {})
      ws.once('close', () => resolve())
      ws.once('open', () => {
        for (let k = 0; k < 6; k++) ws.send(JSON.stringify({ type: 'subscribe', channel: `room:${k}`, ref: k }))
        // half go at once, half once their first answers start to come
        if (i % 2 === 0) ws.terminate()
        else ws.once('message', () => ws.once('message', () => ws.close()))
      })
    })))
    const clean = async (): Promise<boolean> => {
      if (home.app.gatecast.hub.size !== 0 || home.app.gatecast.hub.subscriptionsByNamespace().size !== 0) return false
      if ((await home.app.gatecast.channels()).length !== 0) return false
      for (let i = 0; i < 12; i++) if ((await home.app.gatecast.userStatus(`gone${i}`)).connections !== 0) return false
      return true
    }
    await waitFor(clean, { ms: 5000, every: 50, what: 'everything of the gone sockets to be released' })
    t.pass('no socket in the hub, no channel, no presence and no socket slot left')
    for (let i = 0; i < 12; i++) t.same(await home.app.gatecast.userStatus(`gone${i}`), { userId: `gone${i}`, online: false, connections: 0, channels: [] })
  })
}
