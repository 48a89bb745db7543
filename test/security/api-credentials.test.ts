// The server API's credentials (X-API-Key, admin Bearer tokens) against
// guessing: production refuses a short API_KEY at start, and failed
// credentials on /api and /metrics are counted per client IP, cluster-wide, so
// an IP that failed too often is refused with 429 before its credentials are
// looked at, the right key included. Both engines, over real HTTP; the clients
// stand behind a trusted local proxy (TRUST_PROXY=127.0.0.1, X-Forwarded-For)
// so each test IP is its own client.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { api, SECRET, type TestApp } from '../helpers/app.ts'
import { logLines, start } from '../helpers/ws-extra.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { build } from '../../server.ts'
import { ConfigError, type ConfigOverrides } from '../../src/config/config.ts'

const KEY = 'gk_test_0123456789abcdef0123456789abcdef'
// the bound in plugins/authenticate.ts: failures an IP may have in a window
const FAILURES = 30
const ATTEMPTS = 40

const engines: Array<[string, (t: Test) => ConfigOverrides]> = [
  ['memory', () => ({})],
  ['redis', t => ({ redisUrl: REDIS_URL, redisPrefix: redisPrefix(t) })]
]

async function app (t: Test, config: ConfigOverrides = {}): Promise<TestApp> {
  return start(t, { apiKey: KEY, ...config }, { env: { TRUST_PROXY: '127.0.0.1' } })
}

const from = (ip: string, headers: Record<string, string> = {}): Record<string, string> => ({ 'x-forwarded-for': ip, ...headers })

function limited (t: Test, res: { status: number, body: any, headers: Headers }, label: string): void {
  t.equal(res.status, 429, `${label}: 429`)
  t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'rate_limited', message: String }, `${label}: the error shape`)
  const after = Number(res.headers.get('retry-after'))
  t.ok(Number.isInteger(after) && after >= 1 && after <= 60, `${label}: Retry-After in seconds within the window (${String(res.headers.get('retry-after'))})`)
}

