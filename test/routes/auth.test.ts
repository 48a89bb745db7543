// POST /auth/login, /auth/refresh, /auth/logout over real HTTP, with a real
// users file (scrypt hashes) and real WebSockets for revocation.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Redis } from 'ioredis'
import { createVerifier } from 'fast-jwt'
import { api, SECRET, startApp } from '../helpers/app.ts'
import { connect, refused } from '../helpers/client.ts'
import { jwtHeader } from '../helpers/cli.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { within } from '../helpers/wait.ts'
import { UserStore } from '../../src/auth/users.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

const PASSWORDS = { alice: 'alice-password-1', bob: 'bob-password-22', admin: 'admin-password-333' }

// one users file for every app of this file (the apps only read it)
const usersDir = mkdtempSync(join(tmpdir(), 'gatecast-auth-'))
const usersFile = join(usersDir, 'users.json')
const store = UserStore.open(usersFile)
await store.set('alice', PASSWORDS.alice)
await store.set('bob', PASSWORDS.bob)
await store.set('admin', PASSWORDS.admin, { roles: ['admin'] })

const verify = createVerifier({ key: SECRET, algorithms: ['HS256'] })

async function app (t: Parameters<typeof startApp>[0], config: ConfigOverrides = {}) {
  return startApp(t, { cwd: usersDir, config: { usersFile, ...config } })
}

