// A socket's token after `ready` (contract §3): refresh, and expiry (4401
// after the grace). Liveness and shutdown are in liveness.test.ts.
import t from 'tap'
import WebSocket from 'ws'
import { connect } from '../../helpers/client.ts'
import {
  bearer, claims, closeAtEnd, closedWithin, logLines, nowSec, pingPong, signJwt, start
} from '../../helpers/ws-extra.ts'
import { waitFor } from '../../helpers/wait.ts'

t.test('refresh with a new token for the same user: refreshed with the new expiresAt, and the socket outlives the old exp', async t => {
  const a = await start(t, { wsExpiryGrace: 0 })
  const now = nowSec()
  const short = signJwt({ sub: 'alice', iat: now, exp: now + 1, jti: 'short' })
  const kept = await connect(`${a.ws}/ws/chat`, bearer(short))
  const lapsing = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ sub: 'alice', iat: now, exp: now + 1, jti: 'short2' })))
  closeAtEnd(t, kept, lapsing)
  t.equal((await kept.nextOfType('ready')).expiresAt, now + 1)

  const newExp = now + 3600
  kept.send({ type: 'refresh', token: signJwt({ sub: 'alice', iat: now, exp: newExp, jti: 'long' }) })
  const refreshed = await kept.nextOfType('refreshed')
  t.same(refreshed, { type: 'refreshed', expiresAt: newExp })

  // the unrefreshed twin expires; the refreshed one does not
  t.equal((await closedWithin(lapsing, 5000)).code, 4401, 'unrefreshed socket closed 4401')
  await pingPong(kept)
  t.equal(kept.ws.readyState, WebSocket.OPEN, 'refreshed socket still open after the old exp')

  // a second refresh works as well, through a different token source form (PHP user_id)
  kept.send({ type: 'refresh', token: signJwt({ user_id: 'alice', exp: newExp + 60 }) })
  t.equal((await kept.nextOfType('refreshed')).expiresAt, newExp + 60)
})

t.test('refresh with a token that is not acceptable: error frame, socket open, expiry unchanged', async t => {
  const a = await start(t, { wsExpiryGrace: 0 })
  const exp = nowSec() + 2
  const c = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ sub: 'alice', exp })))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  const cases: Array<[string, string]> = [
    ['another user', signJwt(claims('bob'))],
    ['garbage', 'not-a-token'],
    ['wrong secret', signJwt(claims('alice'), { key: 'some-other-secret-0123456789-0123456789' })],
    ['expired', signJwt({ sub: 'alice', exp: nowSec() - 60 })],
    ['alg none', signJwt(claims('alice'), { alg: 'none' })],
    ['HS512', signJwt(claims('alice'), { alg: 'HS512' })]
  ]
  for (const [label, token] of cases) {
    c.send({ type: 'refresh', token })
    const err = await c.nextOfType('error')
    t.match(err, { type: 'error', code: /^(forbidden|bad_request)$/, message: String }, `${label}: error frame`)
    t.equal(c.ws.readyState, WebSocket.OPEN, `${label}: socket open`)
    await pingPong(c)
  }
  t.equal(c.frames.filter(f => f.type === 'refreshed').length, 0, 'never refreshed')
  const other = cases[0][1]
  c.send({ type: 'refresh', token: other })
  t.equal((await c.nextOfType('error')).code, 'forbidden', "another user's token is forbidden")
  // none of them moved the expiry: the socket still goes at the original exp
  t.equal((await closedWithin(c, 5000)).code, 4401, 'closed 4401 at the original exp')
  t.ok(Date.now() >= exp * 1000, 'not before it')
})

t.test('refresh whose channels claim no longer covers the channel: that channel is left (`unsubscribed` forbidden), the socket stays', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/room:1`, bearer(signJwt(claims('alice', 600, { channels: ['room:*', 'lobby'] }))))
  closeAtEnd(t, c)
  await c.nextOfType('ready')
  c.send({ type: 'subscribe', channel: 'lobby', ref: 's' })
  t.match(await c.nextOfType('subscribed'), { channel: 'lobby', ref: 's', by: 'client' })
  c.send({ type: 'refresh', token: signJwt(claims('alice', 600, { channels: ['lobby'] })) })
  t.same(await c.nextOfType('unsubscribed'), { type: 'unsubscribed', channel: 'room:1', reason: 'forbidden' })
  await c.nextOfType('refreshed')
  await a.app.gatecast.publish('room:1', 'gone')
  await a.app.gatecast.publish('lobby', 'kept')
  t.match(await c.nextOfType('message'), { channel: 'lobby', data: 'kept' }, 'the allowed channel goes on; nothing of the withdrawn one')
  t.equal(c.ws.readyState, WebSocket.OPEN)
})

t.test('token expiry closes 4401 after the grace, not before', async t => {
  const grace = 1
  const a = await start(t, { wsExpiryGrace: grace })
  const exp = nowSec() + 1
  const c = await connect(`${a.ws}/ws/chat`, bearer(signJwt({ sub: 'alice', exp, jti: 'e1' })))
  const forever = await connect(`${a.ws}/ws/chat`, bearer(signJwt(claims('bob'))))
  closeAtEnd(t, c, forever)
  t.equal((await c.nextOfType('ready')).expiresAt, exp)
  const closed = await closedWithin(c, 6000)
  const at = Date.now()
  t.equal(closed.code, 4401, 'closed 4401')
  t.ok(at >= (exp + grace) * 1000, `not before exp + grace (${at - (exp + grace) * 1000} ms after)`)
  t.ok(at <= (exp + grace) * 1000 + 2500, 'and soon after it')
  await pingPong(forever)
  await waitFor(() => logLines(a.logs, 'socket closed').some(l => l.code === 4401 && l.userId === 'alice'), { ms: 2000, what: 'socket closed log with 4401' })
})

t.test('expiry with wsExpiryGrace: 0, token from the query string', async t => {
  const a = await start(t, { wsExpiryGrace: 0 })
  const exp = nowSec() + 1
  const c = await connect(`${a.ws}/ws/chat?token=${signJwt({ sub: 'alice', exp })}`)
  closeAtEnd(t, c)
  const closed = await closedWithin(c, 4000)
  t.equal(closed.code, 4401)
  t.ok(Date.now() >= exp * 1000, 'not before exp')
})
