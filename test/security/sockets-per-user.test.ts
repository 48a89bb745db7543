// WS_SOCKETS_PER_USER (contract §1: exact under concurrent upgrades on every
// engine). The slot is reserved atomically at admission, so parallel upgrades
// of one user never get past the cap, also while an onConnect hook awaits I/O;
// it is given back when the upgrade is refused after the reservation, when the
// client goes before the upgrade completes, and when the socket closes. On
// Redis the upgrades are spread over two nodes: the cap is cluster-wide.
import t, { type Test } from 'tap'
import type { TestApp } from '../helpers/app.ts'
import type { Client } from '../helpers/client.ts'
import { abandonedUpgrade, attempt, cluster, node, socket, subscribe, type Attempt } from '../helpers/multi.ts'
import { pingPong } from '../helpers/ws-extra.ts'
import { eventually, sleep, waitFor } from '../helpers/wait.ts'
import { GatecastError } from '../../src/protocol/errors.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

const CAP = 2
const PARALLEL = 20

async function nodesOf (t: Test, engine: string, config: ConfigOverrides = {}): Promise<TestApp[]> {
  const all = { wsSocketsPerUser: CAP, ...config }
  return engine === 'memory' ? [await node(t, all)] : cluster(t, 2, all)
}

/** PARALLEL upgrades of one user at once, round-robin over the nodes; the open ones are terminated at teardown. */
async function burst (t: Test, nodes: TestApp[], user: string, path = '/ws'): Promise<{ open: Client[], refused: Array<{ status: number, body: any }> }> {
  const token = nodes[0].token({ sub: user })
  const results: Attempt[] = await Promise.all(Array.from({ length: PARALLEL }, (_v, i) => attempt(`${nodes[i % nodes.length].ws}${path}`, token)))
  const open = results.flatMap(r => r.opened ? [r.client] : [])
  t.teardown(() => { for (const c of open) c.ws.terminate() })
  return { open, refused: results.flatMap(r => r.opened ? [] : [{ status: r.status, body: r.body }]) }
}

function exactlyCap (t: Test, r: { open: Client[], refused: Array<{ status: number, body: any }> }, label: string): void {
  t.equal(r.open.length, CAP, `${label}: exactly ${CAP} open`)
  t.equal(r.refused.length, PARALLEL - CAP, `${label}: ${PARALLEL - CAP} refused`)
  const wrong = r.refused.filter(x => x.status !== 429 || x.body?.code !== 'too_many_sockets')
  t.same(wrong, [], `${label}: every refusal is 429 too_many_sockets`)
}

const connections = async (a: TestApp, user: string): Promise<number> => (await a.app.gatecast.userStatus(user)).connections