async function login (base: string, username: keyof typeof PASSWORDS) {
  const res = await api(base, 'POST', '/auth/login', { body: { username, password: PASSWORDS[username] } })
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { access_token: string, token_type: string, expires_in: number, refresh_token: string, refresh_expires_in: number }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

type Asserts = Pick<typeof t, 'same' | 'match'>

function errorShape (t: Asserts, body: any, status: number, error: string): void {
  t.same(Object.keys(body ?? {}).sort(), ['code', 'error', 'message', 'statusCode'], `${status}: body has exactly statusCode, error, message, code`)
  t.match(body, { statusCode: status, error, message: /\S/, code: /^[a-z][a-z_]*$/ }, `${status} ${error} with a message and a stable code`)
}

t.test('login: 200 with the contract shape and claims', async t => {
  const { base, ws } = await app(t, { accessTokenTtl: 120, refreshTokenTtl: 7200 })
  const res = await api(base, 'POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /application\/json/)
  t.same(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
  t.equal(res.body.token_type, 'Bearer')
  t.equal(res.body.expires_in, 120)
  t.equal(res.body.refresh_expires_in, 7200)
  t.type(res.body.refresh_token, 'string')
  t.ok(res.body.refresh_token.length >= 32, 'refresh token is long enough to be unguessable')
  t.not(res.body.refresh_token.split('.').length, 3, 'refresh token is opaque, not a JWT')

  t.equal(jwtHeader(res.body.access_token).alg, 'HS256')
  const claims = verify(res.body.access_token) // signature checked with the configured secret
  t.equal(claims.sub, 'admin', 'sub is the user name')
  t.equal(claims.name, 'admin')
  t.type(claims.iat, 'number')
  t.type(claims.exp, 'number')
  t.equal(claims.exp - claims.iat, 120, 'exp - iat = ACCESS_TOKEN_TTL')
  t.ok(Math.abs(claims.iat - Date.now() / 1000) < 10, 'iat is now')
  t.type(claims.jti, 'string')
  t.ok(claims.jti.length > 0)
  t.same(claims.roles, ['admin'])

  // a second login gets another jti and another refresh token
  const again = await login(base, 'admin')
  t.not(verify(again.access_token).jti, claims.jti)
  t.not(again.refresh_token, res.body.refresh_token)

  // the token is accepted on a WebSocket upgrade, as that user
  const c = await connect(`${ws}/ws/chat`, { headers: bearer(res.body.access_token) })
  t.teardown(() => c.close())
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'admin')
  t.equal(ready.expiresAt, claims.exp)

  // and the admin role opens the server API
  const channels = await api(base, 'GET', '/api/channels', { headers: bearer(res.body.access_token) })
  t.equal(channels.status, 200)
})

t.test('login: a user without roles gets no admin role', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  const claims = verify(pair.access_token)
  t.equal(claims.sub, 'alice')
  t.equal(claims.name, 'alice')
  t.equal(pair.expires_in, 3600, 'default ACCESS_TOKEN_TTL')
  t.equal(pair.refresh_expires_in, 1209600, 'default REFRESH_TOKEN_TTL')
  t.equal(claims.exp - claims.iat, 3600)
  t.notOk((claims.roles ?? []).includes('admin'))
  const res = await api(base, 'GET', '/api/channels', { headers: bearer(pair.access_token) })
  t.equal(res.status, 403)
})

t.test('login: 401 with the same message and code for unknown user and wrong password', async t => {
  const { base } = await app(t)
  const unknown = await api(base, 'POST', '/auth/login', { body: { username: 'mallory', password: PASSWORDS.alice } })
  const wrong = await api(base, 'POST', '/auth/login', { body: { username: 'alice', password: 'not-the-password' } })
  t.equal(unknown.status, 401)
  t.equal(wrong.status, 401)
  errorShape(t, unknown.body, 401, 'Unauthorized')
  errorShape(t, wrong.body, 401, 'Unauthorized')
  t.same(unknown.body, wrong.body, 'the two bodies are identical')
  t.notMatch(unknown.body.message, /mallory/)
  t.notMatch(wrong.body.message, /alice/)
  t.equal(unknown.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'))
  // a case variant of a known name is just another unknown user
  const upper = await api(base, 'POST', '/auth/login', { body: { username: 'ALICE', password: PASSWORDS.alice } })
  t.equal(upper.status, 401)
  t.same(upper.body, wrong.body)
})

t.test('login: 400 with the JSON error shape for schema errors', async t => {
  const { base } = await app(t)
  const cases: Array<[string, unknown]> = [
    ['missing password', { username: 'alice' }],
    ['missing username', { password: PASSWORDS.alice }],
    ['empty object', {}],
    ['extra field', { username: 'alice', password: PASSWORDS.alice, admin: true }],
    ['username is a number', { username: 123, password: PASSWORDS.alice }],
    ['password is a number', { username: 'alice', password: 12345678 }],
    ['username is an object', { username: { $ne: '' }, password: PASSWORDS.alice }],
    ['password is an array', { username: 'alice', password: [PASSWORDS.alice] }],
    ['empty username', { username: '', password: PASSWORDS.alice }],
    ['body is an array', [{ username: 'alice', password: PASSWORDS.alice }]],
    ['body is a string', 'alice']
  ]
  for (const [what, body] of cases) {
    const res = await api(base, 'POST', '/auth/login', { body })
    t.equal(res.status, 400, `${what}: 400`)
    if (res.status === 400) errorShape(t, res.body, 400, 'Bad Request')
    t.notOk(res.body?.access_token, `${what}: no token issued`)
  }
  // no body, and a body that is not JSON
  const none = await api(base, 'POST', '/auth/login', { headers: { 'content-type': 'application/json' } })
  t.equal(none.status, 400, 'no body: 400')
  errorShape(t, none.body, 400, 'Bad Request')
  const res = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' })
  t.equal(res.status, 400, 'malformed JSON: 400')
  errorShape(t, await res.json(), 400, 'Bad Request')
})

t.test('login: 429 per IP after LOGIN_RATE attempts a minute', async t => {
  const { base } = await app(t, { loginRate: 3 })
  // different outcomes all count: a success, an unknown user, a wrong password
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORDS.alice } })).status, 200)
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'nobody', password: 'whatever-pw' } })).status, 401)
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: 'wrong-password' } })).status, 401)
  const limited = await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: PASSWORDS.bob } })
  t.equal(limited.status, 429, 'the 4th attempt within the minute is refused')
  errorShape(t, limited.body, 429, 'Too Many Requests')
  t.notOk(limited.body.access_token)
  t.ok(limited.headers.get('retry-after') !== null, 'Retry-After tells when to come back')
  // still refused, even with the right password
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'admin', password: PASSWORDS.admin } })).status, 429)
})

