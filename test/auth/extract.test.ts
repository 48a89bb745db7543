// Where a token is read from (extractToken): every source, the order, and
// what happens when sources repeat, disagree or are empty. No server, no port.
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { extractToken } from '../../src/auth/extract.ts'

const sign = createSigner({ key: 'extract-test-secret-0123456789abcdef' })
const jwt = sign({ sub: 'alice' })
const other = sign({ sub: 'bob' })

const HEADER_MALFORMED = { statusCode: 401, code: 'token_invalid', message: 'Authorization header must be "Bearer <token>"' }
const CONFLICT = { statusCode: 401, code: 'token_invalid', message: 'conflicting or empty tokens' }

t.test('no token anywhere is null, not an error', async t => {
  t.equal(extractToken({ query: {} }), null)
  t.equal(extractToken({ authorization: [], protocol: [], query: {} }), null)
  t.equal(extractToken({ protocol: 'gatecast, json', query: { other: jwt } }), null, 'unrelated subprotocols and parameters are ignored')
  t.equal(extractToken({ query: { token: 42, Authorization: { nested: jwt } } }), null, 'non-string query values are not tokens')
})

t.test('Authorization header: Bearer, any case, surrounding space', async t => {
  t.equal(extractToken({ authorization: `Bearer ${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ authorization: `bearer ${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ authorization: `BEARER ${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ authorization: `  Bearer \t ${jwt}  `, query: {} }), jwt)
  t.equal(extractToken({ authorization: [`Bearer ${jwt}`], query: {} }), jwt, 'headersDistinct gives an array')
})

t.test('a malformed Authorization header is refused, whatever else the request carries', async t => {
  for (const value of ['Basic YWxpY2U6cHc=', 'Bearer', 'Bearer ', jwt, `Bearer ${jwt} extra`, `Token ${jwt}`, '']) {
    t.throws(() => extractToken({ authorization: value, query: {} }), HEADER_MALFORMED, JSON.stringify(value))
  }
  t.throws(() => extractToken({ authorization: 'Basic YWxpY2U6cHc=', protocol: `bearer.${jwt}`, query: { token: jwt } }), HEADER_MALFORMED,
    'a valid token elsewhere does not excuse the header')
  t.throws(() => extractToken({ authorization: [`Bearer ${jwt}`, 'Basic x'], query: {} }), HEADER_MALFORMED, 'every copy of the header is checked')
})

t.test('repeated Authorization headers must agree', async t => {
  t.equal(extractToken({ authorization: [`Bearer ${jwt}`, `bearer ${jwt}`], query: {} }), jwt)
  t.throws(() => extractToken({ authorization: [`Bearer ${jwt}`, `Bearer ${other}`], query: {} }), CONFLICT)
})

t.test('bearer.<jwt> subprotocol, as a header string or a list', async t => {
  t.equal(extractToken({ protocol: `bearer.${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ protocol: `gatecast, bearer.${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ protocol: `gatecast,bearer.${jwt}`, query: {} }), jwt)
  t.equal(extractToken({ protocol: ['gatecast', ` bearer.${jwt} `], query: {} }), jwt)
  t.equal(extractToken({ protocol: `Bearer.${jwt}`, query: {} }), null, 'the prefix is lower case, as subprotocol tokens are case-sensitive')
  t.throws(() => extractToken({ protocol: 'gatecast, bearer.', query: {} }), CONFLICT, 'an empty token is refused')
  t.throws(() => extractToken({ protocol: `bearer.${jwt}, bearer.${other}`, query: {} }), CONFLICT)
})

t.test('?token= and ?Authorization= (Bearer or bare)', async t => {
  t.equal(extractToken({ query: { token: jwt } }), jwt)
  t.equal(extractToken({ query: { Authorization: `Bearer ${jwt}` } }), jwt)
  t.equal(extractToken({ query: { Authorization: `bearer  ${jwt}` } }), jwt)
  t.equal(extractToken({ query: { Authorization: jwt } }), jwt, 'a bare token')
  t.equal(extractToken({ query: { Authorization: ` ${jwt} ` } }), jwt, 'trimmed')
  t.equal(extractToken({ query: { authorization: jwt } }), null, 'the parameter name is case-sensitive')
})

t.test('repeated query parameters: every copy counts', async t => {
  t.equal(extractToken({ query: { token: [jwt, jwt] } }), jwt)
  t.throws(() => extractToken({ query: { token: [jwt, other] } }), CONFLICT)
  t.equal(extractToken({ query: { Authorization: [`Bearer ${jwt}`, jwt] } }), jwt)
  t.throws(() => extractToken({ query: { Authorization: [jwt, other] } }), CONFLICT)
})

t.test('empty tokens are refused wherever they are', async t => {
  t.throws(() => extractToken({ query: { token: '' } }), CONFLICT)
  t.throws(() => extractToken({ query: { Authorization: '  ' } }), CONFLICT)
  t.throws(() => extractToken({ query: { token: [jwt, ''] } }), CONFLICT, 'an empty copy after a good one')
  t.throws(() => extractToken({ authorization: `Bearer ${jwt}`, query: { token: '' } }), CONFLICT)
})

t.test('every source at once: they must all carry the same token', async t => {
  const all = { authorization: `Bearer ${jwt}`, protocol: `gatecast, bearer.${jwt}`, query: { token: jwt, Authorization: jwt } }
  t.equal(extractToken(all), jwt)
  t.throws(() => extractToken({ ...all, authorization: `Bearer ${other}` }), CONFLICT, 'header differs')
  t.throws(() => extractToken({ ...all, protocol: `bearer.${other}` }), CONFLICT, 'subprotocol differs')
  t.throws(() => extractToken({ ...all, query: { token: other, Authorization: jwt } }), CONFLICT, '?token= differs')
  t.throws(() => extractToken({ ...all, query: { token: jwt, Authorization: `Bearer ${other}` } }), CONFLICT, '?Authorization= differs')
})
