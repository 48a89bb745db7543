// @fastify/jwt on the instance: `app.jwt` signs Gatecast's tokens, and a host
// app's route verifies with `request.jwtVerify()` under the same rules as the
// gateway (kid selection, the pinned algorithm, issuer, revocation through the
// `trusted` hook). app.inject only; no port.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { build } from '../../server.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'
import { keyPair, secretKid, tokenHeader, tokenPayload, writeKeyPair } from '../helpers/keys-extra.ts'
import { b64url, claims, signJwt } from '../helpers/ws-extra.ts'

const A = 'secret-A-that-is-long-enough-for-production-0123456789'
const B = 'secret-B-that-is-long-enough-for-production-0123456789'

// a host app's own route, beside Gatecast's
const hostRoute: FastifyPluginAsync = async (app) => {
  app.get('/me', async (req) => {
    const payload = await req.jwtVerify<{ sub: string }>()
    return { sub: payload.sub, user: req.user }
  })
}

async function gatecast (t: Test, config: ConfigOverrides): Promise<FastifyInstance> {
  const app = await build({
    cwd: '/nonexistent',
    env: {},
    logger: false,
    config: { usersFile: null, ...config },
    verifyCredentials: (u: string, p: string) => u === 'dora' && p === 'dora-password' ? { id: 'dora', name: 'Dora' } : null,
    plugins: [hostRoute]
  })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

const me = async (app: FastifyInstance, token: string): Promise<{ status: number, body: any }> => {
  const res = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${token}` } })
  return { status: res.statusCode, body: res.json() }
}

t.test('login tokens are app.jwt.sign\'s, and request.jwtVerify picks the key by kid', async t => {
  const app = await gatecast(t, { jwtSecret: B, jwtPreviousSecrets: [A], jwtIssuer: 'https://gatecast.test' })
  t.ok(app.hasDecorator('jwt'), 'app.jwt')
  t.ok(app.hasRequestDecorator('jwtVerify'), 'request.jwtVerify')

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'dora', password: 'dora-password' } })
  t.equal(login.statusCode, 200)
  const access = login.json().access_token as string
  t.same(tokenHeader(access), { alg: 'HS256', typ: 'JWT', kid: secretKid(B) }, 'signed with the current secret, its kid in the header')
  t.match(tokenPayload(access), { sub: 'dora', iss: 'https://gatecast.test' })
  const issued = app.jwt.sign({ sub: 'erin', iat: 1, exp: Math.floor(Date.now() / 1000) + 60 })
  t.equal(tokenHeader(issued).kid, secretKid(B), 'app.jwt.sign: the same signer')

  t.match(await me(app, access), { status: 200, body: { sub: 'dora', user: { sub: 'dora' } } }, 'the login token')
  const iss = { iss: 'https://gatecast.test' }
  t.match(await me(app, signJwt(claims('erin', 600, iss), { key: A, header: { kid: secretKid(A) } })), { status: 200, body: { sub: 'erin' } }, 'the previous secret, by its kid')
  t.equal((await me(app, signJwt(claims('mallory', 600, iss), { key: A }))).status, 401, 'the previous secret without kid: the current key is meant')
  t.equal((await me(app, signJwt(claims('mallory', 600, iss), { key: B, header: { kid: 'no-such-kid' } }))).status, 401, 'unknown kid')
  t.equal((await me(app, signJwt(claims('mallory', 600, iss), { key: A, header: { kid: secretKid(B) } }))).status, 401, 'current kid, previous secret')
  t.equal((await me(app, signJwt(claims('mallory', 600, iss), { alg: 'HS512', key: B }))).status, 401, 'HS512: the algorithm is pinned')
  t.equal((await me(app, `${b64url({ alg: 'none' })}.${b64url(claims('mallory', 600, iss))}.`)).status, 401, 'alg none')
  t.equal((await me(app, signJwt(claims('mallory', 600, { iss: 'https://evil.test' }), { key: B }))).status, 401, 'another issuer')
  t.equal((await me(app, signJwt(claims('mallory', 600), { key: B }))).status, 401, 'no issuer while one is configured')
  t.equal((await me(app, signJwt(claims('mallory', -60, iss), { key: B }))).status, 401, 'expired')

  // logout revokes the jti: the `trusted` hook refuses it on the host's route too
  // (POST /auth/logout reads req.raw.headersDistinct, which app.inject does not fill)
  await app.auth.logout(await app.auth.verifyAccess(access))
  t.match(await me(app, access), { status: 401, body: { message: 'Untrusted authorization token' } }, 'revoked: untrusted')
  t.match(await me(app, signJwt(claims('erin', 600, { ...iss, jti: tokenPayload(access).jti as string }), { key: B })), { status: 401 }, 'any token with that jti')
})

t.test('app.jwt.verify picks the key by kid too (fast-jwt\'s call of the key function)', async t => {
  const app = await gatecast(t, { jwtSecret: B, jwtPreviousSecrets: [A] })
  const old = signJwt(claims('erin'), { key: A, header: { kid: secretKid(A) } })
  t.match(await app.jwt.verify(old), { sub: 'erin' }, 'previous secret by kid')
  await t.rejects(async () => app.jwt.verify(signJwt(claims('mallory'), { key: B, header: { kid: 'nope' } })), { code: 'FAST_JWT_KEY_FETCHING_ERROR', originalError: { code: 'token_invalid' } }, 'unknown kid')
  await t.rejects(async () => app.jwt.verify(signJwt(claims('mallory'), { key: A, header: { kid: secretKid(B) } })), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'kid and key must go together')
})

t.test('verify-only configuration: app.jwt cannot sign, login answers 503 signing_unavailable', async t => {
  const app = await gatecast(t, { jwtSecret: A })
  t.type(app.jwt.sign({ sub: 'x' }), 'string', 'with a secret it signs')
  const { publicFile } = writeKeyPair(mkdtempSync(join(tmpdir(), 'gatecast-fjwt-')), keyPair('EdDSA'))
  const verifyOnly = await gatecast(t, { jwtAlgorithm: 'EdDSA', jwtPublicKeyFile: publicFile })
  t.throws(() => verifyOnly.jwt.sign({ sub: 'x' }), /unable to sign/, 'no private key: @fastify/jwt refuses to sign')
  const login = await verifyOnly.inject({ method: 'POST', url: '/auth/login', payload: { username: 'dora', password: 'dora-password' } })
  t.equal(login.statusCode, 503)
  t.equal(login.json().code, 'signing_unavailable')
})
