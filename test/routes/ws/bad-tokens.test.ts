// The bad-token matrix: every refusal is an HTTP 401 with the JSON error
// shape before any socket exists (contract §3), and the accepted neighbours
// of each case (clock tolerance, right iss/aud, PHP `user_id`).
import t from 'tap'
import { api } from '../../helpers/app.ts'
import { connect } from '../../helpers/client.ts'
import {
  b64url, bearer, claims, closeAtEnd, closedWithin, expectRefused, nowSec, pingPong, signJwt, start
} from '../../helpers/ws-extra.ts'

t.test('401 matrix with HS256 configured', async t => {
  const a = await start(t)
  const url = `${a.ws}/ws/chat`
  const good = signJwt(claims('alice'))

  await expectRefused(t, a, url, {}, 401, 'token_missing', 'missing')
  await expectRefused(t, a, url, bearer('garbage'), 401, 'token_invalid', 'garbage')
  await expectRefused(t, a, url, bearer('aaa.bbb.ccc'), 401, 'token_invalid', 'three garbage parts')
  for (const header of [null, [], 5, 'HS256']) {
    const res = await expectRefused(t, a, url, bearer(`${b64url(JSON.stringify(header))}.${b64url(claims('alice'))}.sig`), 401, 'token_invalid', `header ${JSON.stringify(header)}`)
    t.equal(res.body?.message, 'malformed token')
  }
  await expectRefused(t, a, url, bearer(good.slice(0, good.length - 8)), 401, 'token_invalid', 'truncated signature')
  await expectRefused(t, a, url, bearer(good.slice(0, good.lastIndexOf('.'))), 401, 'token_invalid', 'no signature part')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice'), { key: 'another-secret-that-is-long-enough-0123456789' })), 401, 'token_invalid', 'wrong secret')

  // alg none, made by hand: header {"alg":"none"}, payload, empty signature
  const none = `${b64url({ alg: 'none' })}.${b64url(claims('alice'))}.`
  await expectRefused(t, a, url, bearer(none), 401, 'token_invalid', 'alg none')
  await expectRefused(t, a, url, bearer(`${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims('alice'))}.`), 401, 'token_invalid', 'alg none with typ')
  await expectRefused(t, a, `${url}?token=${none}`, {}, 401, 'token_invalid', 'alg none in the query')

  // HMAC with the right secret but another algorithm than the configured one
  await expectRefused(t, a, url, bearer(a.token({ sub: 'alice' }, { algorithm: 'HS512' })), 401, 'token_invalid', 'HS512')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice'), { alg: 'HS384' })), 401, 'token_invalid', 'HS384')
  // header says HS256 but the signature is HS512 of the same input
  const hs512 = signJwt(claims('alice'), { alg: 'HS512' })
  const forged = `${good.split('.').slice(0, 2).join('.')}.${hs512.split('.')[2]}`
  await expectRefused(t, a, url, bearer(forged), 401, 'token_invalid', 'HS256 header, HS512 signature')

  // payloads that are no good
  await expectRefused(t, a, url, bearer(signJwt({ iat: nowSec(), exp: nowSec() + 60 })), 401, 'token_invalid', 'no user claim at all')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { channels: 'chat' }))), 401, 'token_invalid', 'channels claim not an array')

  t.equal(a.app.gatecast.hub.size, 0, 'nothing opened')
  // and the good token next to them works
  const c = await connect(url, bearer(good))
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'alice')
})

t.test('expired: beyond the 5 s clock tolerance refused, within accepted', async t => {
  const a = await start(t)
  const url = `${a.ws}/ws/chat`
  const now = nowSec()
  await expectRefused(t, a, url, bearer(signJwt({ sub: 'alice', iat: now - 120, exp: now - 60 })), 401, 'token_expired', 'expired a minute ago')
  await expectRefused(t, a, url, bearer(signJwt({ sub: 'alice', iat: now - 120, exp: now - 8 })), 401, 'token_expired', 'expired 8 s ago')
  // the helper signer with a negative lifetime, the way a backend clock would produce it
  await expectRefused(t, a, `${url}?token=${signJwt({ sub: 'alice', exp: now - 30 })}`, {}, 401, 'token_expired', 'expired, in the query')

  const c = await connect(url, bearer(signJwt({ sub: 'alice', iat: now - 60, exp: now - 1 })))
  closeAtEnd(t, c)
  const ready = await c.nextOfType('ready')
  t.equal(ready.expiresAt, now - 1, 'within tolerance: admitted, expiresAt is the token exp')
})

