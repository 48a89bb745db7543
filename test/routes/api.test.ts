// The server API (contract section 4) over real HTTP, with real sockets on the other end.
import t from 'tap'
import { api, startApp, type TestApp } from '../helpers/app.ts'
import { connect, type Client, type Frame } from '../helpers/client.ts'
import { sleep, waitFor } from '../helpers/wait.ts'

const KEY = 'backend-api-key-0123456789'
const auth = { 'x-api-key': KEY }

async function start (test: Parameters<typeof startApp>[0]): Promise<TestApp> {
  // verifyCredentials: no users file, so no demo users (and no scrypt) per app
  return startApp(test, { config: { apiKey: KEY }, verifyCredentials: () => null })
}

async function open (test: { teardown: (fn: () => unknown) => void }, app: TestApp, channel: string, sub: string): Promise<Client> {
  const c = await connect(`${app.ws}/ws/${encodeURIComponent(channel)}`, { headers: { authorization: `Bearer ${app.token({ sub })}` } })
  test.teardown(() => c.ws.terminate())
  await c.nextOfType('ready')
  return c
}

/** Waits a little and returns every frame that arrived meanwhile (for "nothing else came" checks). */
async function settle (c: Client, ms = 150): Promise<Frame[]> {
  await sleep(ms)
  return c.frames.splice(0)
}

t.test('POST /api/channels/:channel/messages: 201 {id}, every socket on the channel gets it with from null', async t => {
  const app = await start(t)
  const a = await open(t, app, 'chat', 'alice')
  const b = await open(t, app, 'chat', 'bob')
  const other = await open(t, app, 'elsewhere', 'carol')
  const res = await api(app.base, 'POST', '/api/channels/chat/messages', { body: { data: { text: 'from backend', n: 1 } }, headers: auth })
  t.equal(res.status, 201)
  t.type(res.body.id, 'string')
  t.ok(res.body.id.length > 0)
  for (const c of [a, b]) {
    const m = await c.nextOfType('message')
    t.equal(m.channel, 'chat')
    t.equal(m.id, res.body.id)
    t.equal(m.from, null)
    t.same(m.data, { text: 'from backend', n: 1 })
    t.type(m.ts, 'number')
  }
  t.same((await settle(other)).filter(f => f.type === 'message'), [], 'a socket on another channel gets nothing')

  // any JSON value is data, null and scalars included
  for (const data of [null, 42, 'text', [1, 'two']]) {
    const r = await api(app.base, 'POST', '/api/channels/chat/messages', { body: { data }, headers: auth })
    t.equal(r.status, 201)
    const m = await a.nextOfType('message')
    t.equal(m.id, r.body.id)
    t.same(m.data, data)
  }
})

t.test('GET /api/channels/:channel/messages: history oldest first, since and limit', async t => {
  const app = await start(t)
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    const r = await api(app.base, 'POST', '/api/channels/news/messages', { body: { data: { i } }, headers: auth })
    t.equal(r.status, 201)
    ids.push(r.body.id)
  }
  t.equal(new Set(ids).size, 6, 'ids are unique')

  const all = await api(app.base, 'GET', '/api/channels/news/messages', { headers: auth })
  t.equal(all.status, 200)
  t.same(all.body.messages.map((m: { id: string }) => m.id), ids, 'oldest first')
  t.same(all.body.messages.map((m: { data: { i: number } }) => m.data.i), [0, 1, 2, 3, 4, 5])
  t.match(all.body.messages[0], { channel: 'news', from: null, data: { i: 0 } })
  t.type(all.body.messages[0].ts, 'number')

  const since = await api(app.base, 'GET', `/api/channels/news/messages?since=${encodeURIComponent(ids[2])}`, { headers: auth })
  t.equal(since.status, 200)
  t.same(since.body.messages.map((m: { id: string }) => m.id), ids.slice(3), 'since: only newer ones, oldest first')

  const newest = await api(app.base, 'GET', `/api/channels/news/messages?since=${encodeURIComponent(ids[5])}`, { headers: auth })
  t.equal(newest.status, 200)
  t.same(newest.body.messages, [], 'since the newest id: nothing')

  const limited = await api(app.base, 'GET', '/api/channels/news/messages?limit=2', { headers: auth })
  t.equal(limited.status, 200)
  t.same(limited.body.messages.map((m: { id: string }) => m.id), ids.slice(4), 'limit alone: the newest two, oldest first')

  // since + limit pages forward: the first `limit` messages after `since`, so a
  // backend can read on from the last id it got without skipping any
  const page = await api(app.base, 'GET', `/api/channels/news/messages?since=${encodeURIComponent(ids[1])}&limit=2`, { headers: auth })
  t.equal(page.status, 200)
  t.same(page.body.messages.map((m: { id: string }) => m.id), [ids[2], ids[3]], 'since + limit: the next two after since, no gap')

  const empty = await api(app.base, 'GET', '/api/channels/nothing-here/messages', { headers: auth })
  t.equal(empty.status, 200)
  t.same(empty.body.messages, [])

  const badSince = await api(app.base, 'GET', '/api/channels/news/messages?since=not%20an%20id', { headers: auth })
  t.equal(badSince.status, 400)
  const badLimit = await api(app.base, 'GET', '/api/channels/news/messages?limit=0', { headers: auth })
  t.equal(badLimit.status, 400)
  t.equal(badLimit.body.code, 'bad_request')
})

