// WS_UPGRADE_RATE counts every upgrade attempt from an IP, refused ones
// included, and is checked before admission does any work: token probing from
// one address is limited like any other upgrade. A refusal is still a plain
// HTTP answer in the error shape and never a socket. Real sockets, real JWTs.
import t, { type Test } from 'tap'
import { api, type TestApp } from '../helpers/app.ts'
import { rawRequest, upgradeHeaders, upgradeRequest } from '../helpers/adversary.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { connect } from '../helpers/client.ts'
import { bearer, claims, closeAtEnd, expectRefused, signJwt, start, tryUpgrade, type UpgradeOutcome } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

const RATE = 3
const ATTEMPTS = 10

/** signed with another key: refused 401 token_invalid by admission */
const badToken = (): string => signJwt(claims('mallory'), { key: 'not-the-server-secret-0123456789-0123456789' })

const refusals = (a: TestApp, key: string): number => a.app.metrics.stats.refusals.get(key) ?? 0

function limited (t: Test, res: UpgradeOutcome, label: string): void {
  t.equal(res.opened, false, `${label}: no socket`)
  t.equal(res.status, 429, `${label}: 429`)
  t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'rate_limited', message: String }, `${label}: the error shape`)
  t.match(res.headers['retry-after'], /^\d+$/, `${label}: Retry-After`)
}

t.test('sequential: bad tokens get 401 up to the limit, then 429; then even a valid token is limited', async t => {
  const a = await start(t, { wsUpgradeRate: RATE })
  const url = `${a.ws}/ws/chat`
  for (let i = 0; i < ATTEMPTS; i++) {
    if (i < RATE) {
      const res = await expectRefused(t, a, url, bearer(badToken()), 401, 'token_invalid', `attempt ${i}`)
      t.equal(res.headers['x-ratelimit-remaining'], undefined, `attempt ${i}: no rate-limit headers below the limit`)
    } else {
      limited(t, await expectRefused(t, a, url, bearer(badToken()), 429, 'rate_limited', `attempt ${i}`), `attempt ${i}`)
    }
  }
  limited(t, await expectRefused(t, a, url, bearer(a.token({ sub: 'alice' })), 429, 'rate_limited', 'valid token'), 'valid token')
  limited(t, await expectRefused(t, a, `${a.ws}/ws/other`, {}, 429, 'rate_limited', 'no token, other channel'), 'no token')
  t.equal(a.app.gatecast.hub.size, 0, 'no socket on the server')
  t.equal(refusals(a, '401 token_invalid'), RATE, 'metrics: the refusals admission made')
  t.equal(refusals(a, '429 rate_limited'), ATTEMPTS - RATE + 2, 'metrics: the rate-limited upgrades')
  // a plain GET is no upgrade attempt: still 426, and not counted
  const plain = await api(a.base, 'GET', '/ws/chat')
  t.equal(plain.status, 426)
  t.equal(plain.body.code, 'upgrade_required')
})

async function concurrentProbe (t: Test, config: ConfigOverrides): Promise<void> {
  const a = await start(t, { wsUpgradeRate: RATE, ...config })
  const url = `${a.ws}/ws/chat`
  const results = await Promise.all(Array.from({ length: ATTEMPTS }, () => tryUpgrade(url, bearer(badToken()))))
  const statuses = results.map(r => r.status)
  t.equal(statuses.filter(s => s === 401).length, RATE, `${RATE} reach admission: ${statuses.join(' ')}`)
  t.equal(statuses.filter(s => s === 429).length, ATTEMPTS - RATE, 'the rest are limited')
  results.forEach((r, i) => {
    t.equal(r.opened, false, `attempt ${i}: no socket`)
    if (r.status === 401) t.match(r.body, { statusCode: 401, code: 'token_invalid' })
    else limited(t, r, `attempt ${i}`)
  })
  limited(t, await expectRefused(t, a, url, bearer(a.token({ sub: 'alice' })), 429, 'rate_limited', 'valid token afterwards'), 'valid token afterwards')
  t.equal(a.app.gatecast.hub.size, 0, 'no socket on the server')
}

t.test('concurrent: 10 probes at once, 3 reach admission, 7 are limited (memory)', async t => {
  await concurrentProbe(t, {})
})

t.test('concurrent: 10 probes at once, 3 reach admission, 7 are limited (Redis, cluster-wide counter)', async t => {
  await concurrentProbe(t, { redisUrl: REDIS_URL, redisPrefix: redisPrefix(t) })
})

t.test('accepted and refused upgrades share one count; a 101 carries no rate-limit headers', async t => {
  const a = await start(t, { wsUpgradeRate: RATE })
  const token = a.token({ sub: 'alice' })
  // a 101 seen raw, to read its headers
  const ok = await rawRequest(a.base, upgradeRequest('/ws/chat', upgradeHeaders(token)), 500)
  t.equal(ok.status, 101, 'first: accepted')
  t.notMatch(ok.text.split('\r\n\r\n')[0], /x-ratelimit|retry-after/i, 'no rate-limit headers on the 101')
  // that socket is gone (rawRequest hung up): expectRefused below counts the hub's sockets
  await waitFor(() => a.app.gatecast.hub.size === 0, { what: 'the raw socket closed on the server' })
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(badToken()), 401, 'token_invalid', 'second: refused by admission')
  const third = await connect(`${a.ws}/ws/chat`, bearer(token))
  closeAtEnd(t, third)
  t.equal((await third.nextOfType('ready')).userId, 'alice', 'third: accepted')
  // the limit comes before admission: a bad token now gets 429, not 401
  limited(t, await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(badToken()), 429, 'rate_limited', 'fourth, bad token'), 'fourth, bad token')
  limited(t, await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(token), 429, 'rate_limited', 'fifth, valid token'), 'fifth, valid token')
})

t.test('plain GETs are not upgrade attempts: 426, uncounted', async t => {
  const a = await start(t, { wsUpgradeRate: RATE })
  for (let i = 0; i < ATTEMPTS; i++) {
    const res = await api(a.base, 'GET', '/ws/chat')
    t.equal(res.status, 426, `GET ${i}: 426`)
    t.equal(res.body.code, 'upgrade_required')
  }
  const token = a.token({ sub: 'alice' })
  for (let i = 0; i < RATE; i++) t.equal((await tryUpgrade(`${a.ws}/ws/chat`, bearer(token))).opened, true, `upgrade ${i}: the whole budget is left`)
})

t.test('the three upgrade URLs share one budget: /ws/:channel, /ws and / (the GatewayWorker form) count together', async t => {
  const a = await start(t, { wsUpgradeRate: RATE })
  await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(badToken()), 401, 'token_invalid', '/ws/chat')
  await expectRefused(t, a, `${a.ws}/ws`, bearer(badToken()), 401, 'token_invalid', '/ws')
  await expectRefused(t, a, `${a.ws}/?Authorization=${badToken()}`, {}, 401, 'token_invalid', '/')
  for (const url of [`${a.ws}/ws/other`, `${a.ws}/ws`, `${a.ws}/`]) {
    limited(t, await expectRefused(t, a, url, bearer(a.token({ sub: 'alice' })), 429, 'rate_limited', url), url)
  }
})