t.test('login rate on Redis: counted cluster-wide under the prefix, with the window in Retry-After', async t => {
  const prefix = redisPrefix(t)
  const a = await app(t, { loginRate: 2, redisUrl: REDIS_URL, redisPrefix: prefix })
  const b = await app(t, { loginRate: 2, redisUrl: REDIS_URL, redisPrefix: prefix })
  const wrong = { body: { username: 'bob', password: 'wrong-password' } }
  t.equal((await api(a.base, 'POST', '/auth/login', wrong)).status, 401)
  t.equal((await api(b.base, 'POST', '/auth/login', wrong)).status, 401)
  const limited = await api(a.base, 'POST', '/auth/login', wrong)
  t.equal(limited.status, 429, 'the third attempt, on either node, is over the limit of both')
  errorShape(t, limited.body, 429, 'Too Many Requests')
  const retryAfter = Number(limited.headers.get('retry-after'))
  t.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After within the minute's window (${retryAfter})`)
  const r = new Redis(REDIS_URL)
  t.teardown(() => r.disconnect())
  const key = `${prefix}:rl:POST/auth/login-127.0.0.1`
  t.equal(await r.get(key), '3', 'one counter per route and IP, under the configured prefix')
  const ttl = await r.pttl(key)
  t.ok(ttl > 0 && ttl <= 60_000, 'it expires with the window')
})

t.test('refresh: rate limited per IP too (429)', async t => {
  const { base } = await app(t, { loginRate: 3 })
  for (let i = 0; i < 3; i++) {
    t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: `guess-${i}` } })).status, 401, `guess ${i + 1}: 401`)
  }
  const limited = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: 'guess-4' } })
  t.equal(limited.status, 429, 'guessing refresh tokens is rate limited')
  errorShape(t, limited.body, 429, 'Too Many Requests')
})

t.test('login: 429 per username after LOGIN_FAILURES failures; other users unaffected', async t => {
  const { base } = await app(t, { loginFailures: 2 })
  const wrong = { username: 'alice', password: 'wrong-password' }
  t.equal((await api(base, 'POST', '/auth/login', { body: wrong })).status, 401)
  t.equal((await api(base, 'POST', '/auth/login', { body: wrong })).status, 401)
  const locked = await api(base, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORDS.alice } })
  t.equal(locked.status, 429, 'the right password is refused too while the user is locked')
  errorShape(t, locked.body, 429, 'Too Many Requests')
  t.notOk(locked.body.access_token)
  t.equal((await api(base, 'POST', '/auth/login', { body: wrong })).status, 429)

  // another user from the same IP logs in fine, and a single failure does not lock them
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: 'wrong-password' } })).status, 401)
  const bob = await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: PASSWORDS.bob } })
  t.equal(bob.status, 200)
  t.equal(verify(bob.body.access_token).sub, 'bob')

  // a success resets the failure count: bob may fail LOGIN_FAILURES - 1 times again and still log in
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: 'wrong-password' } })).status, 401)
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'bob', password: PASSWORDS.bob } })).status, 200)
})

