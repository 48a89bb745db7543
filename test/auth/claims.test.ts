// Verified claims → identity, verification failures → the 401 the client sees,
// and the claims of tokens Gatecast issues. Real tokens from fast-jwt; no port.
import t from 'tap'
import { createSigner, createVerifier } from 'fast-jwt'
import { identityFromClaims, signAccessToken, tokenError } from '../../src/auth/claims.ts'
import { jwtFromKeys } from '../../src/auth/jwt.ts'
import { createTokenKeys } from '../../src/auth/keys.ts'
import { readConfig } from '../../src/config/config.ts'
import { GatecastError, isGatecastError } from '../../src/protocol/errors.ts'

const SECRET = 'claims-test-secret-0123456789abcdef0123'
const sign = createSigner({ key: SECRET })
const verify = createVerifier({ key: SECRET })
const now = (): number => Math.floor(Date.now() / 1000)

const invalid = (message: string): { statusCode: number, code: string, message: string } => ({ statusCode: 401, code: 'token_invalid', message })

t.test('identityFromClaims: every field from a verified token', async t => {
  const payload = verify(sign({ sub: 'alice', name: 'Alice', roles: ['admin', 'ops'], channels: ['chat', 'room:*'], jti: 'j-1', exp: now() + 60 })) as Record<string, unknown>
  t.same(identityFromClaims(payload, 'sub'), {
    userId: 'alice', name: 'Alice', roles: ['admin', 'ops'], channels: ['chat', 'room:*'], jti: 'j-1', exp: payload.exp, claims: payload
  })
})

t.test('identityFromClaims: the user id', async t => {
  t.equal(identityFromClaims({ sub: 'alice' }, 'sub').userId, 'alice')
  t.equal(identityFromClaims({ user_id: 'bob' }, 'sub').userId, 'bob', 'user_id when the configured claim is absent')
  t.equal(identityFromClaims({ sub: 'alice', user_id: 'bob' }, 'sub').userId, 'alice', 'the configured claim wins over user_id')
  t.equal(identityFromClaims({ uid: 'carol', sub: 'x' }, 'uid').userId, 'carol', 'a configured claim other than sub')
  t.equal(identityFromClaims({ user_id: 42 }, 'sub').userId, '42', 'numeric ids become strings')
  t.equal(identityFromClaims({ sub: 0 }, 'sub').userId, '0', 'zero is an id')
  t.equal(identityFromClaims({ sub: 1.5e3 }, 'sub').userId, '1500')
  t.throws(() => identityFromClaims({ name: 'nobody' }, 'sub'), invalid('token has no user id (claim sub)'))
  t.throws(() => identityFromClaims({ sub: 'x' }, 'uid'), invalid('token has no user id (claim uid)'), 'the message names the configured claim')
  for (const bad of ['', true, null, ['alice'], { id: 'alice' }]) {
    t.throws(() => identityFromClaims({ sub: bad }, 'sub'), invalid('token has no user id (claim sub)'), JSON.stringify(bad))
  }
})

t.test('identityFromClaims: a payload that is not an object', async t => {
  for (const payload of [null, undefined, 'alice', 42, true]) {
    t.throws(() => identityFromClaims(payload, 'sub'), invalid('token payload is not an object'), String(payload))
  }
})

t.test('identityFromClaims: the channels claim', async t => {
  t.equal(identityFromClaims({ sub: 'a' }, 'sub').channels, undefined, 'absent: every channel')
  t.same(identityFromClaims({ sub: 'a', channels: [] }, 'sub').channels, [], 'empty: no channel')
  t.same(identityFromClaims({ sub: 'a', channels: ['chat', 'ns:*'] }, 'sub').channels, ['chat', 'ns:*'])
  for (const bad of ['chat', ['chat', 1], [null], { 0: 'chat' }, null, 7]) {
    t.throws(() => identityFromClaims({ sub: 'a', channels: bad }, 'sub'), invalid('claim channels must be an array of strings'), JSON.stringify(bad))
  }
})

t.test('identityFromClaims: roles and the optional fields', async t => {
  t.same(identityFromClaims({ sub: 'a' }, 'sub').roles, [], 'absent: none')
  t.same(identityFromClaims({ sub: 'a', roles: ['admin'] }, 'sub').roles, ['admin'])
  t.same(identityFromClaims({ sub: 'a', roles: 'admin' }, 'sub').roles, [], 'a string is not a role list')
  t.same(identityFromClaims({ sub: 'a', roles: ['admin', 1] }, 'sub').roles, [], 'a mixed list grants nothing')
  const loose = identityFromClaims({ sub: 'a', name: 7, jti: true, exp: '123' }, 'sub')
  t.equal(loose.name, undefined)
  t.equal(loose.jti, undefined)
  t.equal(loose.exp, undefined)
})

