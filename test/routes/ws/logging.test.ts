// Access tokens never reach the logs (contract §3: the query forms exist for
// clients that cannot set headers, but what is logged is the path only).
import t from 'tap'
import { api } from '../../helpers/app.ts'
import { connect } from '../../helpers/client.ts'
import {
  bearer, claims, closeAtEnd, closedWithin, countLogs, logLines, nowSec, pingPong, signJwt, start, tryUpgrade
} from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'

t.test('no access token appears in the logs after upgrades with tokens in the query and headers', async t => {
  const a = await start(t, { wsExpiryGrace: 0 }, {
    verifyCredentials: (u, p) => u === 'lena' && p === 'lena-password' ? { id: 'lena' } : null
  })
  const used: string[] = []
  const tok = (sub: string, extra: Record<string, unknown> = {}): string => {
    const s = signJwt(claims(sub, 600, extra))
    used.push(s)
    return s
  }

  // accepted, every source
  const c1 = await connect(`${a.ws}/ws/chat`, bearer(tok('h1')))
  const c2 = await connect(`${a.ws}/ws/chat`, { protocols: ['gatecast', `bearer.${tok('p1')}`] })
  const c3 = await connect(`${a.ws}/ws/chat?token=${tok('q1')}`)
  const c4 = await connect(`${a.ws}/ws/chat?Authorization=Bearer%20${tok('q2')}`)
  const c5 = await connect(`${a.ws}/ws/chat?Authorization=${tok('q3')}`)
  const c6 = await connect(`${a.ws}/ws/chat?foo=1&token=${tok('q4')}`)
  closeAtEnd(t, c1, c2, c3, c4, c5, c6)

  // refused, with the token in the query or a header
  const expired = signJwt({ sub: 'x', exp: nowSec() - 3600 })
  const wrongKey = signJwt(claims('y'), { key: 'not-the-secret-not-the-secret-0123456789' })
  const none = signJwt(claims('z'), { alg: 'none' })
  used.push(expired, wrongKey, none)
  for (const bad of [expired, wrongKey, none]) {
    t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${bad}`)).status, 401)
    t.equal((await tryUpgrade(`${a.ws}/ws/chat?Authorization=Bearer%20${bad}`)).status, 401)
    t.equal((await tryUpgrade(`${a.ws}/ws/chat`, bearer(bad))).status, 401)
  }
  // refused for other reasons while carrying a good token
  t.equal((await tryUpgrade(`${a.ws}/ws/bad%20name?token=${tok('r1')}`)).status, 400)
  t.equal((await tryUpgrade(`${a.ws}/ws/dm%23a,b?token=${tok('r2')}`)).status, 403)
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${tok('r3')}&since=nope`)).status, 400)
  // plain HTTP GET with a token in the query
  t.equal((await api(a.base, 'GET', `/ws/chat?token=${tok('g1')}`)).status, 426)

  // frames carrying tokens
  c1.send({ type: 'refresh', token: tok('h1') })
  await c1.nextOfType('refreshed')
  c1.send({ type: 'refresh', token: tok('someone-else') })
  await c1.nextOfType('error')
  c1.send({ type: 'refresh', token: expired })
  await c1.nextOfType('error')

  // login / logout and a revoked token on an upgrade
  const login = await api(a.base, 'POST', '/auth/login', { body: { username: 'lena', password: 'lena-password' } })
  t.equal(login.status, 200)
  used.push(login.body.access_token, login.body.refresh_token)
  const c7 = await connect(`${a.ws}/ws/chat?token=${login.body.access_token}`)
  closeAtEnd(t, c7)
  t.equal((await api(a.base, 'POST', '/auth/logout', { body: { refresh_token: login.body.refresh_token }, headers: { authorization: `Bearer ${login.body.access_token}` } })).status, 204)
  t.equal((await closedWithin(c7, 3000)).code, 4401)
  t.equal((await tryUpgrade(`${a.ws}/ws/chat?token=${login.body.access_token}`)).status, 401)

  // and a socket closed by expiry
  const shortTok = signJwt({ sub: 'brief', exp: nowSec() + 1 })
  used.push(shortTok)
  const c8 = await connect(`${a.ws}/ws/chat?token=${shortTok}`)
  t.equal((await closedWithin(c8, 4000)).code, 4401)

  for (const c of [c1, c2, c3, c4, c5, c6]) await pingPong(c)
  for (const c of [c1, c2, c3]) c.close()
  await waitFor(() => countLogs(a.logs, 'socket closed') >= 5, { ms: 3000, what: 'close logs' })

  // the scenario was logged (so the check below is not vacuous)
  t.ok(logLines(a.logs, 'socket open').length >= 8, 'socket open lines present')
  t.ok(a.logs.join('').includes('/ws/chat'), 'request paths are logged')

  const all = a.logs.join('')
  let leaks = 0
  for (const token of used) {
    const [, payload, sig] = token.split('.')
    if (all.includes(token)) { t.fail(`full token in the logs: ${token.slice(0, 24)}…`); leaks++; continue }
    if (payload !== undefined && payload.length > 20 && all.includes(payload)) { t.fail(`token payload in the logs: ${payload.slice(0, 24)}…`); leaks++; continue }
    if (sig !== undefined && sig.length > 20 && all.includes(sig)) { t.fail(`token signature in the logs: ${sig.slice(0, 24)}…`); leaks++ }
  }
  t.equal(leaks, 0, `none of ${used.length} tokens (or their parts) appear in ${a.logs.length} log lines`)
})
