// Algorithms and keys (issue 5, point 1): RS256, ES256 and EdDSA from PEM files
// for login, the CLI and verification; verify-only servers; the algorithm
// pinned against confusion attacks; kid-based rotation of secrets and key
// pairs; configuration mistakes refused at start with a one-line fix.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { build } from '../../server.ts'
import { ConfigError, readConfig } from '../../src/config/config.ts'
import { api, SECRET, type TestApp } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'
import { gatecast, oneLineError } from '../helpers/cli.ts'
import {
  jwk, keyPair, secretKid, signatureValid, signToken, thumbprintKid, tokenHeader, tokenPayload, writeKeyPair, type AsymAlg
} from '../helpers/keys-extra.ts'
import { b64url, bearer, claims, closeAtEnd, countLogs, expectRefused, signJwt, start } from '../helpers/ws-extra.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-keys-'))
const users = {
  verifyCredentials: (u: string, p: string) => u === 'dora' && p === 'dora-password' ? { id: 'dora', name: 'Dora' } : null
}

async function login (a: TestApp): Promise<{ status: number, body: any }> {
  return api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'dora-password' } })
}

async function admitted (t: Test, a: TestApp, token: string, user: string, label: string): Promise<void> {
  const c = await connect(`${a.ws}/ws/chat`, bearer(token))
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, user, `${label}: socket admitted`)
}

async function configError (t: Test, env: Record<string, string>, re: RegExp, label: string, cwd = tmp()): Promise<void> {
  const err = await build({ cwd, env, config: { usersFile: null }, logger: false }).then(async app => { await app.close(); return null }, (e: unknown) => e)
  t.ok(err instanceof ConfigError, `${label}: ConfigError (${String(err)})`)
  t.match((err as Error | null)?.message ?? '', re, `${label}: says what is wrong`)
  t.notMatch((err as Error | null)?.message ?? '', /\n/, `${label}: one line`)
}

const ALGS: AsymAlg[] = ['RS256', 'ES256', 'EdDSA']
// RSA key generation blocks the event loop for a while: keys are made before any server runs
const STRANGER_RSA = keyPair('RS256')

for (const alg of ALGS) {
  t.test(`${alg}: login issues ${alg} tokens with a kid; they and tokens of other backends open sockets`, async t => {
    const pair = keyPair(alg)
    const other = keyPair(alg)
    const dir = tmp()
    const { publicFile, privateFile } = writeKeyPair(dir, pair)
    const a = await start(t, { jwtAlgorithm: alg, jwtPublicKeyFile: publicFile, jwtPrivateKeyFile: privateFile }, users)

    const res = await login(a)
    t.equal(res.status, 200, 'login 200')
    const access = res.body.access_token as string
    t.equal(tokenHeader(access).alg, alg, `header alg ${alg}`)
    t.equal(tokenHeader(access).kid, thumbprintKid(pair.publicKey), 'kid = first 16 characters of the RFC 7638 thumbprint')
    t.ok(signatureValid(access, pair.publicKey), 'signature checks out with node:crypto and the public key')
    const p = tokenPayload(access)
    t.equal(p.sub, 'dora')
    t.equal(p.exp - p.iat, 3600, 'exp - iat = ACCESS_TOKEN_TTL')
    await admitted(t, a, access, 'dora', 'issued token')

    const refreshed = await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: res.body.refresh_token } })
    t.equal(refreshed.status, 200, 'refresh 200')
    t.equal(tokenHeader(refreshed.body.access_token).alg, alg)
    await admitted(t, a, refreshed.body.access_token, 'dora', 'refreshed token')

    // tokens minted elsewhere with the same private key, with and without kid
    await admitted(t, a, signToken(claims('erin'), { alg, key: pair.privateKey }), 'erin', 'external, no kid')
    await admitted(t, a, signToken(claims('fred'), { alg, key: pair.privateKey, header: { kid: thumbprintKid(pair.publicKey) } }), 'fred', 'external, with kid')

    // the same algorithm, another key: refused
    await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg, key: other.privateKey })), 401, 'token_invalid', 'another key')
    await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(signToken(claims('mallory'), { alg, key: other.privateKey, header: { kid: thumbprintKid(pair.publicKey) } })), 401, 'token_invalid', 'another key, our kid')
  })
}

