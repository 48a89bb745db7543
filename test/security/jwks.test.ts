// JWT_JWKS_URL (issue 5, point 2): tokens of an external identity provider,
// verified with keys fetched from a real JWKS server on 127.0.0.1; refetched
// when the IdP rotates; unknown kids refused without a fetch storm; an IdP
// that is down, slow or answers garbage gives 401 jwks_unavailable, never 500.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { api, type TestApp } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'
import { deadUrl, jwk, keyPair, signToken, startJwksServer, thumbprintKid, writeKeyPair, type KeyPair } from '../helpers/keys-extra.ts'
import { bearer, claims, closeAtEnd, expectRefused, logLines, start, tryUpgrade } from '../helpers/ws-extra.ts'
import { sleep, waitFor } from '../helpers/wait.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ISS = 'https://idp.example'
const AUD = 'gatecast'
// RSA key generation blocks the event loop: every key is made before any server runs
const K1 = keyPair('RS256')
const K2 = keyPair('RS256')
const K3 = keyPair('RS256')
const STRANGER = keyPair('RS256')
const LOCAL = keyPair('RS256')

const idpToken = (pair: KeyPair, kid: string | undefined, sub = 'alice', extra: Record<string, unknown> = {}): string =>
  signToken(claims(sub, 600, { iss: ISS, aud: AUD, ...extra }), { alg: pair.alg, key: pair.privateKey, header: kid === undefined ? {} : { kid } })

async function admitted (t: Test, a: TestApp, token: string, user: string, label: string): Promise<void> {
  const c = await connect(`${a.ws}/ws/chat`, bearer(token))
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, user, `${label}: socket admitted`)
}

const users = {
  verifyCredentials: (u: string, p: string) => u === 'dora' && p === 'dora-password' ? { id: 'dora', name: 'Dora' } : null
}

t.test('IdP tokens accepted; rotation picked up by a refetch; unknown kid and wrong key refused', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtIssuer: ISS, jwtAudience: AUD, jwtJwksCooldown: 0.3 }, users)
  const url = `${a.ws}/ws/chat`
  await waitFor(() => idp.requests === 1, { ms: 3000, what: 'the JWKS prefetched at start' })

  await admitted(t, a, idpToken(K1, 'k1'), 'alice', 'token of the IdP')
  const logout = await api(a.base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${idpToken(K1, 'k1', 'bob')}` } })
  t.equal(logout.status, 204, 'REST accepts it too')
  t.equal(idp.requests, 1, 'served from the cache')

  // the IdP's own rules still apply
  await expectRefused(t, a, url, bearer(idpToken(K1, 'k1', 'alice', { iss: 'https://evil.example' })), 401, 'token_invalid', 'wrong iss')
  await expectRefused(t, a, url, bearer(signToken(claims('alice', 600, { iss: ISS, aud: AUD, exp: Math.floor(Date.now() / 1000) - 60 }), { alg: 'RS256', key: K1.privateKey, header: { kid: 'k1' } })), 401, 'token_expired', 'expired')
  // a kid of the set, signed with another key: no refetch, refused
  await expectRefused(t, a, url, bearer(idpToken(STRANGER, 'k1', 'mallory')), 401, 'token_invalid', 'kid k1, another key')
  t.equal(idp.requests, 1, 'a bad signature under a known kid fetches nothing')

  // verify-only for local logins: nothing to sign with
  const login = await api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'dora-password' } })
  t.equal(login.status, 503)
  t.equal(login.body.code, 'signing_unavailable')

  // the IdP rotates: k2 replaces k1
  idp.keys = [jwk(K2, 'k2')]
  await sleep(350)
  await admitted(t, a, idpToken(K2, 'k2', 'carol'), 'carol', 'token with the new kid (refetched)')
  t.equal(idp.requests, 2, 'exactly one refetch')
  await admitted(t, a, idpToken(K2, 'k2', 'dave'), 'dave', 'again, from the cache')
  t.equal(idp.requests, 2)
  // k1 left the set: its tokens stop working
  await expectRefused(t, a, url, bearer(idpToken(K1, 'k1')), 401, 'token_invalid', 'kid removed by the IdP')
  await sleep(350)
  await expectRefused(t, a, url, bearer(idpToken(K3, 'k3')), 401, 'token_invalid', 'kid the JWKS does not have')
  t.equal(idp.requests, 3, 'the unknown kid cost one refetch (the cooldown was over)')
  t.match(logLines(a.logs, 'JWKS fetched').at(-1), { kids: ['k2'], url: idp.url.split('?')[0] }, 'fetches are logged, without the query')
})

t.test('garbage kids: no fetch storm (one fetch per cooldown, one at a time)', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  idp.delayMs = 300
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtJwksCooldown: 30 })
  // tokens arriving while the first fetch runs all wait for that one fetch
  const first = await Promise.all(Array.from({ length: 10 }, async (_, i) => tryUpgrade(`${a.ws}/ws/chat`, bearer(idpToken(K1, 'k1', `u${i}`)))))
  t.ok(first.every(r => r.opened), 'ten sockets admitted')
  t.equal(idp.requests, 1, 'one fetch for all of them')
  idp.delayMs = 0

  const garbage = await Promise.all(Array.from({ length: 40 }, async (_, i) => tryUpgrade(`${a.ws}/ws/chat`, bearer(idpToken(K1, `garbage-${i}-${Math.random()}`)))))
  t.ok(garbage.every(r => r.status === 401 && r.body.code === 'token_invalid'), '40 made-up kids: 401 token_invalid')
  const rest = await Promise.all(Array.from({ length: 20 }, async (_, i) => api(a.base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${idpToken(STRANGER, `rest-${i}`)}` } })))
  t.ok(rest.every(r => r.status === 401), '20 more over REST: 401')
  // other algorithms never reach the JWKS
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg: 'HS256', key: 'x', header: { kid: 'hs-kid' } })), 401, 'token_invalid', 'HS256 with a kid')
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg: 'HS256', key: K1.publicPem, header: { kid: 'k1' } })), 401, 'token_invalid', 'HS256 keyed with the IdP public key, its kid')
  t.equal(idp.requests, 1, 'still one fetch in total: the cooldown holds refetches back')
  await admitted(t, a, idpToken(K1, 'k1', 'zed'), 'zed', 'the real kid keeps working')
})

