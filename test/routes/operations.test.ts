import t from 'tap'
import { api, SECRET, startApp } from '../helpers/app.ts'
import { connect, refused } from '../helpers/client.ts'
import { spawnNode } from '../helpers/process.ts'
import { eventually, sleep } from '../helpers/wait.ts'
import { createSigner } from 'fast-jwt'

t.test('under pressure: new logins and upgrades get 503 + Retry-After, open sockets keep working', async t => {
  const { app, base, ws, token } = await startApp(t, { config: { maxEventLoopDelay: 30 }, verifyCredentials: () => null })
  // start-up work itself lags the loop; begin from a calm one
  const calm = () => { const lag = app.memoryUsage().eventLoopDelay; return Number.isFinite(lag) && lag <= 30 }
  await eventually(calm, { ms: 10_000, every: 100 })
  t.ok(calm(), 'calm before the test')
  const open = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token()}` } })
  t.teardown(() => open.close())
  await open.nextOfType('ready')
  // keep the event loop busy in 80 ms slices for a while
  const until = Date.now() + 2500
  const burn = () => {
    const end = Date.now() + 80
    while (Date.now() < end);
    if (Date.now() < until) setTimeout(burn, 1)
  }
  burn()
  await sleep(700)
  const login = await api(base, 'POST', '/auth/login', { body: { username: 'a', password: 'b' } })
  t.equal(login.status, 503)
  t.equal(login.body.code, 'overloaded')
  t.equal(login.headers.get('retry-after'), '5')
  const up = await refused(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token()}` } })
  t.equal(up.status, 503)
  t.equal(up.body.code, 'overloaded')
  open.send({ type: 'ping' })
  t.equal((await open.nextOfType('pong', 5000)).type, 'pong', 'the open socket is served')
  t.equal((await api(base, 'GET', '/health')).status, 200, 'health is not shed')
  await sleep(Math.max(0, until - Date.now()) + 1000)
  const after = await api(base, 'POST', '/auth/login', { body: { username: 'a', password: 'b' } })
  t.equal(after.status, 401, 'back to normal once the loop is calm')
})

t.test('graceful close: /ready and upgrades turn 503 first, sockets close 1001, bounded by shutdownTimeout', async t => {
  const { app, base, ws, token } = await startApp(t, { config: { shutdownTimeout: 2 } })
  const polite = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token({ sub: 'p' })}` } })
  const stuck = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token({ sub: 's' })}` } })
  // never answers the close handshake: the server must give up on it at the deadline
  const raw = (stuck.ws as unknown as { _socket: { pause: () => void } })._socket
  raw.pause()
  const started = Date.now()
  const closing = app.close()
  t.equal((await polite.closed).code, 1001)
  t.equal((await api(base, 'GET', '/ready')).status, 503, '/ready is 503 while draining')
  const late = await refused(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token()}` } })
  t.equal(late.status, 503)
  t.equal(late.body.code, 'shutting_down')
  await closing
  const took = Date.now() - started
  t.ok(took >= 1500 && took < 5000, `closed within the deadline (${took} ms)`)
})

t.test('SIGTERM: the process closes sockets with 1001 and exits 0', async t => {
  const node = await spawnNode(t, { JWT_SECRET: SECRET, SHUTDOWN_TIMEOUT: '3' })
  const sign = createSigner({ key: SECRET, expiresIn: 60_000 })
  const clients = await Promise.all([1, 2, 3].map(i => connect(`${node.ws}/ws/chat`, { headers: { authorization: `Bearer ${sign({ sub: `u${i}` })}` } })))
  const exited = new Promise<number | null>(resolve => node.child.once('exit', code => resolve(code)))
  node.child.kill('SIGTERM')
  for (const c of clients) t.equal((await c.closed).code, 1001)
  t.equal(await exited, 0)
})

t.test('logs are pretty only in development on a terminal', async t => {
  const { defaultLogger } = await import('../../server.ts')
  t.same(defaultLogger({ logLevel: 'info', production: false }, false), { level: 'info' }, 'JSON when piped')
  t.same(defaultLogger({ logLevel: 'warn', production: true }, true), { level: 'warn' }, 'JSON in production')
  t.match(defaultLogger({ logLevel: 'debug', production: false }, true), { level: 'debug', transport: { target: 'pino-pretty' } })
})