t.test('RS256 configured: algorithm confusion and unsigned tokens are refused', async t => {
  const rsa = keyPair('RS256')
  const dir = tmp()
  const { publicFile, privateFile } = writeKeyPair(dir, rsa)
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: publicFile, jwtPrivateKeyFile: privateFile })
  const url = `${a.ws}/ws/chat`
  const kid = thumbprintKid(rsa.publicKey)

  // the classic: HS256 with the public key (which anyone may have) as the HMAC secret
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'HS256', key: rsa.publicPem })), 401, 'token_invalid', 'HS256 keyed with the public PEM')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'HS256', key: rsa.publicPem, header: { kid } })), 401, 'token_invalid', 'HS256 keyed with the public PEM, our kid')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'HS256', key: rsa.publicPem.trim() })), 401, 'token_invalid', 'HS256 keyed with the trimmed PEM')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'HS512', key: rsa.publicPem })), 401, 'token_invalid', 'HS512 keyed with the public PEM')
  // alg none, with and without our kid
  await expectRefused(t, a, url, bearer(`${b64url({ alg: 'none' })}.${b64url(claims('mallory'))}.`), 401, 'token_invalid', 'alg none')
  await expectRefused(t, a, url, bearer(`${b64url({ alg: 'none', kid })}.${b64url(claims('mallory'))}.`), 401, 'token_invalid', 'alg none with our kid')
  await expectRefused(t, a, url, bearer(`${b64url({ alg: 'RS256', kid })}.${b64url(claims('mallory'))}.`), 401, 'token_invalid', 'RS256 header, empty signature')
  // other asymmetric algorithms, even with keys that are "right" for them
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'ES256', key: keyPair('ES256').privateKey })), 401, 'token_invalid', 'ES256 token')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'EdDSA', key: keyPair('EdDSA').privateKey })), 401, 'token_invalid', 'EdDSA token')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'PS256', key: rsa.privateKey })), 401, 'token_invalid', 'PS256 with our own RSA key')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'rs256', signAs: 'RS256', key: rsa.privateKey })), 401, 'token_invalid', 'alg spelled rs256')
  // kid that is not a string
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: rsa.privateKey, header: { kid: 1 } })), 401, 'token_invalid', 'numeric kid')
  t.equal(a.app.gatecast.hub.size, 0, 'nothing opened')

  await admitted(t, a, signToken(claims('dora'), { alg: 'RS256', key: rsa.privateKey, header: { kid } }), 'dora', 'the genuine RS256 token next to them')
})

t.test('HS256 configured: RS256 tokens are refused, whatever key signed them', async t => {
  const rsa = STRANGER_RSA
  const a = await start(t)
  const url = `${a.ws}/ws/chat`
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: rsa.privateKey })), 401, 'token_invalid', 'RS256 token')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', signAs: 'HS256', key: SECRET })), 401, 'token_invalid', 'RS256 header, HMAC signature with the secret')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'EdDSA', key: keyPair('EdDSA').privateKey })), 401, 'token_invalid', 'EdDSA token')
  await expectRefused(t, a, url, bearer(`${b64url({ alg: 'none', kid: secretKid(SECRET) })}.${b64url(claims('mallory'))}.`), 401, 'token_invalid', 'alg none with our kid')
  await admitted(t, a, signJwt(claims('dora')), 'dora', 'HS256 with the secret')
})

