// The admin console's routes on one node (memory engine): off is 404 all
// over; the page itself is public but every data route and the feed take
// exactly the server API's credentials (401 without, 403 for a non-admin
// token); what a snapshot shows (sockets, channels, presence, history, a
// user's sockets, messages per second counted once per message, not per
// socket); and the feed (a snapshot at most once a second, matching the
// schema, ending when the client leaves or the token expires).
import { request } from 'node:http'
import t, { type Test } from 'tap'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { api, type TestApp } from '../helpers/app.ts'
import { auth, bearerOf, node, socket, subscribe } from '../helpers/multi.ts'
import { eventually, sleep, waitFor, within } from '../helpers/wait.ts'
import { ChannelCounter } from '../../src/core/channel-counter.ts'
import { SeriesSchema, SnapshotSchema } from '../../routes/admin/schemas.ts'

const snapshotCheck = TypeCompiler.Compile(SnapshotSchema)
const seriesCheck = TypeCompiler.Compile(SeriesSchema)
const DATA_ROUTES = ['/admin/session', '/admin/snapshot', '/admin/feed']
const admin = (a: TestApp): { authorization: string } => bearerOf(a.token({ sub: 'root', roles: ['admin'] })).headers

interface FeedEvent { event: string, data: any, at: number }
interface OpenFeed { status: number, events: FeedEvent[], ended: Promise<void>, close: () => void, body: any }

/**
 * GET `path` as an event stream, events parsed as they come, on a connection
 * of its own (node:http, no agent): closing it closes exactly that socket.
 */
async function openFeed (t: Test, base: string, path: string, headers: Record<string, string>): Promise<OpenFeed> {
  const events: FeedEvent[] = []
  return new Promise((resolve, reject) => {
    const req = request(base + path, { headers, agent: false }, res => {
      const close = (): void => { req.destroy() }
      t.teardown(close)
      let buffer = ''
      res.setEncoding('utf8')
      if (res.statusCode !== 200) {
        res.on('data', (chunk: string) => { buffer += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, events, ended: Promise.resolve(), close, body: JSON.parse(buffer) }))
        return
      }
      const ended = new Promise<void>(resolve => res.on('close', () => resolve()))
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
          const data = /^data: (.*)$/m.exec(block)?.[1]
          events.push({ event, data: data === undefined ? null : JSON.parse(data), at: Date.now() })
        }
      })
      resolve({ status: res.statusCode, events, ended, close, body: null })
    })
    req.on('error', (err) => { if (!req.destroyed) reject(err) })
    req.end()
  })
}

const snapshots = (f: OpenFeed): any[] => f.events.filter(e => e.event === 'snapshot').map(e => e.data)

t.test('ADMIN_CONSOLE: on in development, off in production unless set', async t => {
  const { readConfig } = await import('../../src/config/config.ts')
  t.equal(readConfig({}, {}, '/nonexistent').adminConsole, true)
  t.equal(readConfig({}, { NODE_ENV: 'production' }, '/nonexistent').adminConsole, false)
  t.equal(readConfig({}, { NODE_ENV: 'production', ADMIN_CONSOLE: 'true' }, '/nonexistent').adminConsole, true)
})

t.test('console off: every /admin URL is the ordinary 404, and nothing is counted', async t => {
  const a = await node(t, { adminConsole: false })
  for (const path of ['/admin', '/admin/', '/admin/admin.js', '/admin/admin.css', '/admin/charts.js', ...DATA_ROUTES]) {
    for (const headers of [{}, auth]) {
      const res = await api(a.base, 'GET', path, { headers })
      t.equal(res.status, 404, `${path} ${Object.keys(headers).length > 0 ? 'with' : 'without'} the API key: 404`)
      t.equal(res.body?.code, 'not_found')
    }
  }
  t.equal(a.app.adminConsole, null)
  t.equal(a.app.metrics.stats.channelMessages, null, 'no per-channel counter on the message path')
  t.equal(a.app.engine.nodes.list !== undefined && (await a.app.engine.nodes.list())[0].report, null, 'the node reports nothing')
})