for (const engine of ['memory', 'redis']) {
  for (const hook of [false, true]) {
    const label = `${engine}${hook ? ', onConnect awaiting I/O' : ''}`
    t.test(`${label}: ${PARALLEL} parallel upgrades with a cap of ${CAP}: exactly ${CAP} open, the rest 429; the slots come back after close`, async t => {
      const nodes = await nodesOf(t, engine)
      let entered = 0
      if (hook) for (const n of nodes) n.app.gatecast.onConnect(async () => { entered++; await sleep(50) })
      const first = await burst(t, nodes, 'alice')
      exactlyCap(t, first, 'first burst')
      if (hook) t.equal(entered, CAP, 'the hook ran only for upgrades that got a slot')
      for (const c of first.open) {
        t.match(await c.next(), { type: 'ready', userId: 'alice' })
        await pingPong(c)
      }
      for (const n of nodes) t.equal(await connections(n, 'alice'), CAP, 'the engine counts exactly the open sockets')

      // another user is not limited by alice's sockets
      const bob = await burst(t, nodes, 'bob')
      exactlyCap(t, bob, 'another user')

      for (const c of first.open) c.close()
      await Promise.all(first.open.map(c => c.closed))
      await waitFor(async () => await connections(nodes[0], 'alice') === 0, { what: 'alice\'s slots given back' })
      const again = await burst(t, nodes, 'alice')
      exactlyCap(t, again, 'after close')
      for (const c of again.open) t.match(await c.next(), { type: 'ready', userId: 'alice' })
      await sleep(100)
      for (const n of nodes) t.equal(await connections(n, 'alice'), CAP, 'no refused upgrade left a slot taken')
    })
  }

  t.test(`${engine}: an upgrade refused after the reservation (onConnect throws, onSubscribe refuses the path channel) gives its slot back`, async t => {
    const nodes = await nodesOf(t, engine)
    for (const n of nodes) {
      n.app.gatecast.onConnect(async ctx => {
        await sleep(10)
        if (ctx.channel === 'denied') throw new GatecastError(403, 'denied_by_hook', 'no')
      })
      n.app.gatecast.onSubscribe(ctx => {
        if (ctx.channel === 'closed-room') throw new GatecastError(403, 'no_subscribe', 'no')
      })
    }
    const token = nodes[0].token({ sub: 'carol' })
    // one after another: a refusal whose slot stayed taken would turn the third into a 429
    // (in parallel they would be 429s rightly: each holds its slot while its hook runs)
    const refusals: Attempt[] = []
    for (let i = 0; i < 10; i++) refusals.push(await attempt(`${nodes[i % nodes.length].ws}/ws/${i % 2 === 0 ? 'denied' : 'closed-room'}`, token))
    t.same(refusals.map(r => r.opened ? 101 : r.status), Array(10).fill(403), 'every one refused by its hook')
    t.same(refusals.map(r => r.opened ? null : r.body?.code), Array.from({ length: 10 }, (_v, i) => i % 2 === 0 ? 'denied_by_hook' : 'no_subscribe'))
    for (const n of nodes) t.equal(await connections(n, 'carol'), 0, 'no slot kept by a refused upgrade')
    const r = await burst(t, nodes, 'carol', '/ws/fine')
    exactlyCap(t, r, 'after the refusals')
  })

  for (const how of ['fin', 'rst'] as const) {
    t.test(`${engine}: a client that goes before its upgrade completes (${how === 'fin' ? 'closes' : 'resets'} the connection while onConnect awaits) gives its slot back`, async t => {
      const nodes = await nodesOf(t, engine)
      let held = 0
      let done = 0
      for (const n of nodes) {
        n.app.gatecast.onConnect(async ctx => {
          if (ctx.channel !== 'slow') return
          held++
          await sleep(300)
          done++
        })
      }
      const token = nodes[0].token({ sub: 'dave' })
      await Promise.all(nodes.map(n => abandonedUpgrade(n.base, '/ws/slow', token, 80, how)))
      t.equal(held, nodes.length, 'the upgrades were inside the hook, slots reserved, when their clients went')
      await waitFor(() => done === nodes.length, { what: 'the hooks to finish' })
      const released = await eventually(async () => await connections(nodes[0], 'dave') === 0, { ms: 2000 })
      t.ok(released, `the abandoned upgrades' slots are given back (the engine still counts ${await connections(nodes[0], 'dave')})`)
      const r = await burst(t, nodes, 'dave')
      exactlyCap(t, r, 'after the abandoned upgrades')
      t.equal(nodes.reduce((sum, n) => sum + n.app.gatecast.hub.size, 0), r.open.length, 'the hub holds exactly the sockets of the burst')
    })
  }

  t.test(`${engine}: the cap counts sockets, not subscriptions`, async t => {
    const nodes = await nodesOf(t, engine)
    const { c } = await socket(t, nodes[0], '/ws/one', 'erin')
    for (const ch of ['two', 'three', 'four', 'five']) t.match(await subscribe(c, ch), { type: 'subscribed' })
    const second = await attempt(`${nodes.at(-1)?.ws ?? ''}/ws`, nodes[0].token({ sub: 'erin' }))
    t.equal(second.opened, true, 'a second socket fits beside one on five channels')
    if (second.opened) t.teardown(() => second.client.ws.terminate())
    const third = await attempt(`${nodes[0].ws}/ws`, nodes[0].token({ sub: 'erin' }))
    t.match(third, { opened: false, status: 429, body: { code: 'too_many_sockets' } })
    t.equal(await connections(nodes[0], 'erin'), 2)
  })
}
