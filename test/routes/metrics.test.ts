import t from 'tap'
import { api, startApp } from '../helpers/app.ts'
import { connect, refused } from '../helpers/client.ts'
import { sleep } from '../helpers/wait.ts'

function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-z_]+)(\{(.*)\})? (.+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = Object.fromEntries((m[3] ?? '').split(',').filter(Boolean).map(kv => kv.split('=')).map(([k, v]) => [k, v.replace(/"/g, '')]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4])
  }
  return undefined
}

t.test('metrics move by the right amounts after a scenario', async t => {
  const { base, ws, token } = await startApp(t, { config: { apiKey: 'key', channels: { room: { presence: true } } } })
  const a = await connect(`${ws}/ws/room:1`, { headers: { authorization: `Bearer ${token({ sub: 'alice' })}` } })
  const b = await connect(`${ws}/ws/room:1`, { headers: { authorization: `Bearer ${token({ sub: 'bob' })}` } })
  const c = await connect(`${ws}/ws/plain`, { headers: { authorization: `Bearer ${token({ sub: 'carol' })}` } })
  t.equal((await refused(`${ws}/ws/room:1`)).status, 401)
  t.equal((await refused(`${ws}/ws/bad%20name`, { headers: { authorization: `Bearer ${token()}` } })).status, 400)
  for (let i = 0; i < 3; i++) a.send({ type: 'publish', data: i, ref: i })
  for (let i = 0; i < 3; i++) await a.nextOfType('ack')
  const pub = await api(base, 'POST', '/api/channels/room:1/messages', { body: { data: 'x' }, headers: { 'x-api-key': 'key' } })
  t.equal(pub.status, 201)
  for (let i = 0; i < 4; i++) await b.nextOfType('message')
  c.close()
  await c.closed
  await sleep(50)

  t.equal((await api(base, 'GET', '/metrics')).status, 401, 'API_KEY protects the metrics')
  const notAdmin = await api(base, 'GET', '/metrics', { headers: { authorization: `Bearer ${token({ sub: 'eve' })}` } })
  t.equal(notAdmin.status, 403, 'a Bearer token without the admin role: 403')
  t.equal(notAdmin.body.code, 'forbidden')
  t.equal((await api(base, 'GET', '/metrics', { headers: { authorization: `Bearer ${token({ sub: 'root', roles: ['admin'] })}` } })).status, 200, 'an admin Bearer token reads them')
  const res = await fetch(`${base}/metrics`, { headers: { 'x-api-key': 'key' } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/plain/)
  const text = await res.text()
  t.equal(sample(text, 'gatecast_upgrades_total', { status: '101', code: 'ok' }), 3)
  t.equal(sample(text, 'gatecast_upgrades_total', { status: '401', code: 'token_missing' }), 1)
  t.equal(sample(text, 'gatecast_upgrades_total', { status: '400', code: 'bad_channel' }), 1)
  t.equal(sample(text, 'gatecast_messages_published_total', { source: 'client' }), 3)
  t.equal(sample(text, 'gatecast_messages_published_total', { source: 'api' }), 1)
  t.equal(sample(text, 'gatecast_subscriptions', { namespace: 'room' }), 2)
  t.equal(sample(text, 'gatecast_sockets_open', {}), 2)
  t.equal(sample(text, 'gatecast_socket_closes_total', { code: '1005' }), 1, 'a close without a code is 1005')
  t.equal(sample(text, 'gatecast_frames_in_total'), 3)
  // 4 messages × 2 sockets, 3 acks, 3 ready, 1 presence join seen by alice (bob joined after her)
  t.equal(sample(text, 'gatecast_frames_out_total'), 8 + 3 + 3 + 1)
  t.equal(sample(text, 'gatecast_fanout_sockets_count'), 4 + 1, 'one observation per message and presence frame')
  t.equal(sample(text, 'gatecast_handshake_seconds_count'), 3)
  t.equal(sample(text, 'gatecast_publish_delivery_seconds_count'), 4)
  t.ok((sample(text, 'process_cpu_user_seconds_total') ?? -1) >= 0, 'default process metrics are there')
  a.close()
  b.close()
})