t.test('the page is public and empty; every data route refuses without credentials (401) and for a non-admin (403)', async t => {
  const a = await node(t)
  t.equal((await fetch(`${a.base}/admin/`)).status, 200, '/admin/ is the page too')
  const page = await fetch(`${a.base}/admin`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/)
  t.match(page.headers.get('content-security-policy'), /connect-src 'self'/)
  const html = await page.text()
  t.match(html, /id="login-form"/, 'a sign-in form')
  t.match(html, /id="console"[^>]*hidden/, 'the console is hidden until the server accepts admin credentials')
  t.notMatch(html, /room:|alice|nodeId/, 'no data in the shell')
  for (const [path, type] of [['/admin/admin.js', /text\/javascript/], ['/admin/charts.js', /text\/javascript/], ['/admin/admin.css', /text\/css/]] as const) {
    const res = await fetch(a.base + path)
    t.equal(res.status, 200, `${path} is served`)
    t.match(res.headers.get('content-type'), type)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
  }
  t.equal((await api(a.base, 'GET', '/admin/index.html')).status, 404, 'only the listed files of public/admin are served')
  t.equal((await api(a.base, 'GET', '/admin/../demo.html')).status, 404)

  const user = bearerOf(a.token({ sub: 'alice', roles: ['user'] })).headers
  for (const path of [...DATA_ROUTES, '/admin/snapshot?user=alice&channel=chat']) {
    const none = await api(a.base, 'GET', path)
    t.equal(none.status, 401, `${path} without credentials: 401`)
    t.equal(none.body.code, 'token_missing')
    const wrongKey = await api(a.base, 'GET', path, { headers: { 'x-api-key': 'not-the-key' } })
    t.equal(wrongKey.status, 401, `${path} with a wrong API key: 401`)
    const bad = await api(a.base, 'GET', path, { headers: { authorization: 'Bearer not.a.token' } })
    t.equal(bad.status, 401, `${path} with a bad token: 401`)
    const forbidden = await api(a.base, 'GET', path, { headers: user })
    t.equal(forbidden.status, 403, `${path} with a valid token without role admin: 403`)
    t.equal(forbidden.body.code, 'forbidden')
    t.match(forbidden.headers.get('content-type'), /application\/json/, 'an ordinary JSON error, no event stream')
  }

  const viaToken = await api(a.base, 'GET', '/admin/session', { headers: admin(a) })
  t.equal(viaToken.status, 200)
  t.match(viaToken.body, { via: 'token', userId: 'root', nodeId: a.app.engine.nodes.nodeId })
  t.type(viaToken.body.expiresAt, 'number')
  const viaKey = await api(a.base, 'GET', '/admin/session', { headers: auth })
  t.equal(viaKey.status, 200)
  t.same(viaKey.body, { via: 'api_key', userId: null, expiresAt: null, nodeId: a.app.engine.nodes.nodeId })
  t.equal((await api(a.base, 'GET', '/admin/snapshot?channel=bad%20name', { headers: auth })).status, 400, 'a bad channel name: 400')
})

