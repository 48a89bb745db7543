// The admin console over a two-node Redis cluster: one node's snapshot lists
// both nodes with their own connection counts, finds a user's socket on the
// other node, counts a channel's messages per second once (the busiest node's
// count, not the sum of nodes), sums the nodes' last minutes, drops a node
// that leaves; and its feed reports an engine outage instead of ending.
import t from 'tap'
import { api, type TestApp } from '../helpers/app.ts'
import { auth, cluster, node, redisLine, socket } from '../helpers/multi.ts'
import { rawRedis } from '../helpers/engine.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { sleep, waitFor } from '../helpers/wait.ts'
import { request } from 'node:http'

const snapshot = async (a: TestApp, query = ''): Promise<any> => {
  const res = await api(a.base, 'GET', `/admin/snapshot${query}`, { headers: auth })
  if (res.status !== 200) throw new Error(`snapshot: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

interface Feed { events: Array<{ event: string, data: any }>, close: () => void }

function feed (t: { teardown: (fn: () => unknown) => void }, a: TestApp, path: string): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const events: Feed['events'] = []
    const req = request(`${a.base}${path}`, { headers: auth, agent: false }, res => {
      if (res.statusCode !== 200) return reject(new Error(`feed: ${res.statusCode}`))
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          events.push({ event: /^event: (.*)$/m.exec(block)?.[1] ?? '', data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') })
        }
      })
      const close = (): void => { req.destroy() }
      t.teardown(close)
      resolve({ events, close })
    })
    req.on('error', err => { if (!req.destroyed) reject(err) })
    req.end()
  })
}

t.test('two nodes: each node lists both with their own connections, and finds a user\'s socket on the other', async t => {
  const [a, b] = await cluster(t, 2)
  const idA = a.app.engine.nodes.nodeId
  const idB = b.app.engine.nodes.nodeId
  t.not(idA, idB)
  await socket(t, a, '/ws/room:shared', 'alice')
  await socket(t, a, '/ws/room:a', 'alice')
  const { ready: bobReady } = await socket(t, b, '/ws/room:shared', 'bob')

  let seen: any
  await waitFor(async () => {
    seen = await snapshot(a, '?user=bob&channel=room:shared')
    const counts = Object.fromEntries(seen.overview.nodes.map((n: any) => [n.nodeId, n.stats?.connections]))
    return counts[idA] === 2 && counts[idB] === 1
  }, { ms: 5000, what: () => `both nodes with their connections in ${JSON.stringify(seen?.overview.nodes)}` })
  const o = seen.overview
  t.equal(o.nodes.length, 2, 'both nodes')
  t.same(o.nodes.filter((n: any) => n.self).map((n: any) => n.nodeId), [idA], 'the answering node marks itself')
  t.equal(o.totals.nodes, 2)
  t.equal(o.totals.connections, 3, 'connections summed over the nodes')
  t.same(o.channels.list.map((c: any) => [c.name, c.connections, c.users]).sort(), [['room:a', 1, 1], ['room:shared', 2, 2]], 'channels cluster-wide')
  t.same(o.users.list.map((u: any) => [u.userId, u.connections]).sort(), [['alice', 2], ['bob', 1]], 'users of both nodes')
  t.same(seen.channel.presence.map((p: any) => [p.userId, p.connections]).sort(), [['alice', 1], ['bob', 1]])
  t.match(seen.user, { userId: 'bob', online: true, connections: 1 })
  t.same(seen.user.sockets.map((s: any) => [s.connectionId, s.nodeId, s.channels]), [[bobReady.connectionId, idB, ['room:shared']]], 'bob\'s socket, found on node b')

  const fromB = await snapshot(b)
  t.same(fromB.overview.nodes.map((n: any) => [n.nodeId, n.self]).sort(), [[idA, false], [idB, true]].sort(), 'node b sees the same two nodes')

  // the console disconnects through the server API of node a a socket that node b holds
  const gone = await api(a.base, 'DELETE', `/api/connections/${encodeURIComponent(bobReady.connectionId)}`, { headers: auth })
  t.equal(gone.status, 202)
  await waitFor(async () => (await snapshot(a, '?user=bob')).user.sockets.length === 0, { ms: 3000, what: 'bob\'s socket gone from the console' })
  await waitFor(async () => (await snapshot(a)).overview.nodes.find((n: any) => n.nodeId === idB)?.stats?.connections === 0, { ms: 3000, what: 'node b at zero connections' })

  await b.app.close()
  // an overview serves the consoles that ask within a second: the next one no longer has node b
  await waitFor(async () => (await snapshot(a)).overview.nodes.length === 1, { ms: 2000, what: 'node b gone from the list' })
  t.same((await snapshot(a)).overview.nodes.map((n: any) => n.nodeId), [idA], 'a node that left is no longer listed')
  const r = rawRedis(t)
  t.same(Object.keys(await r.hgetall(`${a.app.config.redisPrefix}:nodereports`)), [idA], 'and its report left Redis with it')
})

t.test('two nodes: a channel\'s rate is its busiest node\'s count, not the sum; the last minutes are summed over the nodes', async t => {
  const [a, b] = await cluster(t, 2)
  await socket(t, a, '/ws/room:busy', 'alice')
  await socket(t, b, '/ws/room:busy', 'bob')
  await socket(t, b, '/ws/room:busy', 'carol')
  // about 20 a second through node a; every node with a subscriber sees every one
  let sent = 0
  const publishing = setInterval(() => { a.app.gatecast.publish('room:busy', 'tick').then(() => { sent++ }, () => {}) }, 50)
  t.teardown(() => clearInterval(publishing))
  let rate = 0
  let published = 0
  let delivered: number[] = []
  await waitFor(async () => {
    const o = (await snapshot(b)).overview
    rate = o.channels.list.find((c: any) => c.name === 'room:busy')?.rate ?? 0
    published = o.totals.published
    delivered = o.nodes.map((n: any) => n.stats?.delivered ?? 0)
    return rate >= 10 && published >= 10 && delivered.every(d => d >= 10)
  }, { ms: 8000, every: 250, what: () => `rates in the snapshot (rate ${rate}, published ${published}, delivered ${delivered})` })
  // room:busy is the only channel with messages: each node's delivered/s is its count of it
  t.equal(rate, Math.max(...delivered), `the channel's rate is the busiest node's count (${delivered.join(' and ')}), not their sum`)
  // a few whole seconds in the nodes' series
  await sleep(2500)
  clearInterval(publishing)
  t.ok(rate <= 30, `about 20 messages a second on room:busy, seen from node b (got ${rate}; a sum over the nodes would be about 40)`)
  t.ok(published <= 30, `about 20 published a second cluster-wide, each counted by the node it went through (got ${published})`)
  t.equal(delivered.length, 2, 'both nodes receive the channel for their own subscribers')

  // every publish is in a node's series once the next second is taken
  await sleep(1500)
  const f = await feed(t, b, '/admin/feed')
  await waitFor(() => f.events.some(e => e.event === 'series'), { ms: 3000, what: 'the series' })
  const points: Array<[number, number, number]> = f.events.find(e => e.event === 'series')?.data.points
  t.ok(points.length >= 3, `some seconds of history (${points.length})`)
  t.equal(points.at(-1)?.[2], 3, 'the latest second: the connections of both nodes, summed')
  const messages = points.reduce((n, p) => n + p[1], 0)
  // every publish went through node a: the series counts each once, whichever nodes delivered it
  t.equal(messages, sent, 'the messages of those seconds, each counted once')
})

t.test('the feed reports an engine outage and stays open; a node without the console is listed without a report', async t => {
  const line = await redisLine(t)
  const prefix = redisPrefix(t)
  const quiet = await node(t, { redisUrl: REDIS_URL, redisPrefix: prefix, adminConsole: false })
  const a = await node(t, { redisUrl: line.url, redisPrefix: prefix })
  const quietId = quiet.app.engine.nodes.nodeId
  await waitFor(async () => (await snapshot(a)).overview.nodes.length === 2, { ms: 3000, what: 'two nodes' })
  const listed = (await snapshot(a)).overview.nodes.find((n: any) => n.nodeId === quietId)
  t.same(listed.stats, null, 'a live node with the console off: listed, with no report')
  t.equal((await api(quiet.base, 'GET', '/admin/snapshot', { headers: auth })).status, 404, 'and its own /admin is off')

  const f = await feed(t, a, '/admin/feed')
  await waitFor(() => f.events.some(e => e.event === 'snapshot'), { ms: 3000, what: 'a snapshot' })
  line.cut()
  await waitFor(() => f.events.some(e => e.event === 'problem'), { ms: 5000, what: 'a problem event' })
  t.match(f.events.find(e => e.event === 'problem')?.data, { statusCode: 503, code: 'unavailable' })
  const count = f.events.length
  await waitFor(() => f.events.length > count, { ms: 3000, what: 'the feed going on' })
  t.equal((await api(a.base, 'GET', '/admin/snapshot', { headers: auth })).status, 503, 'the snapshot route says 503 too')
})