t.test('refresh: rotation, old token refused, reuse revokes the whole family', async t => {
  const { base, ws } = await app(t, { accessTokenTtl: 300, refreshTokenTtl: 900 })
  const first = await login(base, 'admin')
  const other = await login(base, 'admin') // another session: another family

  const r2 = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })
  t.equal(r2.status, 200)
  t.same(Object.keys(r2.body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
  t.equal(r2.body.token_type, 'Bearer')
  t.equal(r2.body.expires_in, 300)
  t.equal(r2.body.refresh_expires_in, 900)
  t.not(r2.body.refresh_token, first.refresh_token, 'a new refresh token')
  t.not(r2.body.access_token, first.access_token, 'a new access token')
  const claims = verify(r2.body.access_token)
  t.equal(claims.sub, 'admin')
  t.equal(claims.name, 'admin')
  t.same(claims.roles, ['admin'], 'roles survive the refresh')
  t.equal(claims.exp - claims.iat, 300)
  t.not(claims.jti, verify(first.access_token).jti)
  const c = await connect(`${ws}/ws/chat`, { headers: bearer(r2.body.access_token) })
  c.close()

  // rotation keeps working down the chain
  const r3 = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: r2.body.refresh_token } })
  t.equal(r3.status, 200)
  const newest = r3.body.refresh_token as string

  // the rotated (first) token comes back: refused, and the family is revoked
  const reuse = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })
  t.equal(reuse.status, 401, 'a rotated refresh token is refused')
  errorShape(t, reuse.body, 401, 'Unauthorized')
  t.notOk(reuse.body.access_token)
  const afterReuse = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: newest } })
  t.equal(afterReuse.status, 401, 'the newest token of the family is revoked too')
  errorShape(t, afterReuse.body, 401, 'Unauthorized')
  const middle = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: r2.body.refresh_token } })
  t.equal(middle.status, 401)

  // the other login of the same user is a different family and still works
  const otherRefresh = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: other.refresh_token } })
  t.equal(otherRefresh.status, 200, 'another session of the same user is not affected')
})

t.test('refresh: a refresh token used once is refused the second time', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token } })).status, 200)
  const second = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token } })
  t.equal(second.status, 401)
  errorShape(t, second.body, 401, 'Unauthorized')
})

t.test('refresh: garbage → 401, schema errors → 400', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  for (const garbage of ['garbage', 'x'.repeat(43), pair.access_token.slice(0, 400)]) {
    const res = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: garbage } })
    t.equal(res.status, 401, `garbage ${garbage.slice(0, 12)}…: 401`)
    errorShape(t, res.body, 401, 'Unauthorized')
  }
  // the access token is not a refresh token
  const access = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.access_token } })
  t.ok(access.status === 401 || access.status === 400, `access token as refresh token refused (${access.status})`)
  for (const [what, body] of [['missing', {}], ['wrong type', { refresh_token: 42 }], ['extra field', { refresh_token: pair.refresh_token, x: 1 }]] as const) {
    const res = await api(base, 'POST', '/auth/refresh', { body })
    t.equal(res.status, 400, `${what}: 400`)
    if (res.status === 400) errorShape(t, res.body, 400, 'Bad Request')
  }
})

t.test('logout: 204, the access token is refused on upgrade and open sockets close 4401', async t => {
  const { base, ws } = await app(t)
  const pair = await login(base, 'alice')
  const keep = await login(base, 'alice') // another session of the same user
  const open = await connect(`${ws}/ws/chat`, { headers: bearer(pair.access_token) })
  const other = await connect(`${ws}/ws/chat`, { headers: bearer(keep.access_token) })
  t.teardown(() => { open.close(); other.close() })

  const res = await api(base, 'POST', '/auth/logout', { headers: bearer(pair.access_token), body: {} })
  t.equal(res.status, 204)
  t.equal(res.body, null, 'no body')

  const closed = await within(open.closed, 3000, 'socket of the revoked token')
  t.equal(closed.code, 4401, 'the open socket with that token is closed 4401')

  const upgrade = await refused(`${ws}/ws/chat`, { headers: bearer(pair.access_token) })
  t.equal(upgrade.status, 401)
  errorShape(t, upgrade.body, 401, 'Unauthorized')
  // every way of passing the token is refused
  t.equal((await refused(`${ws}/ws/chat?token=${pair.access_token}`)).status, 401)
  t.equal((await refused(`${ws}/ws/chat`, { protocols: ['gatecast', `bearer.${pair.access_token}`] })).status, 401)

  // the revoked token no longer authenticates REST either
  const again = await api(base, 'POST', '/auth/logout', { headers: bearer(pair.access_token), body: {} })
  t.equal(again.status, 401)
  errorShape(t, again.body, 401, 'Unauthorized')

  // the other session (other jti) is untouched
  other.send({ type: 'ping' })
  t.equal((await other.nextOfType('pong')).type, 'pong')
  const fresh = await connect(`${ws}/ws/chat`, { headers: bearer(keep.access_token) })
  fresh.close()
  // logging out does not revoke the refresh token that was not given
  t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: keep.refresh_token } })).status, 200)
})