t.test('nbf in the future: beyond tolerance refused, within accepted', async t => {
  const a = await start(t)
  const url = `${a.ws}/ws/chat`
  const now = nowSec()
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { nbf: now + 60 }))), 401, 'token_not_active', 'nbf in a minute')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { nbf: now + 10 }))), 401, 'token_not_active', 'nbf in 10 s')
  const c = await connect(url, bearer(signJwt(claims('alice', 600, { nbf: now + 2 }))))
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'alice', 'nbf 2 s ahead is within tolerance')
})

t.test('issuer and audience, when configured, must match', async t => {
  const a = await start(t, { jwtIssuer: 'https://id.example', jwtAudience: 'gatecast' })
  const url = `${a.ws}/ws/chat`
  const iss = 'https://id.example'
  const aud = 'gatecast'
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { iss: 'https://evil.example', aud }))), 401, 'token_invalid', 'wrong iss')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { iss, aud: 'someone-else' }))), 401, 'token_invalid', 'wrong aud')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { iss, aud: ['x', 'y'] }))), 401, 'token_invalid', 'aud array without ours')

  const ok = await connect(url, bearer(signJwt(claims('alice', 600, { iss, aud }))))
  const okArr = await connect(url, bearer(signJwt(claims('bob', 600, { iss, aud: ['other', aud] }))))
  closeAtEnd(t, ok, okArr)
  t.equal((await ok.nextOfType('ready')).userId, 'alice', 'right iss and aud accepted')
  t.equal((await okArr.nextOfType('ready')).userId, 'bob', 'aud array containing ours accepted')
})

t.test('issuer and audience, when configured, are required (a token without them does not match)', async t => {
  const a = await start(t, { jwtIssuer: 'https://id.example', jwtAudience: 'gatecast' })
  const url = `${a.ws}/ws/chat`
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { aud: 'gatecast' }))), 401, 'token_invalid', 'no iss')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice', 600, { iss: 'https://id.example' }))), 401, 'token_invalid', 'no aud')
  await expectRefused(t, a, url, bearer(signJwt(claims('alice'))), 401, 'token_invalid', 'neither')
})

t.test('PHP-style token with user_id instead of sub', async t => {
  const a = await start(t)
  const now = nowSec()
  // the shape tinywan/php-jwt mints: user_id (often numeric), no sub
  const php = signJwt({ iss: 'php-backend', iat: now, exp: now + 600, user_id: 'u-42', extend: { name: 'x' } })
  const c = await connect(`${a.ws}/ws/chat?Authorization=Bearer%20${php}`)
  const numeric = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ iat: now, exp: now + 600, user_id: 1001 })))
  closeAtEnd(t, c, numeric)
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'u-42')
  t.equal(ready.expiresAt, now + 600)
  t.equal((await numeric.nextOfType('ready')).userId, '1001', 'numeric user_id becomes a string')
  // sub wins when both are present
  const both = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ sub: 'subby', user_id: 'other', exp: now + 600 })))
  closeAtEnd(t, both)
  t.equal((await both.nextOfType('ready')).userId, 'subby')
})

t.test('token revoked by POST /auth/logout: refused on upgrade, open socket closed 4401', async t => {
  const a = await start(t, {}, {
    verifyCredentials: (u, p) => u === 'dora' && p === 'dora-password' ? { id: 'dora', name: 'Dora' } : null
  })
  const login = await api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'dora-password' } })
  t.equal(login.status, 200)
  const access = login.body.access_token as string
  t.type(access, 'string')
  const other = await api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'dora-password' } })
  t.equal(other.status, 200)

  const c = await connect(`${a.ws}/ws/chat`, bearer(access))
  const keep = await connect(`${a.ws}/ws/chat`, bearer(other.body.access_token))
  closeAtEnd(t, c, keep)
  t.equal((await c.nextOfType('ready')).userId, 'dora')

  // (a body is sent: POST /auth/logout without one is answered 400 "body must be object", a REST-side issue)
  const out = await api(a.base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${access}` } })
  t.equal(out.status, 204)

  const closed = await closedWithin(c, 3000)
  t.equal(closed.code, 4401, 'socket opened with the revoked token is closed 4401')
  await pingPong(keep) // another login of the same user is untouched
  // the revoked token cannot be used to refresh either
  keep.send({ type: 'refresh', token: access })
  t.match(await keep.nextOfType('error'), { type: 'error', code: /^(forbidden|bad_request)$/ }, 'refresh with the revoked token: error frame')
  t.equal(keep.frames.filter(f => f.type === 'refreshed').length, 0)
  await pingPong(keep)

  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(access), 401, 'token_revoked', 'header')
  await expectRefused(t, a, `${a.ws}/ws/chat?token=${access}`, {}, 401, 'token_revoked', 'query')
  await expectRefused(t, a, `${a.ws}/ws/chat`, { protocols: ['gatecast', `bearer.${access}`] }, 401, 'token_revoked', 'subprotocol')
})
