import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { api, SECRET, startApp } from '../helpers/app.ts'
import { connect, refused } from '../helpers/client.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { spawnNode, spawnRedis } from '../helpers/process.ts'
import { eventually } from '../helpers/wait.ts'

const until = (check: () => Promise<boolean>, ms: number): Promise<boolean> => eventually(check, { ms, every: 100 })

t.test('a node killed without shutdown leaves presence within the node timeout', async t => {
  const prefix = redisPrefix(t)
  const a = await startApp(t, { config: { redisUrl: REDIS_URL, redisPrefix: prefix, nodeTimeout: 1, apiKey: 'k', channels: { room: { presence: true } } } })
  const channelsFile = join(a.dir, 'channels.json')
  writeFileSync(channelsFile, JSON.stringify({ room: { presence: true } }))
  const b = await spawnNode(t, { REDIS_URL, REDIS_PREFIX: prefix, NODE_TIMEOUT: '1', JWT_SECRET: SECRET, CHANNELS_FILE: channelsFile })
  const watcher = await connect(`${a.ws}/ws/room:1`, { headers: { authorization: `Bearer ${a.token({ sub: 'watcher' })}` } })
  const doomed = await connect(`${b.ws}/ws/room:1`, { headers: { authorization: `Bearer ${a.token({ sub: 'doomed' })}` } })
  t.teardown(() => { watcher.close(); doomed.ws.terminate() })
  const presence = async () => (await api(a.base, 'GET', '/api/channels/room:1/presence', { headers: { 'x-api-key': 'k' } })).body.users.map((u: { userId: string }) => u.userId).sort()
  t.ok(await until(async () => (await presence()).includes('doomed'), 3000), 'the other node’s user is present')
  b.child.kill('SIGKILL')
  t.ok(await until(async () => !(await presence()).includes('doomed'), 6000), 'gone after the node died')
  t.same(await presence(), ['watcher'])
  const left = await watcher.next(f => f.type === 'presence' && f.event === 'leave')
  t.equal(left.userId, 'doomed', 'a leave frame reaches the other node’s sockets')
  const status = await api(a.base, 'GET', '/api/users/doomed', { headers: { 'x-api-key': 'k' } })
  t.same(status.body, { userId: 'doomed', online: false, connections: 0, channels: [] })
})

t.test('Redis away: 503 for readiness and upgrades, open sockets stay; back: resubscribed', async t => {
  const redis = await spawnRedis(t)
  const prefix = redisPrefix(t, redis.url)
  const node = await startApp(t, { config: { redisUrl: redis.url, redisPrefix: prefix, apiKey: 'k' } })
  const client = await connect(`${node.ws}/ws/chat`, { headers: { authorization: `Bearer ${node.token({ sub: 'alice' })}` } })
  t.teardown(() => client.close())
  client.send({ type: 'publish', data: 'before', ref: 1 })
  const before = await client.nextOfType('message')
  await redis.stop()
  t.ok(await until(async () => (await api(node.base, 'GET', '/ready')).status === 503, 5000), '/ready is 503')
  const ready = await api(node.base, 'GET', '/ready')
  t.equal(ready.body.code, 'unavailable')
  const up = await refused(`${node.ws}/ws/chat`, { headers: { authorization: `Bearer ${node.token({ sub: 'bob' })}` } })
  t.equal(up.status, 503)
  const apiDown = await api(node.base, 'POST', '/api/channels/chat/messages', { body: { data: 1 }, headers: { 'x-api-key': 'k' } })
  t.equal(apiDown.status, 503, 'API publish is 503 while Redis is away')
  client.send({ type: 'ping' })
  t.equal((await client.nextOfType('pong')).type, 'pong', 'the open socket still works')
  client.send({ type: 'publish', data: 'during', ref: 2 })
  const err = await client.nextOfType('error')
  t.equal(err.ref, 2)
  await redis.start()
  t.ok(await until(async () => (await api(node.base, 'GET', '/ready')).status === 200, 10_000), 'ready again')
  // resubscription is asynchronous after reconnect; publish until the socket hears it
  let heard = false
  for (let i = 0; i < 30 && !heard; i++) {
    const res = await api(node.base, 'POST', '/api/channels/chat/messages', { body: { data: 'after' }, headers: { 'x-api-key': 'k' } })
    t.equal(res.status, 201)
    heard = await client.next(f => f.type === 'message' && f.data === 'after', 200).then(() => true, () => false)
  }
  t.ok(heard, 'live messages flow again without reconnecting')
  t.equal(client.ws.readyState, client.ws.OPEN)
  const again = await connect(`${node.ws}/ws/chat?since=${encodeURIComponent(before.id as string)}`, { headers: { authorization: `Bearer ${node.token({ sub: 'bob' })}` } })
  t.teardown(() => again.close())
  const r = await again.nextOfType('ready')
  t.equal(r.recovered, false, 'history was lost with the Redis restart: the new epoch says so')
})