t.test('JWKS server down: 401 jwks_unavailable (not 500), quickly, and no retry within the cooldown', async t => {
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: await deadUrl(), jwtJwksCooldown: 0.3 })
  const url = `${a.ws}/ws/chat`
  await waitFor(() => logLines(a.logs, 'JWKS fetch failed').length === 1, { ms: 3000, what: 'the failed prefetch logged' })
  t.match(logLines(a.logs, 'JWKS fetch failed')[0], { level: 40, reason: /ECONNREFUSED/, keptKeys: false }, 'warning with the reason')
  await sleep(350)
  const startedAt = Date.now()
  await expectRefused(t, a, url, bearer(idpToken(K1, 'k1')), 401, 'jwks_unavailable', 'connection refused')
  t.ok(Date.now() - startedAt < 2000, 'answered quickly')
  // within the cooldown: refused at once, no new attempt
  await expectRefused(t, a, url, bearer(idpToken(K1, 'k1')), 401, 'jwks_unavailable', 'again, within the cooldown')
  t.equal(logLines(a.logs, 'JWKS fetch failed').length, 2, 'no attempt within the cooldown')
  const rest = await api(a.base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${idpToken(K1, 'k1')}` } })
  t.equal(rest.status, 401, 'REST: 401')
  t.equal(rest.body.code, 'jwks_unavailable')
  t.notOk(a.logs.join('').includes('"statusCode":500'), 'never a 500')
})

t.test('JWKS server failing, slow or answering garbage: 401 jwks_unavailable; recovery', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  idp.mode = 'error'
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtJwksCooldown: 0.2, jwtJwksTimeout: 0.3 })
  const url = `${a.ws}/ws/chat`
  await waitFor(() => idp.requests === 1, { ms: 3000, what: 'prefetch' })
  for (const mode of ['error', 'garbage', 'not-a-set', 'huge', 'redirect', 'hang'] as const) {
    idp.mode = mode
    await sleep(250)
    const startedAt = Date.now()
    await expectRefused(t, a, url, bearer(idpToken(K1, 'k1')), 401, 'jwks_unavailable', mode)
    t.ok(Date.now() - startedAt < 2000, `${mode}: answered within the fetch timeout (${Date.now() - startedAt} ms)`)
  }
  t.ok(logLines(a.logs, 'JWKS fetch failed').some(l => l.reason === 'no answer within 300 ms'), 'the timeout is logged as such')
  t.ok(logLines(a.logs, 'JWKS fetch failed').some(l => /larger than/.test(l.reason)), 'the oversized answer is logged as such')
  // back to normal
  idp.mode = 'ok'
  await sleep(250)
  await admitted(t, a, idpToken(K1, 'k1'), 'alice', 'IdP back')
})

t.test('IdP down after its keys were fetched: known kids keep working, even when the set is stale', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtJwksCooldown: 0.1, jwtJwksMaxAge: 0.2 })
  await admitted(t, a, idpToken(K1, 'k1'), 'alice', 'while up')
  await idp.close()
  await sleep(300)
  await admitted(t, a, idpToken(K1, 'k1', 'bob'), 'bob', 'IdP down, set stale: cached key used, refresh tried in the background')
  await waitFor(() => logLines(a.logs, 'JWKS fetch failed').some(l => l.keptKeys === true), { ms: 3000, what: 'the failed background refresh logged' })
  await sleep(150)
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(idpToken(K2, 'k2')), 401, 'jwks_unavailable', 'a new kid cannot be checked')
})

t.test('kid-less IdP tokens: fine with a single key, refused when the set has several', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtJwksCooldown: 0.1 })
  await admitted(t, a, idpToken(K1, undefined), 'alice', 'no kid, one key')
  idp.keys = [jwk(K1, 'k1'), jwk(K2, 'k2')]
  await sleep(150)
  // a new kid forces the refetch of the two-key set
  await admitted(t, a, idpToken(K2, 'k2', 'bob'), 'bob', 'k2')
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(idpToken(K1, undefined)), 401, 'token_invalid', 'no kid, two keys')
})

for (const alg of ['ES256', 'EdDSA'] as const) {
  t.test(`${alg} identity provider`, async t => {
    const pair = keyPair(alg)
    const idp = await startJwksServer(t, [jwk(pair, 'e1'), jwk(K1, 'r1')])
    const a = await start(t, { jwtAlgorithm: alg, jwtJwksUrl: idp.url })
    await admitted(t, a, signToken(claims('alice'), { alg, key: pair.privateKey, header: { kid: 'e1' } }), 'alice', alg)
    // the RSA key of the same set is not a key for this algorithm
    await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg: 'RS256', key: K1.privateKey, header: { kid: 'r1' } })), 401, 'token_invalid', 'RS256 token, RSA key in the set')
    await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg, key: pair.privateKey, header: { kid: 'r1' } })), 401, 'token_invalid', `${alg} token naming the RSA key`)
  })
}

t.test('JWKS next to a local key pair: local logins and IdP tokens both work', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-jwks-'))
  const { publicFile, privateFile } = writeKeyPair(dir, LOCAL)
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: publicFile, jwtPrivateKeyFile: privateFile, jwtJwksUrl: idp.url }, users)
  await waitFor(() => idp.requests === 1, { ms: 3000, what: 'prefetch' })
  const login = await api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'dora-password' } })
  t.equal(login.status, 200, 'local login signs')
  await admitted(t, a, login.body.access_token, 'dora', 'local token')
  await admitted(t, a, idpToken(K1, 'k1'), 'alice', 'IdP token')
  t.equal(idp.requests, 1, 'local kids never ask the IdP')
  // without a kid, the local key is meant; an IdP token without kid does not pass for one
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(idpToken(K1, undefined)), 401, 'token_invalid', 'IdP token without kid')
  // and the IdP cannot publish a key under the local kid
  idp.keys = [jwk(K1, 'k1'), jwk(STRANGER, thumbprintKid(LOCAL.publicKey))]
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg: 'RS256', key: STRANGER.privateKey, header: { kid: thumbprintKid(LOCAL.publicKey) } })), 401, 'token_invalid', 'local kid, key from the JWKS')
})

t.test('a host route verifying with request.jwtVerify (@fastify/jwt) gets the IdP keys too', async t => {
  const idp = await startJwksServer(t, [jwk(K1, 'k1')])
  const hostRoute = async (app: FastifyInstance): Promise<void> => {
    app.get('/me', async (req) => ({ sub: (await req.jwtVerify<{ sub: string }>()).sub }))
  }
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtJwksUrl: idp.url, jwtIssuer: ISS, jwtAudience: AUD, jwtJwksCooldown: 30 }, { plugins: [hostRoute] })
  const me = async (token: string) => api(a.base, 'GET', '/me', { headers: { authorization: `Bearer ${token}` } })
  t.match(await me(idpToken(K1, 'k1')), { status: 200, body: { sub: 'alice' } }, 'IdP token')
  t.match(await me(idpToken(STRANGER, 'k1', 'mallory')), { status: 401 }, 'kid k1, another key')
  t.match(await me(idpToken(K1, 'k1', 'mallory', { aud: 'someone-else' })), { status: 401 }, 'another audience')
  t.match(await me(idpToken(K1, 'made-up')), { status: 401, body: { code: 'token_invalid' } }, 'a kid the set does not have (the cooldown holds the refetch back)')
  t.equal(idp.requests, 1, 'one fetch')
})