t.test('ES256 configured: RS256 tokens and HS256 keyed with the EC public key are refused', async t => {
  const ec = keyPair('ES256')
  const { publicFile } = writeKeyPair(tmp(), ec)
  const a = await start(t, { jwtAlgorithm: 'ES256', jwtPublicKeyFile: publicFile })
  const url = `${a.ws}/ws/chat`
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: STRANGER_RSA.privateKey })), 401, 'token_invalid', 'RS256 token')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'HS256', key: ec.publicPem })), 401, 'token_invalid', 'HS256 keyed with the EC public PEM')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'ES384', key: keyPair('ES256', 'p384').privateKey })), 401, 'token_invalid', 'ES384 token')
  await admitted(t, a, signToken(claims('dora'), { alg: 'ES256', key: ec.privateKey }), 'dora', 'ES256 token')
})

t.test('public key only: verify-only server; login and refresh answer 503 signing_unavailable', async t => {
  const pair = keyPair('EdDSA')
  const { publicFile } = writeKeyPair(tmp(), pair)
  const a = await start(t, { jwtAlgorithm: 'EdDSA', jwtPublicKeyFile: publicFile }, users)
  t.equal(countLogs(a.logs, 'JWT_PRIVATE_KEY_FILE is not set: EdDSA tokens are only verified; POST /auth/login and /auth/refresh answer 503 signing_unavailable'), 1, 'a warning at start says so')

  const res = await login(a)
  t.equal(res.status, 503, 'login 503')
  t.same(res.body, { statusCode: 503, error: 'Service Unavailable', code: 'signing_unavailable', message: res.body.message }, 'error shape and code')
  t.match(res.body.message, /JWT_PRIVATE_KEY_FILE/, 'the message names the missing setting')
  const wrong = await api(a.base, 'POST', '/auth/login', { body: { username: 'dora', password: 'wrong' } })
  t.equal(wrong.status, 503, 'a wrong password gets the same answer: passwords are not checked at all')
  const refresh = await api(a.base, 'POST', '/auth/refresh', { body: { refresh_token: 'x'.repeat(43) } })
  t.equal(refresh.status, 503, 'refresh 503')
  t.equal(refresh.body.code, 'signing_unavailable')

  const external = signToken(claims('erin'), { alg: 'EdDSA', key: pair.privateKey })
  await admitted(t, a, external, 'erin', 'a token of the issuing backend')
  const out = await api(a.base, 'POST', '/auth/logout', { body: {}, headers: { authorization: `Bearer ${external}` } })
  t.equal(out.status, 204, 'REST with that token works (logout)')
})

t.test('private key only: the public half is derived from it', async t => {
  const pair = keyPair('ES256')
  const { privateFile } = writeKeyPair(tmp(), pair)
  const a = await start(t, { jwtAlgorithm: 'ES256', jwtPrivateKeyFile: privateFile }, users)
  const res = await login(a)
  t.equal(res.status, 200)
  t.equal(tokenHeader(res.body.access_token).kid, thumbprintKid(pair.publicKey), 'same kid as with the public key file')
  t.ok(signatureValid(res.body.access_token, pair.publicKey))
  await admitted(t, a, res.body.access_token, 'dora', 'issued token')
})

