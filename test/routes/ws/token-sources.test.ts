// Every place an upgrade can carry its access token (contract §3), and what
// happens when they disagree.
import t from 'tap'
import { connect } from '../../helpers/client.ts'
import { bearer, closeAtEnd, expectRefused, pingPong, start } from '../../helpers/ws-extra.ts'

t.test('Authorization: Bearer header', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice' })))
  closeAtEnd(t, c)
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'alice')
  t.equal(ready.channel, 'chat')
  t.equal(c.ws.protocol, '', 'no subprotocol when none was offered')
  await pingPong(c)
})

t.test('Authorization header scheme is case-insensitive ("bearer")', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, { headers: { authorization: `bearer ${a.token({ sub: 'bob' })}` } })
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'bob')
})

t.test('Authorization header that is not Bearer is refused with 401', async t => {
  const a = await start(t)
  await expectRefused(t, a, `${a.ws}/ws/chat`, { headers: { authorization: 'Basic YWxpY2U6cHc=' } }, 401, 'token_invalid')
})

t.test('Sec-WebSocket-Protocol offer "gatecast, bearer.<jwt>": answered with "gatecast"', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat`, { protocols: ['gatecast', `bearer.${a.token({ sub: 'carol' })}`] })
  closeAtEnd(t, c)
  t.equal(c.ws.protocol, 'gatecast', 'server selected the gatecast subprotocol')
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'carol')
  await pingPong(c)
})

t.test('subprotocol offer with a bad token is refused with 401', async t => {
  const a = await start(t)
  await expectRefused(t, a, `${a.ws}/ws/chat`, { protocols: ['gatecast', 'bearer.not.a.jwt'] }, 401, 'token_invalid')
})

t.test('subprotocol offer without a bearer entry is 401 token_missing', async t => {
  const a = await start(t)
  await expectRefused(t, a, `${a.ws}/ws/chat`, { protocols: ['gatecast'] }, 401, 'token_missing')
})

t.test('query ?token=', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat?token=${a.token({ sub: 'dave' })}`)
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'dave')
  await pingPong(c)
})

t.test('query ?Authorization=Bearer%20<jwt> (GatewayWorker form)', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat?Authorization=Bearer%20${a.token({ sub: 'erin' })}`)
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'erin')
  await pingPong(c)
})

t.test('query ?Authorization=<bare jwt>', async t => {
  const a = await start(t)
  const c = await connect(`${a.ws}/ws/chat?Authorization=${a.token({ sub: 'frank' })}`)
  closeAtEnd(t, c)
  t.equal((await c.nextOfType('ready')).userId, 'frank')
  await pingPong(c)
})

t.test('the same token in several places is accepted', async t => {
  const a = await start(t)
  const tok = a.token({ sub: 'gina' })
  const c = await connect(`${a.ws}/ws/chat?token=${tok}&Authorization=Bearer%20${tok}`, {
    ...bearer(tok),
    protocols: ['gatecast', `bearer.${tok}`]
  })
  closeAtEnd(t, c)
  t.equal(c.ws.protocol, 'gatecast')
  t.equal((await c.nextOfType('ready')).userId, 'gina')
})

t.test('two sources that disagree: 401, whichever pair', async t => {
  const a = await start(t)
  const alice = a.token({ sub: 'alice' })
  const bob = a.token({ sub: 'bob' })
  const alice2 = a.token({ sub: 'alice' }) // same user, different token: still a disagreement
  const url = `${a.ws}/ws/chat`
  await expectRefused(t, a, `${url}?token=${bob}`, bearer(alice), 401, 'token_invalid', 'header vs ?token')
  await expectRefused(t, a, url, { ...bearer(alice), protocols: ['gatecast', `bearer.${bob}`] }, 401, 'token_invalid', 'header vs subprotocol')
  await expectRefused(t, a, `${url}?token=${alice}`, { protocols: ['gatecast', `bearer.${bob}`] }, 401, 'token_invalid', 'subprotocol vs ?token')
  await expectRefused(t, a, `${url}?token=${alice}&Authorization=Bearer%20${bob}`, {}, 401, 'token_invalid', '?token vs ?Authorization')
  await expectRefused(t, a, `${url}?Authorization=${alice2}`, bearer(alice), 401, 'token_invalid', 'header vs ?Authorization (same user)')
  // a repeated parameter is two sources, not a pick: the server must not choose one copy
  await expectRefused(t, a, `${url}?token=${alice}&token=${bob}`, {}, 401, 'token_invalid', '?token twice, different tokens')
  await expectRefused(t, a, `${url}?Authorization=${alice}&Authorization=${alice2}`, {}, 401, 'token_invalid', '?Authorization twice')
  await expectRefused(t, a, `${url}?token=${bob}&token=${bob}`, bearer(alice), 401, 'token_invalid', 'header vs ?token twice')
  // identical copies are one token, wherever they come from
  const same = await connect(`${url}?token=${alice}&token=${alice}`, bearer(alice))
  t.equal((await same.nextOfType('ready')).userId, 'alice', 'header and ?token twice, all the same token: admitted')
  same.ws.terminate()
})

t.test('an empty ?token= is refused with 401', async t => {
  const a = await start(t)
  const res = await expectRefused(t, a, `${a.ws}/ws/chat?token=`, {}, 401)
  t.ok(['token_invalid', 'token_missing'].includes(res.body.code), `code ${res.body.code}`)
})