t.test('identityFromClaims: jti, a string or a number (as its string), so every token with one can be revoked', async t => {
  t.equal(identityFromClaims({ sub: 'a', jti: 'j-1' }, 'sub').jti, 'j-1')
  t.equal(identityFromClaims({ sub: 'a', jti: 9 }, 'sub').jti, '9', 'a number, as its string')
  t.equal(identityFromClaims({ sub: 'a', jti: 0 }, 'sub').jti, '0', 'zero is a jti')
  t.equal(identityFromClaims({ sub: 'a', jti: 1.5e3 }, 'sub').jti, '1500')
  t.equal(identityFromClaims({ sub: 'a', jti: -7 }, 'sub').jti, '-7')
  t.equal(identityFromClaims(JSON.parse('{"sub":"a","jti":12345678901234567890}'), 'sub').jti, '12345678901234567000', 'as JSON.parse read it')
  const payload = verify(sign({ sub: 'a', jti: 42 })) as Record<string, unknown>
  t.equal(identityFromClaims(payload, 'sub').jti, '42', 'from a real token')
  for (const none of [undefined, null, true, ['j'], { id: 'j' }, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.equal(identityFromClaims({ sub: 'a', jti: none }, 'sub').jti, undefined, String(none))
  }
})

// each fast-jwt failure, produced for real, and what the client is told
const failures: Array<[string, () => unknown, string, string]> = [
  ['FAST_JWT_EXPIRED', () => verify(sign({ sub: 'a', exp: now() - 3600 })), 'token_expired', 'token expired'],
  ['FAST_JWT_INACTIVE', () => verify(sign({ sub: 'a', nbf: now() + 3600 })), 'token_not_active', 'token not yet valid'],
  ['FAST_JWT_INVALID_ALGORITHM', () => createVerifier({ key: SECRET, algorithms: ['HS512'] })(sign({ sub: 'a' })), 'token_invalid', 'token algorithm not accepted'],
  ['FAST_JWT_INVALID_SIGNATURE', () => createVerifier({ key: 'another-secret-0123456789abcdef0123' })(sign({ sub: 'a' })), 'token_invalid', 'invalid token signature'],
  ['FAST_JWT_MISSING_SIGNATURE', () => verify(createSigner({ algorithm: 'none' })({ sub: 'a' })), 'token_invalid', 'unsigned token'],
  ['FAST_JWT_INVALID_CLAIM_VALUE', () => createVerifier({ key: SECRET, allowedIss: 'https://idp' })(sign({ sub: 'a', iss: 'https://evil' })), 'token_invalid', 'token claims not accepted (issuer or audience)'],
  ['FAST_JWT_MISSING_REQUIRED_CLAIM', () => createVerifier({ key: SECRET, requiredClaims: ['aud'] })(sign({ sub: 'a' })), 'token_invalid', 'token misses a required claim'],
  ['FAST_JWT_INVALID_CRIT_HEADER', () => verify(createSigner({ key: SECRET, header: { alg: 'HS256', crit: ['x-unknown'] } })({ sub: 'a' })), 'token_invalid', 'token has an unsupported critical header'],
  ['FAST_JWT_MALFORMED', () => verify('not.a.jwt'), 'token_invalid', 'malformed token']
]

t.test('tokenError maps each fast-jwt failure to a 401 with a stable code', async t => {
  for (const [fastJwtCode, attempt, code, message] of failures) {
    let thrown: unknown
    try {
      attempt()
    } catch (err) {
      thrown = err
    }
    t.equal((thrown as { code?: unknown } | undefined)?.code, fastJwtCode, `fast-jwt throws ${fastJwtCode}`)
    const mapped = tokenError(thrown)
    t.ok(isGatecastError(mapped), `${fastJwtCode} becomes a GatecastError`)
    t.match(mapped, { statusCode: 401, code, message }, `${fastJwtCode} → ${code}: ${message}`)
    t.notMatch(mapped.message, /FAST_JWT|The token/, 'no fast-jwt wording reaches the client')
  }
})

t.test('tokenError: anything else is a malformed token; a GatecastError passes through', async t => {
  for (const err of [new Error('internal detail'), { code: 'ECONNRESET' }, { code: 42 }, null, undefined, 'boom']) {
    t.match(tokenError(err), invalid('malformed token'), String(err))
  }
  const own = new GatecastError(401, 'jwks_unavailable', 'keys cannot be fetched')
  t.equal(tokenError(own), own, 'the same object, code and message kept')
})

t.test('tokenError: what the key function refused comes out as itself, through fast-jwt\'s wrapping', async t => {
  const own = GatecastError.tokenInvalid('unknown signing key (kid)')
  const verifyWithKeyFunction = createVerifier({ key: async () => { throw own } })
  const thrown = await verifyWithKeyFunction(sign({ sub: 'a' })).then(() => null, (err: unknown) => err)
  t.equal((thrown as { code?: unknown } | null)?.code, 'FAST_JWT_KEY_FETCHING_ERROR', 'fast-jwt wraps it')
  t.equal(tokenError(thrown), own, 'the GatecastError it wrapped')
  const foreign = await createVerifier({ key: async () => { throw new Error('internal detail') } })(sign({ sub: 'a' })).then(() => null, (err: unknown) => err)
  t.match(tokenError(foreign), invalid('malformed token'), 'anything else the key function throws says nothing more')
})

t.test('signAccessToken: the claims Gatecast issues, read back as an identity', async t => {
  const config = readConfig({}, { JWT_SECRET: SECRET, JWT_ISSUER: 'https://gatecast.test' }, '/nonexistent')
  const { sign, verify } = jwtFromKeys(createTokenKeys(config, SECRET))
  if (sign === undefined) throw new Error('HS256 keys sign')
  const token = signAccessToken(sign, { sub: 'alice', roles: ['admin'], channels: ['chat'] }, 120)
  const payload = await verify(token) as Record<string, unknown>
  t.equal(payload.iss, 'https://gatecast.test')
  t.equal((payload.exp as number) - (payload.iat as number), 120, 'exp is iat + ttl')
  t.match(payload.jti, /^[0-9a-f-]{36}$/, 'a random jti, so the token can be revoked')
  t.same(identityFromClaims(payload, 'sub'), { userId: 'alice', name: 'alice', roles: ['admin'], channels: ['chat'], jti: payload.jti, exp: payload.exp, claims: payload })

  const plain = await verify(signAccessToken(sign, { sub: 'bob', name: 'Bob', roles: [] }, 60)) as Record<string, unknown>
  t.equal(plain.name, 'Bob')
  t.notOk('roles' in plain, 'no roles claim for no roles')
  t.notOk('channels' in plain, 'no channels claim: every channel')
  t.not(plain.jti, payload.jti)
})