t.test('a snapshot: this node, the channels, one channel\'s presence and last messages, one user\'s sockets', async t => {
  const a = await node(t, { channels: { room: { presence: true } } })
  const { ready: a1 } = await socket(t, a, '/ws/room:1', 'alice')
  const { c: alice2, ready: a2 } = await socket(t, a, '/ws', 'alice')
  t.match(await subscribe(alice2, 'room:2'), { type: 'subscribed', channel: 'room:2' })
  await socket(t, a, '/ws/room:1', 'bob')
  const ids: string[] = []
  for (let i = 0; i < 25; i++) ids.push((await a.app.gatecast.publish('room:1', { n: i, pad: 'x'.repeat(i === 24 ? 2000 : 1) })).id)

  const res = await api(a.base, 'GET', '/admin/snapshot?channel=room:1&user=alice', { headers: auth })
  t.equal(res.status, 200)
  t.ok(snapshotCheck.Check(res.body), 'the body matches its schema')
  const { overview: o, channel, user } = res.body
  t.equal(o.totals.nodes, 1)
  t.equal(o.totals.connections, 3)
  t.equal(o.nodes.length, 1)
  t.match(o.nodes[0], { nodeId: a.app.engine.nodes.nodeId, self: true, stats: { connections: 3, users: 2, channels: 2, subscriptions: 3, pid: process.pid } })
  t.ok(o.nodes[0].stats.memory.rss > 0 && o.nodes[0].stats.memory.heapUsed > 0, 'memory')
  t.type(o.nodes[0].stats.eventLoop.p99Ms, 'number')
  t.same(o.channels.list.map((c: any) => [c.name, c.connections, c.users]).sort(), [['room:1', 2, 2], ['room:2', 1, 1]])
  t.equal(o.channels.total, 2)
  t.same(o.users.list.map((u: any) => [u.userId, u.connections]).sort(), [['alice', 2], ['bob', 1]])
  t.equal(o.users.complete, true)

  t.equal(channel.name, 'room:1')
  t.same(channel.presence.map((p: any) => [p.userId, p.connections]).sort(), [['alice', 1], ['bob', 1]])
  t.same(channel.history.map((m: any) => m.id), ids.slice(-20), 'the last 20 messages, oldest first')
  t.same(channel.history[0], { id: ids[5], from: null, ts: channel.history[0].ts, text: '{"n":5,"pad":"x"}', truncated: false })
  const big = channel.history[19]
  t.equal(big.truncated, true, 'a large message is cut')
  t.equal(big.text.length, 500)

  t.match(user, { userId: 'alice', online: true, connections: 2 })
  t.same(user.channels.sort(), ['room:1', 'room:2'])
  t.same(user.sockets.map((s: any) => s.connectionId).sort(), [a1.connectionId, a2.connectionId].sort(), 'both of alice\'s sockets, by connection id')
  for (const s of user.sockets) t.equal(s.nodeId, a.app.engine.nodes.nodeId)
  t.same(user.sockets.find((s: any) => s.connectionId === a2.connectionId).channels, ['room:2'])

  const nobody = await api(a.base, 'GET', '/admin/snapshot?user=nobody&channel=empty', { headers: auth })
  t.match(nobody.body.user, { userId: 'nobody', online: false, connections: 0, sockets: [] })
  t.match(nobody.body.channel, { name: 'empty', connections: 0, users: 0, presence: [], history: [] })
})

t.test('messages per channel are counted once per message where the node receives them, never per socket', async t => {
  const a = await node(t, { channels: { room: { presence: true } } })
  const counter = new ChannelCounter()
  // the hub bumps whatever counter the stats hold; the sampler keeps taking its own
  a.app.metrics.stats.channelMessages = counter
  const subs = []
  for (const user of ['alice', 'bob', 'carol']) subs.push((await socket(t, a, '/ws/room:1', user)).c)
  await a.app.gatecast.publish('room:2', 'nobody here')
  for (let i = 0; i < 5; i++) await a.app.gatecast.publish('room:1', { i })
  for (const c of subs) await waitFor(() => c.frames.filter(f => f.type === 'message').length === 5, { what: 'five messages on each socket' })
  const counts = counter.take()
  t.same([...counts], [['room:1', 5]], 'five messages for three sockets: 5, not 15; presence frames and a channel without local subscribers are not counted')
  t.same([...counter.take()], [], 'take() starts again from nothing')
})

t.test('messages per second reach the channel list and the node, at the publish rate', async t => {
  const a = await node(t)
  for (const user of ['alice', 'bob']) await socket(t, a, '/ws/room:1', user)
  // about 20 a second
  const publishing = setInterval(() => { a.app.gatecast.publish('room:1', 'tick').catch(() => {}) }, 50)
  t.teardown(() => clearInterval(publishing))
  let best = 0
  let published = 0
  let delivered = 0
  await eventually(async () => {
    const { body } = await api(a.base, 'GET', '/admin/snapshot', { headers: auth })
    best = body.overview.channels.list.find((c: any) => c.name === 'room:1')?.rate ?? 0
    published = body.overview.totals.published
    delivered = body.overview.nodes[0].stats.delivered
    return best >= 10 && published >= 10
  }, { ms: 6000, every: 250 })
  t.equal(best, delivered, 'the node\'s delivered/s is the sum of its channels\' counts (one busy channel here)')
  clearInterval(publishing)
  t.ok(best >= 10 && best <= 30, `room:1 at about 20 messages a second with two sockets on it (got ${best}; per socket would be about 40)`)
  t.ok(published >= 10 && published <= 30, `the node publishes about 20 a second (got ${published})`)
})