t.test('GET /api/channels: connections and users per channel', async t => {
  const app = await start(t)
  const empty = await api(app.base, 'GET', '/api/channels', { headers: auth })
  t.equal(empty.status, 200)
  t.same(empty.body, { channels: [] })

  await open(t, app, 'chat', 'alice')
  await open(t, app, 'chat', 'alice')
  const bob = await open(t, app, 'chat', 'bob')
  await open(t, app, 'room.2', 'bob')
  const res = await api(app.base, 'GET', '/api/channels', { headers: auth })
  t.equal(res.status, 200)
  const byName = (list: Array<{ name: string }>) => [...list].sort((x, y) => x.name.localeCompare(y.name))
  t.same(byName(res.body.channels), [
    { name: 'chat', connections: 3, users: 2 },
    { name: 'room.2', connections: 1, users: 1 }
  ])

  bob.close()
  await bob.closed
  await waitFor(async () => {
    const r = await api(app.base, 'GET', '/api/channels', { headers: auth })
    return r.body.channels.find((c: { name: string }) => c.name === 'chat')?.connections === 2
  }, { ms: 3000, every: 20, what: 'chat down to two connections' })
  const after = await api(app.base, 'GET', '/api/channels', { headers: auth })
  t.same(byName(after.body.channels), [
    { name: 'chat', connections: 2, users: 1 },
    { name: 'room.2', connections: 1, users: 1 }
  ])
})

t.test('GET /api/channels/:channel/presence: users with their socket counts', async t => {
  const app = await start(t)
  await open(t, app, 'lobby', 'alice')
  await open(t, app, 'lobby', 'alice')
  await open(t, app, 'lobby', 'bob')
  await open(t, app, 'other', 'carol')
  const res = await api(app.base, 'GET', '/api/channels/lobby/presence', { headers: auth })
  t.equal(res.status, 200)
  t.equal(res.body.channel, 'lobby')
  t.same([...res.body.users].sort((x: { userId: string }, y: { userId: string }) => x.userId.localeCompare(y.userId)), [
    { userId: 'alice', connections: 2 },
    { userId: 'bob', connections: 1 }
  ])
  const none = await api(app.base, 'GET', '/api/channels/empty/presence', { headers: auth })
  t.equal(none.status, 200)
  t.same(none.body, { channel: 'empty', users: [] })
})

t.test('POST /api/broadcast: 202 and a direct frame on every socket of every channel', async t => {
  const app = await start(t)
  const sockets = [
    await open(t, app, 'chat', 'alice'),
    await open(t, app, 'chat', 'bob'),
    await open(t, app, 'news', 'alice'),
    await open(t, app, 'dm#carol,dave', 'carol')
  ]
  const res = await api(app.base, 'POST', '/api/broadcast', { body: { data: { notice: 'maintenance at 5' } }, headers: auth })
  t.equal(res.status, 202)
  let id: string | undefined
  for (const c of sockets) {
    const d = await c.nextOfType('direct')
    t.equal(d.from, null)
    t.same(d.data, { notice: 'maintenance at 5' })
    t.type(d.id, 'string')
    t.type(d.ts, 'number')
    if (id === undefined) id = d.id
    else t.equal(d.id, id, 'one broadcast, one id')
    t.same((await settle(c, 50)).filter(f => f.type === 'direct'), [], 'exactly one direct frame per socket')
  }
})