t.test('HS256 rotation: old-secret tokens accepted by kid, new tokens carry the new kid', async t => {
  const A = 'secret-A-that-is-long-enough-for-production-0123456789'
  const B = 'secret-B-that-is-long-enough-for-production-0123456789'
  const C = 'secret-C-that-is-long-enough-for-production-0123456789'
  const before = await start(t, { jwtSecret: A }, users)
  const old = (await login(before)).body.access_token as string
  t.equal(tokenHeader(old).kid, secretKid(A), 'kid = first 16 characters of HMAC-SHA256(secret, "gatecast key id")')

  // rotated: B signs, A still verifies
  const a = await start(t, { jwtSecret: B, jwtPreviousSecrets: [A] }, users)
  const url = `${a.ws}/ws/chat`
  await admitted(t, a, old, 'dora', 'token of the previous secret')
  const fresh = (await login(a)).body.access_token as string
  t.equal(tokenHeader(fresh).kid, secretKid(B), 'new tokens carry the new kid')
  t.not(secretKid(A), secretKid(B))
  await admitted(t, a, fresh, 'dora', 'new token')
  await expectRefused(t, before, `${before.ws}/ws/chat`, bearer(fresh), 401, 'token_invalid', 'the old server does not know the new kid')

  // kid and key must go together
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: C, header: { kid: secretKid(A) } })), 401, 'token_invalid', 'kid of the old key, signed with a third')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: B, header: { kid: secretKid(A) } })), 401, 'token_invalid', 'kid of the old key, signed with the current')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: A, header: { kid: secretKid(B) } })), 401, 'token_invalid', 'kid of the current key, signed with the old')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: B, header: { kid: 'no-such-kid' } })), 401, 'token_invalid', 'unknown kid')
  // no kid: the current key only
  await admitted(t, a, signJwt(claims('erin'), { key: B }), 'erin', 'no kid, current secret')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: A })), 401, 'token_invalid', 'no kid, previous secret')
})

t.test('HS256 rotation with explicit kids: JWT_KEY_ID and JWT_PREVIOUS_KEY_IDS', async t => {
  const A = 'secret-A-that-is-long-enough-for-production-0123456789'
  const B = 'secret-B-that-is-long-enough-for-production-0123456789'
  const C = 'secret-C-that-is-long-enough-for-production-0123456789'
  const a = await start(t, { jwtSecret: C, jwtKeyId: '2025-06', jwtPreviousSecrets: [B, A], jwtPreviousKeyIds: ['2025-01', ''] }, users)
  const url = `${a.ws}/ws/chat`
  t.equal(tokenHeader((await login(a)).body.access_token).kid, '2025-06', 'issued with JWT_KEY_ID')
  await admitted(t, a, signJwt(claims('u1'), { key: B, header: { kid: '2025-01' } }), 'u1', 'previous key by its given kid')
  await admitted(t, a, signJwt(claims('u2'), { key: B, header: { kid: secretKid(B) } }), 'u2', 'previous key by its derived kid')
  await admitted(t, a, signJwt(claims('u3'), { key: A, header: { kid: secretKid(A) } }), 'u3', 'second previous key, derived kid (empty item)')
  await admitted(t, a, signJwt(claims('u4'), { key: C, header: { kid: secretKid(C) } }), 'u4', 'current key by its derived kid too')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: A, header: { kid: '2025-01' } })), 401, 'token_invalid', 'given kid, wrong key')
  await expectRefused(t, a, url, bearer(signJwt(claims('mallory'), { key: B, header: { kid: '2025-06' } })), 401, 'token_invalid', 'current kid, previous key')
})

t.test('RS256 rotation: JWT_PREVIOUS_PUBLIC_KEY_FILES verify, the new pair signs', async t => {
  const dir = tmp()
  const p1 = keyPair('RS256')
  const p2 = keyPair('RS256')
  const f1 = writeKeyPair(dir, p1, 'old')
  const f2 = writeKeyPair(dir, p2, 'new')
  const before = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: f1.publicFile, jwtPrivateKeyFile: f1.privateFile }, users)
  const old = (await login(before)).body.access_token as string

  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: f2.publicFile, jwtPrivateKeyFile: f2.privateFile, jwtPreviousPublicKeyFiles: [f1.publicFile] }, users)
  const url = `${a.ws}/ws/chat`
  await admitted(t, a, old, 'dora', 'token of the previous key pair')
  const fresh = (await login(a)).body.access_token as string
  t.equal(tokenHeader(fresh).kid, thumbprintKid(p2.publicKey), 'new kid')
  t.not(tokenHeader(fresh).kid, tokenHeader(old).kid)
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: p2.privateKey, header: { kid: thumbprintKid(p1.publicKey) } })), 401, 'token_invalid', 'old kid, new key')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: STRANGER_RSA.privateKey, header: { kid: thumbprintKid(p1.publicKey) } })), 401, 'token_invalid', 'old kid, a stranger key')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: p1.privateKey, header: { kid: 'gone' } })), 401, 'token_invalid', 'unknown kid')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: p1.privateKey })), 401, 'token_invalid', 'old key without kid')
})

