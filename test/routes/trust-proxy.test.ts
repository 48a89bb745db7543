// TRUST_PROXY over real HTTP and WebSocket: whose X-Forwarded-For decides
// req.ip, which the per-IP login and upgrade limits and a socket's
// remoteAddress use. Every request here comes from 127.0.0.1, as through a
// local reverse proxy.
import t, { type Test } from 'tap'
import { api, type TestApp } from '../helpers/app.ts'
import { bearer, logLines, start, tryUpgrade } from '../helpers/ws-extra.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

const xff = (v: string): Record<string, string> => ({ 'x-forwarded-for': v })

async function login (a: TestApp, forwardedFor: string, username: string): Promise<number> {
  const res = await api(a.base, 'POST', '/auth/login', { body: { username, password: 'not-the-password' }, headers: xff(forwardedFor) })
  return res.status
}

async function upgrade (a: TestApp, forwardedFor: string): Promise<number> {
  const res = await tryUpgrade(`${a.ws}/ws/chat`, { headers: { ...bearer(a.token()).headers, ...xff(forwardedFor) } })
  return res.status
}

/** The remoteAddress of the sockets opened so far, from the `socket open` log lines. */
const openedFrom = (a: TestApp): string[] => logLines(a.logs, 'socket open').map(l => l.remoteAddress)

async function app (t: Test, config: ConfigOverrides = {}, env: NodeJS.ProcessEnv = {}): Promise<TestApp> {
  return start(t, { loginRate: 2, wsUpgradeRate: 2, ...config }, { env })
}

t.test('without TRUST_PROXY, X-Forwarded-For is ignored: every forwarded client shares the proxy\'s limits', async t => {
  const a = await app(t)
  t.not(await login(a, '203.0.113.1', 'u1'), 429)
  t.not(await login(a, '203.0.113.2', 'u2'), 429)
  t.equal(await login(a, '203.0.113.3', 'u3'), 429, 'the third login from 127.0.0.1 is limited whatever the header says')

  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.equal(await upgrade(a, '198.51.100.2'), 101)
  t.equal(await upgrade(a, '198.51.100.3'), 429, 'the third upgrade from 127.0.0.1 is limited')
  t.same(openedFrom(a), ['127.0.0.1', '127.0.0.1'], 'sockets carry the socket address')
})

t.test('TRUST_PROXY=127.0.0.1: each forwarded client has its own limits and address', async t => {
  const a = await app(t, {}, { TRUST_PROXY: '127.0.0.1' })
  t.same(a.app.config.trustProxy, ['127.0.0.1'])
  t.not(await login(a, '203.0.113.1', 'u1'), 429)
  t.not(await login(a, '203.0.113.1', 'u2'), 429)
  t.equal(await login(a, '203.0.113.1', 'u3'), 429, 'the third login of one client is limited')
  t.not(await login(a, '203.0.113.2', 'u4'), 429, 'another client behind the same proxy is not')

  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.equal(await upgrade(a, '198.51.100.1'), 429, 'the third upgrade of one client is limited')
  // a client may send its own X-Forwarded-For; the proxy appends the address it saw,
  // and only that last entry, added by a trusted hop, is believed
  t.equal(await upgrade(a, '198.51.100.1, 198.51.100.2'), 101, 'another client is not, whatever it forged in front')
  t.same(openedFrom(a), ['198.51.100.1', '198.51.100.1', '198.51.100.2'], 'sockets carry the client\'s address')
})

t.test('trustProxy: true (code option) believes the header from any peer', async t => {
  const a = await app(t, { trustProxy: true })
  t.not(await login(a, '203.0.113.1', 'u1'), 429)
  t.not(await login(a, '203.0.113.1', 'u2'), 429)
  t.equal(await login(a, '203.0.113.1', 'u3'), 429)
  t.not(await login(a, '203.0.113.2', 'u4'), 429)
  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.same(openedFrom(a), ['198.51.100.1'])
})

t.test('TRUST_PROXY=loopback (a named range) trusts a proxy on this host', async t => {
  const a = await app(t, {}, { TRUST_PROXY: 'uniquelocal,loopback' })
  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.same(openedFrom(a), ['198.51.100.1'])
})

t.test('a forwarded address from a proxy not in the trust list is ignored', async t => {
  const a = await app(t, {}, { TRUST_PROXY: '10.0.0.0/8, 192.0.2.1, ::1' })
  t.not(await login(a, '203.0.113.1', 'u1'), 429)
  t.not(await login(a, '203.0.113.2', 'u2'), 429)
  t.equal(await login(a, '203.0.113.3', 'u3'), 429, '127.0.0.1 is not a trusted proxy: one shared limit')

  t.equal(await upgrade(a, '198.51.100.1'), 101)
  t.equal(await upgrade(a, '198.51.100.2'), 101)
  t.equal(await upgrade(a, '198.51.100.3'), 429)
  t.same(openedFrom(a), ['127.0.0.1', '127.0.0.1'])
})