t.test('logout on one node is refused on another; limits are cluster-wide', async t => {
  const prefix = redisPrefix(t)
  const users = new Map([['alice', 'correct horse']])
  const verifyCredentials = (u: string, p: string) => users.get(u) === p ? { id: u } : null
  const a = await startApp(t, { verifyCredentials, config: { redisUrl: REDIS_URL, redisPrefix: prefix, wsSocketsPerUser: 1, loginFailures: 2 } })
  const b = await startApp(t, { verifyCredentials, config: { redisUrl: REDIS_URL, redisPrefix: prefix, wsSocketsPerUser: 1, loginFailures: 2 } })
  const login = await api(a.base, 'POST', '/auth/login', { body: { username: 'alice', password: 'correct horse' } })
  t.equal(login.status, 200)
  const token = login.body.access_token as string
  const open = await connect(`${b.ws}/ws/chat`, { headers: { authorization: `Bearer ${token}` } })
  const capped = await refused(`${a.ws}/ws/chat`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(capped.status, 429, 'per-user socket cap counts sockets on the other node')
  const out = await api(a.base, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${token}` }, body: { refresh_token: login.body.refresh_token } })
  t.equal(out.status, 204)
  t.equal((await open.closed).code, 4401, 'the socket on the other node closes')
  const again = await refused(`${b.ws}/ws/chat`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(again.status, 401)
  t.equal(again.body.code, 'token_revoked')
  const refresh = await api(b.base, 'POST', '/auth/refresh', { body: { refresh_token: login.body.refresh_token } })
  t.equal(refresh.status, 401)
  for (const n of [a, b]) await api(n.base, 'POST', '/auth/login', { body: { username: 'alice', password: 'wrong' } })
  const locked = await api(a.base, 'POST', '/auth/login', { body: { username: 'alice', password: 'correct horse' } })
  t.equal(locked.status, 429, 'failed logins on both nodes add up')
})

t.test('recovery with since works across nodes', async t => {
  const prefix = redisPrefix(t)
  const a = await startApp(t, { config: { redisUrl: REDIS_URL, redisPrefix: prefix } })
  const b = await startApp(t, { config: { redisUrl: REDIS_URL, redisPrefix: prefix } })
  const first = await a.app.gatecast.publish('news', 0)
  for (let i = 1; i <= 5; i++) await a.app.gatecast.publish('news', i)
  const c = await connect(`${b.ws}/ws/news?since=${encodeURIComponent(first.id)}`, { headers: { authorization: `Bearer ${b.token()}` } })
  t.teardown(() => c.close())
  t.equal((await c.nextOfType('ready')).recovered, true)
  const got = []
  for (let i = 0; i < 5; i++) got.push((await c.nextOfType('message')).data)
  t.same(got, [1, 2, 3, 4, 5])
  const hist = await b.app.gatecast.history('news', { limit: 3 })
  t.same(hist.messages.map(m => m.data), [3, 4, 5])
})