t.test('configuration: env names are read; mistakes stop the start with a one-line fix', async t => {
  const dir = tmp()
  const c = readConfig({}, {
    JWT_KEY_ID: 'k-2025',
    JWT_PREVIOUS_SECRETS: 'one-secret, two-secret,,',
    JWT_PREVIOUS_PUBLIC_KEY_FILES: 'keys/a.pem, /abs/b.pem',
    JWT_PREVIOUS_KEY_IDS: 'x,,y',
    JWT_PUBLIC_KEY_FILE: 'keys/pub.pem',
    JWT_JWKS_TIMEOUT: '0.5',
    JWT_JWKS_COOLDOWN: '10',
    JWT_JWKS_MAX_AGE: '120'
  }, dir)
  t.match(c, {
    jwtKeyId: 'k-2025',
    jwtPreviousSecrets: ['one-secret', 'two-secret'],
    jwtPreviousPublicKeyFiles: [join(dir, 'keys/a.pem'), '/abs/b.pem'],
    jwtPreviousKeyIds: ['x', '', 'y'],
    jwtPublicKeyFile: join(dir, 'keys/pub.pem'),
    jwtJwksTimeout: 0.5,
    jwtJwksCooldown: 10,
    jwtJwksMaxAge: 120
  })
  t.match(readConfig({}, {}, dir), { jwtPreviousSecrets: [], jwtPreviousPublicKeyFiles: [], jwtPreviousKeyIds: [], jwtJwksTimeout: 5, jwtJwksCooldown: 30, jwtJwksMaxAge: 600 }, 'defaults')
  t.equal(readConfig({}, {}, dir).jwtKeyId, undefined)
  t.throws(() => readConfig({}, { JWT_KEY_ID: 'has space' }, dir), ConfigError, 'JWT_KEY_ID with a space')
  t.throws(() => readConfig({}, { JWT_JWKS_TIMEOUT: '0' }, dir), ConfigError, 'JWT_JWKS_TIMEOUT 0')

  const rsa = writeKeyPair(dir, keyPair('RS256'), 'rsa')
  const rsa2 = writeKeyPair(dir, keyPair('RS256'), 'rsa2')
  const ec = writeKeyPair(dir, keyPair('ES256'), 'ec')
  const p384 = writeKeyPair(dir, keyPair('ES256', 'p384'), 'p384')
  const weak = writeKeyPair(dir, keyPair('RS256', 'rsa1024'), 'weak')
  const notPem = join(dir, 'not.pem')
  writeFileSync(notPem, 'hello')
  const LONG = SECRET

  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: ec.publicFile }, /JWT_PUBLIC_KEY_FILE holds an ec .*RS256 needs an RSA key/, 'EC key for RS256')
  await configError(t, { JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY_FILE: p384.publicFile }, /secp384r1.*ES256 needs an EC P-256 key/, 'P-384 key for ES256')
  await configError(t, { JWT_ALGORITHM: 'EdDSA', JWT_PUBLIC_KEY_FILE: rsa.publicFile }, /EdDSA needs an Ed25519 key/, 'RSA key for EdDSA')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: rsa.publicFile, JWT_PRIVATE_KEY_FILE: rsa2.privateFile }, /JWT_PRIVATE_KEY_FILE .* is not the private half of JWT_PUBLIC_KEY_FILE/, 'mismatched pair')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: join(dir, 'missing.pem') }, /JWT_PUBLIC_KEY_FILE .*missing\.pem: ENOENT/, 'missing file')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: notPem }, /JWT_PUBLIC_KEY_FILE .* is not a PEM/, 'not a PEM')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY_FILE: notPem }, /JWT_PRIVATE_KEY_FILE .* is not an unencrypted PEM private key/, 'private key not a PEM')
  await configError(t, { JWT_ALGORITHM: 'RS256' }, /RS256 needs JWT_PUBLIC_KEY_FILE .* or JWT_JWKS_URL/, 'no key at all')
  await configError(t, { JWT_SECRET: LONG, JWT_PUBLIC_KEY_FILE: rsa.publicFile }, /JWT_PUBLIC_KEY_FILE need an asymmetric JWT_ALGORITHM/, 'key file with HS256')
  await configError(t, { JWT_SECRET: LONG, JWT_JWKS_URL: 'https://id.example/jwks.json' }, /JWT_JWKS_URL need an asymmetric JWT_ALGORITHM/, 'JWKS with HS256')
  await configError(t, { JWT_SECRET: LONG, JWT_PREVIOUS_PUBLIC_KEY_FILES: rsa.publicFile }, /JWT_PREVIOUS_PUBLIC_KEY_FILES need an asymmetric/, 'previous key files with HS256')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: rsa.publicFile, JWT_PREVIOUS_SECRETS: LONG }, /JWT_PREVIOUS_SECRETS needs an HS algorithm/, 'previous secrets with RS256')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: rsa.publicFile, JWT_PREVIOUS_PUBLIC_KEY_FILES: ec.publicFile }, /JWT_PREVIOUS_PUBLIC_KEY_FILES item 1 holds an ec/, 'previous key of another type')
  await configError(t, { JWT_SECRET: LONG, JWT_PREVIOUS_SECRETS: `${LONG}x`, JWT_PREVIOUS_KEY_IDS: 'a,b' }, /JWT_PREVIOUS_KEY_IDS has 2 items for 1 previous keys/, 'too many previous kids')
  await configError(t, { JWT_SECRET: LONG, JWT_KEY_ID: 'same', JWT_PREVIOUS_SECRETS: `${LONG}x`, JWT_PREVIOUS_KEY_IDS: 'same' }, /key id same .* already names another key/, 'one kid for two keys')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_JWKS_URL: 'ftp://id.example/jwks.json' }, /JWT_JWKS_URL must be an https:\/\/ URL/, 'JWKS over ftp')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_JWKS_URL: 'not a url' }, /JWT_JWKS_URL not a url is not a URL/, 'JWKS not a URL')
  await configError(t, { JWT_ALGORITHM: 'RS256', JWT_JWKS_URL: 'https://id.example/jwks.json', JWT_KEY_ID: 'k' }, /JWT_KEY_ID names the signing key, but there is none/, 'JWT_KEY_ID without a key')
  await configError(t, { NODE_ENV: 'production', JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: weak.publicFile }, /1024-bit RSA key; at least 2048 bits .*openssl genpkey/, 'production: 1024-bit RSA')
  await configError(t, { NODE_ENV: 'production', JWT_SECRET: LONG, JWT_PREVIOUS_SECRETS: 'short' }, /JWT_PREVIOUS_SECRETS item 1 is 5 bytes; production needs at least 32/, 'production: short previous secret')

  // development: the weak key and the short previous secret only warn, and nothing secret is logged
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: weak.publicFile })
  t.equal(countLogs(a.logs, 'JWT_PUBLIC_KEY_FILE is a 1024-bit RSA key; at least 2048 bits are needed in production'), 1, 'dev: weak RSA key warned about')
  const b = await start(t, { jwtPreviousSecrets: ['short-old'] })
  t.equal(countLogs(b.logs, 'JWT_PREVIOUS_SECRETS item 1 is 9 bytes; production needs at least 32'), 1, 'dev: short previous secret warned about')
  t.notOk(b.logs.join('').includes('short-old'), 'the secret itself is not logged')
  // a production start with keys needs no JWT_SECRET
  const prod = await build({ cwd: tmp(), env: { NODE_ENV: 'production', JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: rsa.publicFile, JWT_PRIVATE_KEY_FILE: rsa.privateFile }, config: { usersFile: null }, logger: false })
  t.teardown(() => prod.close())
  t.equal(prod.config.production, true, 'production with RS256 keys and no JWT_SECRET starts')
})