t.test('POST /api/users/:userId/messages: only that user\'s sockets get the direct frame', async t => {
  const app = await start(t)
  const a1 = await open(t, app, 'chat', 'alice')
  const a2 = await open(t, app, 'news', 'alice')
  const b = await open(t, app, 'chat', 'bob')
  const res = await api(app.base, 'POST', '/api/users/alice/messages', { body: { data: { private: true } }, headers: auth })
  t.equal(res.status, 202)
  for (const c of [a1, a2]) {
    const d = await c.nextOfType('direct')
    t.same(d.data, { private: true })
    t.equal(d.from, null)
    t.notOk('channel' in d && d.channel !== undefined, 'a direct frame is not a channel message')
  }
  t.same((await settle(b)).filter(f => f.type === 'direct'), [], 'bob got nothing')

  const nobody = await api(app.base, 'POST', '/api/users/nobody/messages', { body: { data: 1 }, headers: auth })
  t.equal(nobody.status, 202, 'an offline user is not an error')
})

t.test('GET /api/users/:userId: online, connections and channels; an offline user', async t => {
  const app = await start(t)
  await open(t, app, 'chat', 'alice')
  await open(t, app, 'chat', 'alice')
  const n = await open(t, app, 'news', 'alice')
  const res = await api(app.base, 'GET', '/api/users/alice', { headers: auth })
  t.equal(res.status, 200)
  t.equal(res.body.userId, 'alice')
  t.equal(res.body.online, true)
  t.equal(res.body.connections, 3)
  t.same([...res.body.channels].sort(), ['chat', 'news'])

  const off = await api(app.base, 'GET', '/api/users/zoe', { headers: auth })
  t.equal(off.status, 200)
  t.same(off.body, { userId: 'zoe', online: false, connections: 0, channels: [] })

  n.close()
  await n.closed
  await waitFor(async () => (await api(app.base, 'GET', '/api/users/alice', { headers: auth })).body.connections === 2, { ms: 3000, every: 20, what: 'alice with two connections' })
  const after = await api(app.base, 'GET', '/api/users/alice', { headers: auth })
  t.same(after.body, { userId: 'alice', online: true, connections: 2, channels: ['chat'] })
})

t.test('DELETE /api/users/:userId/connections: 202, every socket of the user closes with 4403, others stay', async t => {
  const app = await start(t)
  const a1 = await open(t, app, 'chat', 'alice')
  const a2 = await open(t, app, 'news', 'alice')
  const b = await open(t, app, 'chat', 'bob')
  const res = await api(app.base, 'DELETE', '/api/users/alice/connections', { headers: auth })
  t.equal(res.status, 202)
  for (const c of [a1, a2]) {
    const { code } = await c.closed
    t.equal(code, 4403)
  }
  await waitFor(async () => (await api(app.base, 'GET', '/api/users/alice', { headers: auth })).body.online === false, { ms: 3000, every: 20, what: 'alice offline' })
  t.same((await api(app.base, 'GET', '/api/users/alice', { headers: auth })).body, { userId: 'alice', online: false, connections: 0, channels: [] })

  // bob is untouched and still receives
  t.equal(b.ws.readyState, b.ws.OPEN)
  const pub = await api(app.base, 'POST', '/api/channels/chat/messages', { body: { data: 'still here' }, headers: auth })
  const m = await b.nextOfType('message')
  t.equal(m.id, pub.body.id)

  const nobody = await api(app.base, 'DELETE', '/api/users/nobody/connections', { headers: auth })
  t.equal(nobody.status, 202)
})

