import t from 'tap'
import { api, startApp } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { sleep } from '../helpers/wait.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

interface Teardown { teardown: (fn: () => unknown) => void }

async function cluster (t: Teardown, n: number, config: ConfigOverrides = {}) {
  const redisPrefixValue = redisPrefix(t)
  const nodes = []
  for (let i = 0; i < n; i++) {
    nodes.push(await startApp(t, { config: { redisUrl: REDIS_URL, redisPrefix: redisPrefixValue, apiKey: 'k', ...config } }))
  }
  return nodes
}

t.test('a publish on one node reaches sockets on every node once, in order', async t => {
  const [a, b, c] = await cluster(t, 3)
  const clients = await Promise.all([a, b, c].map(n => connect(`${n.ws}/ws/chat`, { headers: { authorization: `Bearer ${n.token({ sub: 'u' + n.base.slice(-5) })}` } })))
  t.teardown(() => { for (const cl of clients) cl.close() })
  for (const cl of clients) await cl.nextOfType('ready')
  const sender = clients[0]
  for (let i = 0; i < 50; i++) sender.send({ type: 'publish', data: i })
  for (const cl of clients) {
    const got = []
    for (let i = 0; i < 50; i++) got.push((await cl.nextOfType('message')).data)
    t.same(got, [...Array(50).keys()], 'all 50, in order')
  }
  await sleep(100)
  for (const cl of clients) t.equal(cl.frames.filter(f => f.type === 'message').length, 0, 'no duplicates')
})

t.test('API calls, presence and kicks work across nodes', async t => {
  const [a, b] = await cluster(t, 2, { channels: { room: { presence: true } } })
  const bob = await connect(`${b.ws}/ws/room:1`, { headers: { authorization: `Bearer ${b.token({ sub: 'bob' })}` } })
  await bob.nextOfType('ready')
  const pub = await api(a.base, 'POST', '/api/channels/room:1/messages', { body: { data: 'x' }, headers: { 'x-api-key': 'k' } })
  t.equal(pub.status, 201)
  t.equal((await bob.nextOfType('message')).id, pub.body.id)
  const presence = await api(a.base, 'GET', '/api/channels/room:1/presence', { headers: { 'x-api-key': 'k' } })
  t.same(presence.body, { channel: 'room:1', users: [{ userId: 'bob', connections: 1 }] })
  const status = await api(a.base, 'GET', '/api/users/bob', { headers: { 'x-api-key': 'k' } })
  t.same(status.body, { userId: 'bob', online: true, connections: 1, channels: ['room:1'] })
  const direct = await api(a.base, 'POST', '/api/users/bob/messages', { body: { data: { hi: 1 } }, headers: { 'x-api-key': 'k' } })
  t.equal(direct.status, 202)
  t.same((await bob.nextOfType('direct')).data, { hi: 1 })
  const kick = await api(a.base, 'DELETE', '/api/users/bob/connections', { headers: { 'x-api-key': 'k' } })
  t.equal(kick.status, 202)
  t.equal((await bob.closed).code, 4403)
})

t.test('sockets that close while their setup awaits Redis leave nothing behind', async t => {
  const [a] = await cluster(t, 1)
  const WebSocket = (await import('ws')).default
  await Promise.all(Array.from({ length: 20 }, (_v, i) => new Promise<void>(resolve => {
    const ws = new WebSocket(`${a.ws}/ws/race`, { headers: { authorization: `Bearer ${a.token({ sub: `r${i}` })}` } })
    ws.once('open', () => { if (i % 2 === 0) ws.terminate(); else ws.close() })
    ws.once('close', () => resolve())
    ws.once('error', () => {})
  })))
  let hub = -1
  for (let i = 0; i < 50; i++) {
    hub = a.app.gatecast.hub.size + a.app.gatecast.hub.subscriptionsByNamespace().size
    if (hub === 0 && (await a.app.gatecast.channels()).length === 0) break
    await sleep(100)
  }
  t.equal(hub, 0, 'no socket left in the hub or on a channel')
  t.same(await a.app.gatecast.channels(), [], 'no presence left in Redis')
})