t.test('CLI token: signs with the configured key pair and kid; a verify-only config is a one-line error', async t => {
  const dir = tmp()
  const pair = keyPair('RS256')
  const { publicFile, privateFile } = writeKeyPair(dir, pair)
  const env = { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: publicFile, JWT_PRIVATE_KEY_FILE: privateFile }
  const r = await gatecast(['token', 'carol', '--ttl', '120'], { cwd: dir, env })
  t.equal(r.code, 0, `exit 0 (${r.stderr})`)
  const token = r.stdout.trim()
  t.equal(tokenHeader(token).alg, 'RS256')
  t.equal(tokenHeader(token).kid, thumbprintKid(pair.publicKey), 'the same kid the server uses')
  t.ok(signatureValid(token, pair.publicKey), 'signed with the private key')
  t.equal(tokenPayload(token).exp - tokenPayload(token).iat, 120)
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: publicFile })
  await admitted(t, a, token, 'carol', 'CLI token on a verify-only server with the public key')

  const ed = keyPair('EdDSA')
  const edFiles = writeKeyPair(dir, ed, 'ed')
  const e = await gatecast(['token', 'carol'], { cwd: dir, env: { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY_FILE: edFiles.privateFile, JWT_KEY_ID: 'ed-1' } })
  t.equal(e.code, 0, `EdDSA: exit 0 (${e.stderr})`)
  t.same(tokenHeader(e.stdout.trim()), { alg: 'EdDSA', typ: 'JWT', kid: 'ed-1' }, 'EdDSA with JWT_KEY_ID')
  t.ok(signatureValid(e.stdout.trim(), ed.publicKey))

  const hs = await gatecast(['token', 'carol'], { cwd: dir, env: { JWT_SECRET: SECRET } })
  t.equal(tokenHeader(hs.stdout.trim()).kid, secretKid(SECRET), 'HS256: the derived kid of the secret')

  const verifyOnly = await gatecast(['token', 'carol'], { cwd: dir, env: { JWT_ALGORITHM: 'RS256', JWT_PUBLIC_KEY_FILE: publicFile } })
  oneLineError(t, verifyOnly, /JWT_PRIVATE_KEY_FILE/, 'public key only')
  const mismatch = await gatecast(['token', 'carol'], { cwd: dir, env: { JWT_ALGORITHM: 'ES256', JWT_PUBLIC_KEY_FILE: publicFile } })
  oneLineError(t, mismatch, /ES256 needs an EC P-256 key/, 'key of the wrong type')
  t.notMatch(JSON.stringify([r.stderr, e.stderr]), /PRIVATE KEY/, 'no key material on stderr')
})

t.test('a JWK-shaped header or a jku/x5u cannot bring its own key', async t => {
  const pair = keyPair('RS256')
  const mine = STRANGER_RSA
  const { publicFile } = writeKeyPair(tmp(), pair)
  const a = await start(t, { jwtAlgorithm: 'RS256', jwtPublicKeyFile: publicFile })
  const url = `${a.ws}/ws/chat`
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: mine.privateKey, header: { jwk: jwk(mine, undefined) } })), 401, 'token_invalid', 'embedded jwk')
  await expectRefused(t, a, url, bearer(signToken(claims('mallory'), { alg: 'RS256', key: mine.privateKey, header: { jku: 'http://127.0.0.1:1/jwks.json', kid: 'x' } })), 401, 'token_invalid', 'jku')
})