t.test('logout with only the Authorization header (no body, refresh_token is optional) → 204', async t => {
  const { base, ws } = await app(t)
  const pair = await login(base, 'alice')
  const res = await api(base, 'POST', '/auth/logout', { headers: bearer(pair.access_token) })
  t.equal(res.status, 204, 'a logout without a body is accepted')
  t.equal(res.body, null)
  const upgrade = await refused(`${ws}/ws/chat`, { headers: bearer(pair.access_token) }).catch((err: Error) => ({ status: 101, body: err.message }))
  t.equal(upgrade.status, 401, 'and the access token is revoked')
})

t.test('logout with the refresh token revokes it', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  const res = await api(base, 'POST', '/auth/logout', { headers: bearer(pair.access_token), body: { refresh_token: pair.refresh_token } })
  t.equal(res.status, 204)
  const refresh = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token } })
  t.equal(refresh.status, 401, 'the refresh token given to logout is revoked')
  errorShape(t, refresh.body, 401, 'Unauthorized')
})

t.test('logout with a rotated family: the refresh token sent revokes its successors too', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  const rotated = await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token } })
  t.equal(rotated.status, 200)
  const out = await api(base, 'POST', '/auth/logout', { headers: bearer(rotated.body.access_token), body: { refresh_token: rotated.body.refresh_token } })
  t.equal(out.status, 204)
  t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: rotated.body.refresh_token } })).status, 401)
})

t.test('logout cannot revoke another user\'s refresh token', async t => {
  const { base } = await app(t)
  const alice = await login(base, 'alice')
  const bob = await login(base, 'bob')
  const res = await api(base, 'POST', '/auth/logout', { headers: bearer(bob.access_token), body: { refresh_token: alice.refresh_token } })
  t.ok(res.status === 204 || res.status === 403 || res.status === 400, `bob's logout answered ${res.status}`)
  t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: alice.refresh_token } })).status, 200, 'alice keeps her session')
})

t.test('logout without a valid token → 401', async t => {
  const { base } = await app(t)
  const pair = await login(base, 'alice')
  const none = await api(base, 'POST', '/auth/logout')
  t.equal(none.status, 401, 'no token, no body: 401')
  errorShape(t, none.body, 401, 'Unauthorized')
  const emptyBody = await api(base, 'POST', '/auth/logout', { body: {} })
  t.equal(emptyBody.status, 401, 'no token, empty body: 401')
  errorShape(t, emptyBody.body, 401, 'Unauthorized')
  const withBody = await api(base, 'POST', '/auth/logout', { body: { refresh_token: pair.refresh_token } })
  t.equal(withBody.status, 401, 'a refresh token alone does not log out')
  const garbage = await api(base, 'POST', '/auth/logout', { headers: bearer('not.a.jwt'), body: {} })
  t.equal(garbage.status, 401, 'malformed token: 401')
  errorShape(t, garbage.body, 401, 'Unauthorized')
  const basic = await api(base, 'POST', '/auth/logout', { headers: { authorization: 'Basic YWxpY2U6eA==' }, body: {} })
  t.equal(basic.status, 401, 'Basic credentials: 401')
  const forged = await api(base, 'POST', '/auth/logout', { headers: bearer(pair.access_token.slice(0, -4) + 'AAAA'), body: {} })
  t.equal(forged.status, 401, 'bad signature: 401')
  // the refresh token sent without authentication was not revoked
  t.equal((await api(base, 'POST', '/auth/refresh', { body: { refresh_token: pair.refresh_token } })).status, 200)
})