for (const [name, engine] of engines) {
  t.test(`${name}: ${ATTEMPTS} wrong API keys from one IP: 401 up to the bound, then 429, the right key included; other IPs unaffected`, async t => {
    const a = await app(t, engine(t))
    const statuses: number[] = []
    for (let i = 0; i < ATTEMPTS; i++) {
      const res = await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.7', { 'x-api-key': `wrong-${i}` }) })
      statuses.push(res.status)
      if (i < FAILURES) t.match(res.body, { code: 'invalid_api_key' }, `attempt ${i + 1}: invalid_api_key`)
      else limited(t, res, `attempt ${i + 1}`)
    }
    t.same(statuses, [...Array(FAILURES).fill(401), ...Array(ATTEMPTS - FAILURES).fill(429)], 'first the bound of 401s, then only 429s')

    limited(t, await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.7', { 'x-api-key': KEY }) }), 'the right key from the locked IP')
    limited(t, await api(a.base, 'GET', '/metrics', { headers: from('203.0.113.7', { 'x-api-key': KEY }) }), '/metrics from the locked IP')
    limited(t, await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.7', { authorization: `Bearer ${a.token({ sub: 'ops', roles: ['admin'] })}` }) }), 'an admin token from the locked IP')

    const other = await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.8', { 'x-api-key': KEY }) })
    t.equal(other.status, 200, 'the right key from another IP')
    t.equal((await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.8', { 'x-api-key': 'wrong' }) })).status, 401, 'another IP still gets 401 for a wrong key')
    for (let i = 0; i < 50; i++) {
      const ok = await api(a.base, 'GET', '/api/channels', { headers: from('203.0.113.9', { 'x-api-key': KEY }) })
      if (ok.status !== 200) { t.fail(`success ${i + 1} from a clean IP answered ${ok.status}`); break }
    }
    t.pass('successes are never counted: 50 right keys in a row from one IP all pass')
  })

  t.test(`${name}: every kind of failed credential counts, on /api and /metrics alike`, async t => {
    const a = await app(t, engine(t))
    const plain = a.token({ sub: 'alice' })
    const forged = a.token({ sub: 'ops', roles: ['admin'] }, { key: 'another-secret-another-secret-another-secret' })
    const kinds: Array<[string, Record<string, string>, number]> = [
      ['no credentials', {}, 401],
      ['a wrong key', { 'x-api-key': 'wrong' }, 401],
      ['a token signed by someone else', { authorization: `Bearer ${forged}` }, 401],
      ['a malformed token', { authorization: 'Bearer not.a.jwt' }, 401],
      ['a non-admin token', { authorization: `Bearer ${plain}` }, 403]
    ]
    for (let i = 0; i < FAILURES; i++) {
      const [label, headers, status] = kinds[i % kinds.length]
      const path = i % 2 === 0 ? '/api/channels' : '/metrics'
      t.equal((await api(a.base, 'GET', path, { headers: from('198.51.100.20', headers) })).status, status, `${i + 1}: ${label} on ${path}`)
    }
    for (const [label, headers] of kinds) {
      limited(t, await api(a.base, 'GET', '/metrics', { headers: from('198.51.100.20', headers) }), `past the bound, ${label} on /metrics`)
    }
    limited(t, await api(a.base, 'POST', '/api/broadcast', { body: { data: 1 }, headers: from('198.51.100.20', { 'x-api-key': KEY }) }), 'the right key on /api')
    t.equal((await api(a.base, 'GET', '/metrics', { headers: from('198.51.100.21', { 'x-api-key': KEY }) })).status, 200, '/metrics for another IP')
  })

  t.test(`${name}: below the bound the right key works, and a success does not clear the count`, async t => {
    const a = await app(t, engine(t))
    for (let i = 0; i < FAILURES - 1; i++) {
      t.equal((await api(a.base, 'GET', '/api/channels', { headers: from('192.0.2.5', { 'x-api-key': 'wrong' }) })).status, 401)
    }
    t.equal((await api(a.base, 'GET', '/api/channels', { headers: from('192.0.2.5', { 'x-api-key': KEY }) })).status, 200, 'one failure short of the bound: the right key passes')
    t.equal((await api(a.base, 'GET', '/api/channels', { headers: from('192.0.2.5', { 'x-api-key': 'wrong' }) })).status, 401, 'the failure that reaches the bound is still answered')
    limited(t, await api(a.base, 'GET', '/api/channels', { headers: from('192.0.2.5', { 'x-api-key': KEY }) }), 'at the bound')
  })
}

t.test('redis: the count is cluster-wide: failures on one node lock the IP out of the other', async t => {
  const prefix = redisPrefix(t)
  const one = await app(t, { redisUrl: REDIS_URL, redisPrefix: prefix })
  const two = await app(t, { redisUrl: REDIS_URL, redisPrefix: prefix })
  for (let i = 0; i < FAILURES; i++) {
    const node = i % 2 === 0 ? one : two
    t.equal((await api(node.base, 'GET', '/api/channels', { headers: from('203.0.113.50', { 'x-api-key': 'wrong' }) })).status, 401)
  }
  limited(t, await api(one.base, 'GET', '/api/channels', { headers: from('203.0.113.50', { 'x-api-key': KEY }) }), 'node one')
  limited(t, await api(two.base, 'GET', '/metrics', { headers: from('203.0.113.50', { 'x-api-key': KEY }) }), 'node two')
  t.equal((await api(two.base, 'GET', '/api/channels', { headers: from('203.0.113.51', { 'x-api-key': KEY }) })).status, 200, 'another IP on node two')
})

t.test('API_KEY length: production refuses fewer than 32 bytes at start; development warns', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-api-key-'))
  const production = (apiKey: string) => build({ cwd: dir, env: { NODE_ENV: 'production', JWT_SECRET: SECRET, API_KEY: apiKey }, config: { usersFile: null, port: 0 }, logger: false })
  // the error a start fails with; null (and the app closed) when it started
  const startError = async (apiKey: string): Promise<Error | null> => {
    try {
      await (await production(apiKey)).close()
      return null
    } catch (err) {
      return err as Error
    }
  }
  const short = 'k'.repeat(31)
  const err = await startError(short)
  t.type(err, ConfigError, 'a 31-byte API_KEY: ConfigError')
  t.match(err?.message, /^API_KEY is 31 bytes; production needs at least 32/, 'says how long it is and must be')
  t.match(err?.message, /openssl rand/, 'says how to make one')
  t.notOk(err?.message.includes(short), 'does not echo the key')
  t.notMatch(err?.message, /\n/, 'one line')
  t.type(await startError('k'), ConfigError, 'a 1-byte API_KEY')
  t.match((await startError('é'.repeat(15)))?.message, /API_KEY is 30 bytes/, 'counted in UTF-8 bytes')

  const fine = await production('k'.repeat(32))
  await fine.close()
  t.pass('32 bytes start')

  const dev = await start(t, { apiKey: 'dev-key' })
  const warnings = logLines(dev.logs, 'API_KEY is only 7 bytes; production requires at least 32')
  t.equal(warnings.length, 1, 'development starts with a short key and warns once')
  t.equal(warnings[0]?.level, 40, 'at warn level')
  t.notOk(dev.logs.join('').includes('dev-key'), 'the key is not logged')
  t.equal((await api(dev.base, 'GET', '/api/channels', { headers: { 'x-api-key': 'dev-key' } })).status, 200, 'and the short key works')
})
