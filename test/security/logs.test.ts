// Logs and errors (issue 5, item 6): after a full scenario at the most verbose
// level — logins good and bad, refresh and reuse, logout, upgrades with tokens
// in every place, refresh frames, the server API with an API key and with an
// admin Bearer, 5xx forced by a plugin throwing plain Errors — not one captured
// log line holds a token (or a part of one), a password, a refresh token or
// the API key. And a 5xx response never carries a stack or an internal message.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify, { type FastifyPluginAsync } from 'fastify'
import { api, SECRET, startApp } from '../helpers/app.ts'
import { connect, type Client } from '../helpers/client.ts'
import { bearer, claims, closedWithin, nowSec, pingPong, signJwt, tryUpgrade } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'
import { UserStore } from '../../src/auth/users.ts'
import { gatecast, requestSerializer } from '../../app.ts'

const API_KEY = 'gk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0'
const WRONG_KEY = 'gk_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9'
const LENA_PASSWORD = 'Lena-correct-horse-battery-7731'
const MAX_PASSWORD = 'Max-tr0ub4dor&3-password-4412'
// what a database driver would put in an error: it must reach the logs (for operators), never a client
const INTERNAL = 'connect ECONNREFUSED 10.0.0.5:5432 (postgres://gatecast:db-pw-5150@10.0.0.5/app)'

/** A plugin, loaded like PLUGINS/--plugin ones, whose route and hooks throw plain Errors. */
const faulty: FastifyPluginAsync = async (app) => {
  app.get('/plugin/boom', async () => { throw new Error(INTERNAL) })
  app.post('/plugin/boom', async () => { throw new TypeError(INTERNAL) })
  app.gatecast.onConnect(ctx => { if (ctx.channel === 'boom') throw new Error(INTERNAL) })
  app.gatecast.onPublish(ctx => { if (ctx.channel === 'boom-pub') throw new Error(INTERNAL) })
}

/** A 5xx body: the contract's error shape, a generic message, nothing from inside. */
function cleanServerError (t: Test, status: number, body: unknown, label: string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  t.ok(status >= 500, `${label}: a 5xx (${status})`)
  t.match(body, { statusCode: status, error: String, message: String, code: String }, `${label}: the JSON error shape with a code`)
  for (const leak of ['ECONNREFUSED', '10.0.0.5', 'db-pw-5150', 'postgres://', 'TypeError', 'Error:', '    at ', '.ts:', '.js:', 'node_modules', '/work/']) {
    t.notOk(text.includes(leak), `${label}: the body does not contain ${JSON.stringify(leak)}`)
  }
}