t.test('the feed: series first, then a snapshot at most once a second, each matching the schema; it ends when the client leaves', async t => {
  const a = await node(t)
  const { c } = await socket(t, a, '/ws/chat', 'alice')
  const f = await openFeed(t, a.base, '/admin/feed?user=alice', auth)
  t.equal(f.status, 200)
  await waitFor(() => snapshots(f).length >= 4, { ms: 6000, what: 'four snapshots' })
  t.equal(f.events[0].event, 'series', 'the last minutes come first')
  t.ok(seriesCheck.Check(f.events[0].data), 'series matches its schema')
  for (const [second, messages, connections] of f.events[0].data.points) {
    t.ok(Math.abs(second * 1000 - Date.now()) < 60_000 && messages >= 0 && connections >= 0)
  }
  const snaps = f.events.filter(e => e.event === 'snapshot')
  for (const s of snaps) t.ok(snapshotCheck.Check(s.data), 'a snapshot matches the schema of GET /admin/snapshot')
  for (let i = 1; i < snaps.length; i++) t.ok(snaps[i].at - snaps[i - 1].at >= 900, `snapshots ${i - 1} and ${i} are a second apart (${snaps[i].at - snaps[i - 1].at} ms)`)
  t.equal(snaps[0].data.user.sockets.length, 1, 'the focused user\'s socket')

  // the socket goes: the next snapshots say so
  c.ws.close()
  await waitFor(() => snapshots(f).at(-1).user.sockets.length === 0 && snapshots(f).at(-1).overview.totals.connections === 0, { ms: 3000, what: 'the socket gone from the feed' })
  t.equal(snapshots(f).at(-1).user.online, false)

  f.close()
  await f.ended
  const count = f.events.length
  await sleep(1200)
  t.equal(f.events.length, count, 'nothing after the client left')
})

t.test('feeds are released when their clients leave (a node serves 32 at once)', async t => {
  const a = await node(t)
  const open: OpenFeed[] = []
  for (let i = 0; i < 32; i++) open.push(await openFeed(t, a.base, '/admin/feed', auth))
  t.ok(open.every(f => f.status === 200))
  const over = await openFeed(t, a.base, '/admin/feed', auth)
  t.equal(over.status, 429, 'the 33rd is refused')
  t.equal(over.body.code, 'too_many_feeds')
  for (const f of open) f.close()
  const again = await eventually(async () => {
    const f = await openFeed(t, a.base, '/admin/feed', auth)
    f.close()
    return f.status === 200
  }, { ms: 3000, every: 100 })
  t.ok(again, 'a feed is served again once the others left')
})

t.test('the feed ends when the token it was opened with expires', async t => {
  const a = await node(t)
  const token = a.token({ sub: 'root', roles: ['admin'] }, { expiresIn: 2 })
  const f = await openFeed(t, a.base, '/admin/feed', { authorization: `Bearer ${token}` })
  t.equal(f.status, 200)
  const endedAt = await within(f.ended.then(() => Date.now()), 5000, 'the stream ends')
  t.ok(snapshots(f).length > 0, 'it ran until then')
  const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000
  t.ok(endedAt >= exp - 50 && endedAt < exp + 1500, `it ended at the token's expiry (${endedAt - exp} ms after)`)
})

t.test('the feed ends once its token is revoked (logout), not only at its expiry', async t => {
  const a = await node(t)
  const token = a.token({ sub: 'root', roles: ['admin'] }, { expiresIn: 600 })
  const f = await openFeed(t, a.base, '/admin/feed', { authorization: `Bearer ${token}` })
  t.equal(f.status, 200)
  await waitFor(() => snapshots(f).length > 0, { what: 'the feed running' })
  const out = await api(a.base, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${token}` }, body: {} })
  t.equal(out.status, 204)
  const loggedOut = Date.now()
  const endedAt = await within(f.ended.then(() => Date.now()), 9000, 'the stream ends')
  t.ok(endedAt - loggedOut < 7000, `it ended within the revocation check (${endedAt - loggedOut} ms)`)
})