t.test('auth: 401 without credentials or with a wrong key, 403 for a non-admin token, OK for admin token or key', async t => {
  // each route from a client of its own (behind a trusted local proxy): failed
  // credentials are limited per IP, and the routes together fail more than the bound
  const app = await startApp(t, { config: { apiKey: KEY }, env: { TRUST_PROXY: '127.0.0.1' }, verifyCredentials: () => null })
  const routes: Array<[string, string, unknown?]> = [
    ['POST', '/api/channels/chat/messages', { data: 1 }],
    ['GET', '/api/channels/chat/messages'],
    ['GET', '/api/channels'],
    ['GET', '/api/channels/chat/presence'],
    ['POST', '/api/broadcast', { data: 1 }],
    ['POST', '/api/users/alice/messages', { data: 1 }],
    ['GET', '/api/users/alice'],
    ['DELETE', '/api/users/alice/connections']
  ]
  const admin = app.token({ sub: 'ops', roles: ['admin'] })
  const plain = app.token({ sub: 'alice' })
  const expect2xx: Record<string, number> = { POST: 201, GET: 200, DELETE: 202 }
  for (const [i, [method, path, body]] of routes.entries()) {
    const client = { 'x-forwarded-for': `192.0.2.${i + 1}` }
    const ok = path === '/api/broadcast' || path.startsWith('/api/users/') ? (method === 'GET' ? 200 : 202) : expect2xx[method]

    const none = await api(app.base, method, path, { body, headers: client })
    t.equal(none.status, 401, `${method} ${path} without credentials`)
    t.match(none.body, { statusCode: 401, error: 'Unauthorized', code: String, message: String })

    const wrongKey = await api(app.base, method, path, { body, headers: { ...client, 'x-api-key': 'wrong' } })
    t.equal(wrongKey.status, 401, `${method} ${path} with a wrong key`)

    const badToken = await api(app.base, method, path, { body, headers: { ...client, authorization: `Bearer ${app.token({ sub: 'ops', roles: ['admin'] }, { key: 'another-secret-another-secret-another-secret' })}` } })
    t.equal(badToken.status, 401, `${method} ${path} with an admin token signed by someone else`)

    const user = await api(app.base, method, path, { body, headers: { ...client, authorization: `Bearer ${plain}` } })
    t.equal(user.status, 403, `${method} ${path} with a non-admin token`)
    t.match(user.body, { statusCode: 403, error: 'Forbidden', code: String })

    const byToken = await api(app.base, method, path, { body, headers: { ...client, authorization: `Bearer ${admin}` } })
    t.equal(byToken.status, ok, `${method} ${path} with an admin token`)

    const byKey = await api(app.base, method, path, { body, headers: { ...client, ...auth } })
    t.equal(byKey.status, ok, `${method} ${path} with the API key`)
  }
})

t.test('auth: without API_KEY configured, any X-API-Key is refused and an admin token works', async t => {
  const app = await startApp(t, { verifyCredentials: () => null })
  const res = await api(app.base, 'GET', '/api/channels', { headers: { 'x-api-key': KEY } })
  t.equal(res.status, 401)
  const empty = await api(app.base, 'GET', '/api/channels', { headers: { 'x-api-key': '' } })
  t.equal(empty.status, 401)
  const ok = await api(app.base, 'GET', '/api/channels', { headers: { authorization: `Bearer ${app.token({ sub: 'ops', roles: ['admin'] })}` } })
  t.equal(ok.status, 200)
})

t.test('400: bad channel names and bad bodies', async t => {
  const app = await start(t)
  const badChannels = ['bad%20name', 'bad!name', 'a'.repeat(129), 'slash%2Fin']
  for (const ch of badChannels) {
    const pub = await api(app.base, 'POST', `/api/channels/${ch}/messages`, { body: { data: 1 }, headers: auth })
    t.equal(pub.status, 400, `publish to ${ch.slice(0, 20)}`)
    t.match(pub.body, { statusCode: 400, error: 'Bad Request', code: String, message: String })
    const hist = await api(app.base, 'GET', `/api/channels/${ch}/messages`, { headers: auth })
    t.equal(hist.status, 400, `history of ${ch.slice(0, 20)}`)
    const pres = await api(app.base, 'GET', `/api/channels/${ch}/presence`, { headers: auth })
    t.equal(pres.status, 400, `presence of ${ch.slice(0, 20)}`)
  }
  const longest = await api(app.base, 'POST', `/api/channels/${'a'.repeat(128)}/messages`, { body: { data: 1 }, headers: auth })
  t.equal(longest.status, 201, 'a 128-character name is valid')

  const bodies: Array<[string, string, unknown]> = [
    ['POST', '/api/channels/chat/messages', {}],
    ['POST', '/api/channels/chat/messages', { text: 'no data field' }],
    ['POST', '/api/channels/chat/messages', 'a string'],
    ['POST', '/api/broadcast', {}],
    ['POST', '/api/broadcast', [1, 2]],
    ['POST', '/api/users/alice/messages', {}],
    ['POST', '/api/users/alice/messages', null]
  ]
  for (const [method, path, body] of bodies) {
    const res = await api(app.base, method, path, { body, headers: auth })
    t.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}`)
    t.equal(res.body.code, 'bad_request')
  }
  const garbage = await fetch(`${app.base}/api/channels/chat/messages`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"data":' })
  t.equal(garbage.status, 400, 'malformed JSON')
  const history = await api(app.base, 'GET', '/api/channels/chat/messages', { headers: auth })
  t.same(history.body.messages, [], 'nothing refused was published')
})