t.test('no secret in any log line at trace level after a full scenario', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-logs-'))
  const usersFile = join(dir, 'users.json')
  const store = UserStore.open(usersFile)
  await store.set('lena', LENA_PASSWORD, { roles: ['admin'] })
  await store.set('max', MAX_PASSWORD)

  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const a = await startApp(t, {
    logger: { level: 'trace', stream },
    plugins: [faulty],
    config: { logLevel: 'trace', usersFile, apiKey: API_KEY, loginFailures: 3, wsExpiryGrace: 0 }
  })

  const secrets: Array<[string, string]> = []
  const keep = (label: string, value: string): string => { secrets.push([label, value]); return value }
  keep('API key', API_KEY)
  keep('wrong API key', WRONG_KEY)
  keep('lena password', LENA_PASSWORD)
  keep('max password', MAX_PASSWORD)
  const sockets: Client[] = []
  t.teardown(() => { for (const s of sockets) s.ws.terminate() })

  // --- logins: good, wrong password, unknown user, bad bodies, lockout ---
  const login = async (username: string, password: string, status: number): Promise<any> => {
    const res = await api(a.base, 'POST', '/auth/login', { body: { username, password } })
    t.equal(res.status, status, `login ${username}: ${status}`)
    return res.body
  }
  const l1 = await login('lena', LENA_PASSWORD, 200)
  keep('access 1', l1.access_token)
  keep('refresh 1', l1.refresh_token)
  await login('lena', keep('wrong password 1', 'Lena-wrong-guess-0001'), 401)
  await login('nobody-here', keep('unknown user password', 'Nobody-secret-0002'), 401)
  t.equal((await api(a.base, 'POST', '/auth/login', { body: { username: 'lena', password: keep('password with extra field', 'Extra-field-secret-0003'), remember: true } })).status, 400, 'login with an extra field: 400')
  t.equal((await api(a.base, 'POST', '/auth/login', { body: { username: 'lena', password: 12345 } })).status, 400, 'login with a numeric password: 400')
  const broken = await fetch(`${a.base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"username":"lena","password":"${keep('password in broken JSON', 'Broken-json-secret-0004')}"` })
  t.equal(broken.status, 400, 'login with broken JSON: 400')
  t.notOk((await broken.text()).includes('Broken-json-secret-0004'), 'the 400 does not echo the body')
  const inQuery = await fetch(`${a.base}/auth/login?password=${keep('password in a query', 'Query-secret-0005')}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'max', password: MAX_PASSWORD }) })
  t.equal(inQuery.status, 200, 'login with a stray query: still fine')
  keep('access max', ((await inQuery.json()) as any).access_token)
  for (let i = 0; i < 3; i++) await login('max', keep(`max wrong ${i}`, `Max-wrong-guess-00${i}9`), 401)
  await login('max', MAX_PASSWORD, 429) // locked: the right password, refused, still not logged

  // --- refresh: rotation, reuse of a rotated token (family revoked), garbage ---
  const r1 = await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: l1.refresh_token } })
  t.equal(r1.status, 200, 'refresh: 200')
  keep('access 2', r1.body.access_token)
  keep('refresh 2', r1.body.refresh_token)
  t.equal((await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: l1.refresh_token } })).status, 401, 'reuse of a rotated refresh token: 401')
  t.equal((await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: r1.body.refresh_token } })).status, 401, 'its family is revoked')
  t.equal((await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: keep('garbage refresh', 'rt_garbage_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5') } })).status, 401, 'garbage refresh token: 401')
  const l2 = await login('lena', LENA_PASSWORD, 200)
  keep('access 3', l2.access_token)
  keep('refresh 3', l2.refresh_token)

  // --- upgrades: the token in every place, accepted and refused ---
  const tok = (sub: string, extra: Record<string, unknown> = {}): string => keep(`token ${sub}`, signJwt(claims(sub, 600, extra)))
  const open = async (url: string, opts = {}): Promise<Client> => {
    const c = await connect(url, opts)
    sockets.push(c)
    await c.nextOfType('ready')
    return c
  }
  const h = await open(`${a.ws}/ws/chat`, bearer(l2.access_token))
  const h2 = await open(`${a.ws}/ws/chat?token=${l2.access_token}`)
  const p = await open(`${a.ws}/ws/chat`, { protocols: ['gatecast', `bearer.${tok('proto')}`] })
  await open(`${a.ws}/ws/chat?token=${tok('query')}`)
  await open(`${a.ws}/ws/chat?Authorization=Bearer%20${tok('gw')}`)
  await open(`${a.ws}/ws/chat?since=x0:0&Authorization=${tok('bare')}`)
  const expired = keep('expired token', signJwt({ sub: 'late', exp: nowSec() - 3600 }))
  const wrongKey = keep('wrong-key token', signJwt(claims('forger'), { key: 'not-the-secret-not-the-secret-not-the-secret' }))
  for (const bad of [expired, wrongKey]) {
    t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${bad}`)).status, 401)
    t.equal((await tryUpgrade(`${a.ws}/ws/chat`, bearer(bad))).status, 401)
    t.equal((await tryUpgrade(`${a.ws}/ws/chat`, { protocols: ['gatecast', `bearer.${bad}`] })).status, 401)
  }
  t.equal((await tryUpgrade(`${a.ws}/ws/dm%23x,y?token=${tok('not-in-dm')}`)).status, 403)
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${tok('conflict-a')}`, bearer(tok('conflict-b')))).status, 401)
  t.equal((await tryUpgrade(`${a.ws}/ws/%E0%A4%A?token=${tok('bad-url')}`)).status, 400)
  t.equal((await api(a.base, 'GET', `/nowhere?token=${tok('not-found')}&api_key=${API_KEY}`)).status, 404)
  t.equal((await api(a.base, 'GET', `/ws/chat?token=${tok('plain-get')}`)).status, 426)

  // --- frames that carry tokens, and one that makes ws log a protocol error at debug ---
  h.send({ type: 'refresh', token: tok('lena') })
  t.equal((await h.nextOfType('refreshed')).type, 'refreshed')
  h.send({ type: 'refresh', token: tok('someone-else') })
  t.equal((await h.nextOfType('error')).code, 'forbidden')
  h.send({ type: 'refresh', token: expired })
  t.equal((await h.nextOfType('error')).code, 'forbidden')
  h.send({ type: 'publish', data: { note: `a user may paste a token: ${tok('pasted')}` } })
  await h.nextOfType('message')
  const utf = await open(`${a.ws}/ws/chat?token=${tok('utf8')}`)
  utf.ws.send(Buffer.from([0xff, 0xfe]), { binary: false })
  t.equal((await closedWithin(utf, 3000)).code, 1007)

  // --- server API: API key, wrong key, admin Bearer (login and minted), non-admin Bearer ---
  const admin = keep('minted admin token', a.token({ sub: 'ops', roles: ['admin'] }))
  const asKey = { 'x-api-key': API_KEY }
  t.equal((await api(a.base, 'POST', '/api/channels/chat/messages', { body: { data: 'via key' }, headers: asKey })).status, 201)
  t.equal((await api(a.base, 'GET', '/api/channels', { headers: asKey })).status, 200)
  t.equal((await api(a.base, 'GET', '/api/channels/chat/presence', { headers: { authorization: `Bearer ${admin}` } })).status, 200)
  t.equal((await api(a.base, 'GET', '/api/users/lena', { headers: { authorization: `Bearer ${l2.access_token}` } })).status, 200, 'lena has the admin role')
  t.equal((await api(a.base, 'POST', '/api/broadcast', { body: { data: 'hi' }, headers: { 'x-api-key': WRONG_KEY } })).status, 401)
  t.equal((await api(a.base, 'GET', '/api/channels', { headers: { authorization: `Bearer ${tok('plain-user')}` } })).status, 403)
  t.equal((await api(a.base, 'GET', '/api/channels', { headers: { authorization: `Basic ${Buffer.from(`lena:${LENA_PASSWORD}`).toString('base64')}` } })).status, 401)
  t.equal((await api(a.base, 'GET', '/metrics', { headers: asKey })).status, 200)
  t.equal((await api(a.base, 'DELETE', '/api/users/query/connections', { headers: asKey })).status, 202)

  // --- 5xx: plugin route and hooks that throw plain Errors (their bodies: next test) ---
  t.equal((await api(a.base, 'GET', `/plugin/boom?token=${tok('boom-query')}`, { headers: { authorization: `Bearer ${admin}` } })).status, 500)
  t.equal((await api(a.base, 'POST', '/plugin/boom', { body: { password: keep('password posted to a failing route', 'Failing-route-secret-0006') } })).status, 500)
  t.equal((await tryUpgrade(`${a.ws}/ws/boom`, bearer(tok('boom-connect')))).status, 500)
  t.equal((await api(a.base, 'POST', '/api/channels/boom-pub/messages', { body: { data: 1 }, headers: asKey })).status, 500)
  const bp = await open(`${a.ws}/ws/boom-pub`, bearer(tok('boom-frames')))
  bp.send({ type: 'publish', data: 1, ref: 'r' })
  t.equal((await bp.nextOfType('error')).code, 'internal')

  // --- logout: access and refresh revoked, the open socket closed 4401 ---
  t.equal((await api(a.base, 'POST', '/auth/logout', { body: { refresh_token: l2.refresh_token }, headers: { authorization: `Bearer ${l2.access_token}` } })).status, 204)
  t.equal((await closedWithin(h2, 3000)).code, 4401, 'the socket of the logged-out token is closed 4401')
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${l2.access_token}`)).status, 401)
  t.equal((await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: l2.refresh_token } })).status, 401)
  t.equal((await api(a.base, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${l2.access_token}` } })).status, 401)

  await pingPong(p)
  for (const s of sockets) s.ws.close()
  await waitFor(() => a.app.gatecast.hub.size === 0, { ms: 3000, what: 'every socket closed' })

  // --- the logs: verbose, complete, and clean ---
  const all = lines.join('')
  const parsed = all.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as Record<string, any>)
  const levels = new Set(parsed.map(l => l.level))
  t.ok(levels.has(20), 'debug lines were captured (the logger ran at full verbosity)')
  t.ok(parsed.some(l => l.msg === 'request completed' && l.req?.url === '/auth/login'), 'logins were logged')
  t.ok(parsed.some(l => l.msg === 'request completed' && String(l.req?.url).startsWith('/auth/login?')), 'the login with a query was logged (redacted)')
  t.ok(parsed.some(l => l.msg === 'request completed' && l.req?.url === '/auth/refresh'), 'refreshes were logged')
  t.ok(parsed.some(l => l.msg === 'request completed' && l.req?.url === '/auth/logout'), 'the logout was logged')
  t.ok(parsed.filter(l => l.msg === 'socket open').length >= 6, 'socket opens were logged')
  t.ok(parsed.some(l => l.level >= 50 && JSON.stringify(l).includes('ECONNREFUSED')), 'the internal error itself is in the logs, for operators')
  t.ok(parsed.length > 50, `${parsed.length} log lines captured`)

  let leaks = 0
  for (const [label, value] of secrets) {
    const parts = value.split('.')
    const pieces = parts.length === 3 ? [value, parts[1], parts[2]].filter(x => x.length > 20) : [value]
    for (const piece of pieces) {
      if (all.includes(piece)) {
        leaks++
        const line = all.split('\n').find(l => l.includes(piece)) ?? ''
        t.fail(`${label} in the logs: ${line.slice(0, 300)}`)
      }
    }
    // URL-encoded forms too (query strings)
    if (encodeURIComponent(value) !== value && all.includes(encodeURIComponent(value))) { leaks++; t.fail(`${label} (URL-encoded) in the logs`) }
  }
  t.equal(leaks, 0, `none of ${secrets.length} secrets (or their parts) appear in ${parsed.length} log lines`)
})

t.test('5xx responses carry the error shape and a generic message: no stack, no internal detail', async t => {
  const a = await startApp(t, { plugins: [faulty], config: { usersFile: null, apiKey: API_KEY } })
  const admin = a.token({ sub: 'ops', roles: ['admin'] })

  // core paths: a hook of a plugin fails inside Gatecast's own routes
  const oc = await tryUpgrade(`${a.ws}/ws/boom`, bearer(a.token()))
  t.equal(oc.opened, false, 'onConnect throws: no socket')
  cleanServerError(t, oc.status, oc.body, 'an onConnect hook that throws (upgrade)')
  const op = await api(a.base, 'POST', '/api/channels/boom-pub/messages', { body: { data: 1 }, headers: { 'x-api-key': API_KEY } })
  cleanServerError(t, op.status, op.body, 'an onPublish hook that throws (server API)')
  const c = await connect(`${a.ws}/ws/boom-pub`, bearer(a.token()))
  t.teardown(() => c.ws.terminate())
  c.send({ type: 'publish', data: 1, ref: 'r' })
  const fe = await c.nextOfType('error')
  t.match(fe, { type: 'error', code: 'internal', ref: 'r', message: String }, 'onPublish throws (frame): error internal')
  t.notOk(/ECONNREFUSED|10\.0\.0\.5|db-pw|postgres|\.ts:/.test(JSON.stringify(fe)), 'the error frame leaks nothing')

  // a plugin's own routes (PLUGINS / --plugin), served by the same gateway
  const g = await api(a.base, 'GET', '/plugin/boom', { headers: { authorization: `Bearer ${admin}` } })
  cleanServerError(t, g.status, g.body, 'a plugin route that throws an Error')
  const p = await api(a.base, 'POST', '/plugin/boom', { body: {} })
  cleanServerError(t, p.status, p.body, 'a plugin route that throws a TypeError')
})

/** A logger at trace that keeps every line, for a Fastify instance or build(). */
function traceLogger (): { lines: string[], logger: { level: string, stream: Writable } } {
  const lines: string[] = []
  return { lines, logger: { level: 'trace', stream: new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } }) } }
}

/**
 * Where a secret shows in the log text: as is, URL-encoded, as a JWT's payload
 * or signature alone, or as the byte list JSON makes of a Buffer (how a raw
 * packet would be logged).
 */
function leaksOf (all: string, secrets: Array<[string, string]>): string[] {
  const found: string[] = []
  for (const [label, value] of secrets) {
    const parts = value.split('.')
    const pieces = parts.length === 3 ? [value, parts[1], parts[2]].filter(x => x.length > 20) : [value]
    for (const piece of pieces) {
      for (const [form, text] of [['as text', piece], ['URL-encoded', encodeURIComponent(piece)], ['as bytes', Buffer.from(piece).join(',')]]) {
        if (all.includes(text)) found.push(`${label} ${form}: ${(all.split('\n').find(l => l.includes(text)) ?? '').slice(0, 300)}`)
      }
    }
  }
  return [...new Set(found)]
}

/** A `?` right after a URL path, other than the `?[redacted]` of the request lines: a query string. */
const QUERY_AFTER_PATH = /\/[^\s"?]*\?(?!\[redacted\])[^\s"]/

function assertClean (t: Test, lines: string[], secrets: Array<[string, string]>): void {
  const all = lines.join('')
  t.same(leaksOf(all, secrets), [], `none of ${secrets.length} secrets in ${lines.length} log lines`)
  t.same(lines.filter(l => QUERY_AFTER_PATH.test(l)).map(l => l.slice(0, 300)), [], 'no log line carries a query string')
  t.same(lines.filter(l => l.includes('rawPacket')).map(l => l.slice(0, 300)), [], 'no log line carries a raw packet')
}

/** Writes `text` on a fresh TCP connection and returns all the server answers until it closes. */
async function rawHttp (base: string, text: string, ms = 3000): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve) => {
    let out = ''
    const s = net.connect(Number(port), hostname, () => s.write(text))
    const timer = setTimeout(() => s.destroy(), ms)
    s.on('data', (d: Buffer) => { out += d.toString() })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve(out) })
  })
}

t.test('malformed and oversized requests: the client gets its 400/431, no log line holds their raw bytes (trace)', async t => {
  const { lines, logger } = traceLogger()
  const a = await startApp(t, { logger, config: { logLevel: 'trace', usersFile: null, apiKey: API_KEY } })
  const queryToken = a.token({ sub: 'in-query' })
  const headerToken = a.token({ sub: 'in-header' })
  const secrets: Array<[string, string]> = [['query token', queryToken], ['header token', headerToken], ['API key', API_KEY]]
  const carrying = `Host: gatecast.test\r\nAuthorization: Bearer ${headerToken}\r\nX-API-Key: ${API_KEY}\r\n`
  const body = (statusCode: number, error: string, message: string): string => JSON.stringify({ error, message, statusCode })

  const oversized = await rawHttp(a.base, `GET /ws/chat?token=${queryToken} HTTP/1.1\r\n${carrying}Upgrade: websocket\r\nConnection: Upgrade\r\nX-Padding: ${'p'.repeat(20 * 1024)}\r\n\r\n`)
  t.match(oversized, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/, 'an oversized header: 431')
  t.ok(oversized.endsWith(body(431, 'Request Header Fields Too Large', 'Exceeded maximum allowed HTTP header size')), 'with the JSON body as before')
  const badLine = await rawHttp(a.base, `GET /api/channels?token=${queryToken} HTTP/1.1 extra\r\n${carrying}\r\n`)
  t.match(badLine, /^HTTP\/1\.1 400 Bad Request\r\n/, 'a malformed request line: 400')
  t.ok(badLine.endsWith(body(400, 'Bad Request', 'Client Error')), 'with the JSON body as before')
  const badHeader = await rawHttp(a.base, `POST /auth/login?token=${queryToken} HTTP/1.1\r\n${carrying}X-Broken\u0001: yes\r\n\r\n`)
  t.match(badHeader, /^HTTP\/1\.1 400 Bad Request\r\n/, 'an invalid header name: 400')

  const parsed = lines.map(l => JSON.parse(l) as Record<string, any>)
  const clientErrors = parsed.filter(l => typeof l.msg === 'string' && l.msg.startsWith('client '))
  t.equal(clientErrors.length, 3, 'each client error is logged once')
  t.ok(clientErrors.every(l => l.level === 10), 'at trace, as Fastify does')
  t.match(clientErrors.map(l => l.err), [
    { code: 'HPE_HEADER_OVERFLOW', message: /Header overflow/ },
    { code: String, message: /Parse Error/ },
    { code: String, message: /Parse Error/ }
  ], 'the log line keeps the error\'s code and message')
  assertClean(t, lines, secrets)
})

t.test('an upgrade to a path without a WebSocket route logs the path only (GatewayWorker-style URL)', async t => {
  const { lines, logger } = traceLogger()
  const a = await startApp(t, { logger, config: { logLevel: 'trace', usersFile: null } })
  const secrets: Array<[string, string]> = []
  const tok = (sub: string): string => { const v = a.token({ sub }); secrets.push([`token ${sub}`, v]); return v }

  // `/` is a Gatecast socket (the GatewayWorker form); /health a probe: a plain HTTP route, upgraded and closed by @fastify/websocket
  const root = await tryUpgrade(`${a.ws}/?Authorization=Bearer%20${tok('gw-root')}`)
  t.equal(root.status, 101, 'the GatewayWorker URL opens a socket')
  t.equal((await tryUpgrade(`${a.ws}/health?token=${tok('health')}&x=1`)).status, 101)
  t.equal((await tryUpgrade(`${a.ws}/nowhere/at/all?token=${tok('unknown')}`)).status, 404, 'an unknown path: 404')
  t.equal((await tryUpgrade(`${a.ws}/?Authorization=${tok('gw-bare')}`, { headers: { 'x-api-key': API_KEY } })).status, 101)
  secrets.push(['API key', API_KEY])
  await waitFor(() => lines.filter(l => l.includes('no websocket handler')).length === 1 && lines.filter(l => l.includes('"socket closed"')).length === 2, { ms: 3000, what: 'the no-handler line and both sockets closed' })

  const noHandler = lines.map(l => JSON.parse(l) as Record<string, any>).filter(l => String(l.msg).includes('no websocket handler'))
  t.same(noHandler.map(l => l.path), ['/health'], 'the no-handler line keeps the path, without the query')
  t.ok(noHandler.every(l => l.level === 30), 'still at info')
  assertClean(t, lines, secrets)
})

t.test('embedded in a host app with its own logger: Gatecast\'s routes still log the path only', async t => {
  const { lines, logger } = traceLogger()
  // the host's own logger, set up as the README says (request lines: the path only), nothing more
  const app = Fastify({ logger: { ...logger, serializers: { req: requestSerializer } } })
  await app.register(gatecast, { cwd: mkdtempSync(join(tmpdir(), 'gatecast-host-')), env: {}, config: { jwtSecret: SECRET, usersFile: null, port: 0 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const ws = `ws://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  const token = signJwt(claims('embedded'))

  t.equal((await tryUpgrade(`${ws}/?Authorization=Bearer%20${token}`)).status, 101)
  t.equal((await tryUpgrade(`${ws}/health?token=${token}`)).status, 101)
  await waitFor(() => lines.filter(l => l.includes('no websocket handler')).length === 1 && lines.some(l => l.includes('"socket closed"')), { ms: 3000, what: 'the no-handler line and the socket closed' })
  const noHandler = lines.map(l => JSON.parse(l) as Record<string, any>).filter(l => String(l.msg).includes('no websocket handler'))
  t.same(noHandler.map(l => l.path), ['/health'], 'the path, without the query')
  t.same(leaksOf(lines.join(''), [['token', token]]), [], 'the token is in no log line')
  t.same(lines.filter(l => QUERY_AFTER_PATH.test(l)).map(l => l.slice(0, 300)), [], 'no log line carries a query string')
})

t.test('build() with a logger instance: the path only, on extra plugins\' routes too', async t => {
  const { lines, logger } = traceLogger()
  // a pino instance made elsewhere, without Gatecast's serializers
  const host = Fastify({ logger })
  t.teardown(() => host.close())
  const page: FastifyPluginAsync = async (app) => { app.get('/plugin/page', async () => 'a page') }
  const a = await startApp(t, { loggerInstance: host.log, plugins: [page], config: { usersFile: null } })
  const token = a.token({ sub: 'instance' })

  t.equal((await tryUpgrade(`${a.ws}/?Authorization=Bearer%20${token}`)).status, 101)
  t.equal((await tryUpgrade(`${a.ws}/plugin/page?token=${token}`)).status, 101, 'a route of an extra plugin, outside Gatecast\'s routes')
  await waitFor(() => lines.filter(l => l.includes('no websocket handler')).length === 1 && lines.some(l => l.includes('"socket closed"')), { ms: 3000, what: 'the no-handler line and the socket closed' })
  const noHandler = lines.map(l => JSON.parse(l) as Record<string, any>).filter(l => String(l.msg).includes('no websocket handler'))
  t.same(noHandler.map(l => l.path), ['/plugin/page'], 'the path, without the query')
  assertClean(t, lines, [['token', token]])
})
