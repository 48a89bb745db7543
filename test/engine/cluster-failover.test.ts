// Two Gatecast nodes on a real Redis Cluster (3 masters, 3 replicas), one
// master killed hard in the middle of traffic: its replica takes over, the
// nodes and their sockets stay up, the nodes resubscribe by themselves, no
// message is delivered twice, and a reconnect with `since` gets the exact gap
// or `recovered: false`, never a partial replay.
import t, { type Test } from 'tap'
import { api, startApp, type TestApp } from '../helpers/app.ts'
import { connect, type Client } from '../helpers/client.ts'
import { clusterPrefix, redisCluster } from '../helpers/redis-cluster.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const KEY = 'cluster-failover-tests-api-key-0123456789-0123456789'
const auth = { 'x-api-key': KEY }

async function socket (t: Test, a: TestApp, path: string, user: string): Promise<Client> {
  const c = await connect(`${a.ws}${path}`, { headers: { authorization: `Bearer ${a.token({ sub: user })}` } })
  t.teardown(() => c.close())
  await c.nextOfType('ready')
  return c
}

const messages = (c: Client) => c.frames.filter(f => f.type === 'message')

t.test('a master dies in the middle of traffic: the replica takes over and nothing is doubled or wrongly replayed', async t => {
  const { url, cluster } = await redisCluster(t, { private: true })
  if (cluster === null) throw new Error('a private cluster was asked for')
  const prefix = clusterPrefix(t, url)
  // history long enough to reach back over the whole test: a `since` from before the kill is answerable
  const config = { redisUrl: url, redisCluster: true, redisPrefix: prefix, apiKey: KEY, nodeTimeout: 5, historySize: 10_000 }
  const a = await startApp(t, { config })
  const b = await startApp(t, { config })
  const onA = await socket(t, a, '/ws/room', 'alice')
  const onB = await socket(t, b, '/ws/room', 'bob')
  // a second channel, most likely on another shard: it must not notice
  const other = await socket(t, b, '/ws/calm', 'carol')

  // traffic from node a: a publish every 20 ms, recording what was acknowledged
  const acked: Array<{ n: number, id: string }> = []
  const failed: number[] = []
  const ready: number[] = []
  let n = 0
  const state = { running: true }
  const traffic = (async () => {
    while (state.running) {
      const i = n++
      const r = await api(a.base, 'POST', '/api/channels/room/messages', { body: { data: i }, headers: auth }).catch(() => ({ status: 0, body: null }))
      if (r.status === 201) acked.push({ n: i, id: r.body.id }); else failed.push(i)
      await sleep(20)
    }
  })()
  const probe = (async () => {
    while (state.running) {
      ready.push((await api(b.base, 'GET', '/ready').catch(() => ({ status: 0 }))).status)
      await sleep(100)
    }
  })()
  await waitFor(() => messages(onB).length >= 20, { what: 'traffic flowing' })
  const beforeKill = messages(onA).at(-1)?.id as string

  const victim = await cluster.masterOf(`${prefix}:{ch:room}:meta`)
  const node = cluster.nodes.find(x => x.port === victim)
  if (node === undefined) throw new Error('no such node')
  const mastersBefore = await cluster.masters()
  node.kill()
  await waitFor(async () => !(await cluster.masters()).includes(victim), { ms: 20_000, what: 'the master marked failed' })
  await cluster.healthy(30_000)
  const mastersAfter = await cluster.masters()
  t.notOk(mastersAfter.includes(victim), 'the dead master is gone')
  t.equal(mastersAfter.length, 3, 'a replica took its place')
  t.not(mastersAfter.join(), mastersBefore.join())

  // traffic gets through again, and reaches both nodes' sockets (they resubscribed on the new master)
  const ackedAtHeal = acked.length
  await waitFor(() => acked.length >= ackedAtHeal + 25, { ms: 20_000, what: 'publishes acknowledged again' })
  const lastAcked = acked.at(-1)?.id as string
  await waitFor(() => messages(onA).some(f => f.id === lastAcked) && messages(onB).some(f => f.id === lastAcked), { ms: 10_000, what: 'the last publish reached both nodes' })
  state.running = false
  await traffic
  await probe

  t.equal((await api(a.base, 'GET', '/health')).status, 200, 'node a is up')
  t.equal((await api(b.base, 'GET', '/health')).status, 200, 'node b is up')
  for (const c of [onA, onB, other]) t.equal(c.ws.readyState, c.ws.OPEN, 'the socket stayed open')
  t.comment(`/ready during the test: ${ready.join(' ')}`)
  t.ok(ready.includes(503), '/ready said 503 while the shard had no master')
  t.equal(ready.at(-1), 200, '/ready is 200 again after the failover')

  for (const [name, c] of [['a', onA], ['b', onB]] as const) {
    const got = messages(c)
    const ids = got.map(f => f.id)
    t.equal(new Set(ids).size, ids.length, `node ${name}: no id delivered twice`)
    const data = got.map(f => f.data as number)
    t.equal(new Set(data).size, data.length, `node ${name}: no message delivered twice`)
    t.same(data, [...data].sort((x, y) => x - y), `node ${name}: in publish order`)
    // every acknowledged publish after the heal reached the socket
    const late = acked.slice(ackedAtHeal).map(x => x.n)
    t.same(late.filter(x => !data.includes(x)), [], `node ${name}: nothing acknowledged after the failover is missing`)
  }
  t.comment(`${failed.length} publishes refused during the failover, ${acked.length} acknowledged`)

  // a reconnect from before the kill: the exact gap, or recovered false; never a partial replay
  const back = await connect(`${b.ws}/ws/room?since=${encodeURIComponent(beforeKill)}`, { headers: { authorization: `Bearer ${b.token({ sub: 'dave' })}` } })
  t.teardown(() => back.close())
  const hello = await back.nextOfType('ready')
  t.type(hello.recovered, 'boolean')
  await sleep(300)
  const replay = messages(back)
  if (hello.recovered === true) {
    const after = messages(onA).map(f => f.id)
    t.same(replay.map(f => f.id), after.slice(after.indexOf(beforeKill) + 1), 'recovered: exactly what the socket that stayed got after it, in order')
  } else {
    t.same(replay.filter(f => (f.data as number) <= (messages(onA).find(x => x.id === beforeKill)?.data as number)), [], 'recovered false: nothing old replayed')
  }
})
