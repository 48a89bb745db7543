// In-band token refresh: with 3-second tokens and no expiry grace, the client
// refreshes before `expiresAt` and keeps its one socket open well past the
// first token's expiry, while a socket that does not refresh is closed 4401.
import t from 'tap'
import WebSocket from 'ws'
import { startApp } from '../helpers/app.ts'
import { connect, type TokenReason } from '../../client/index.ts'
import { record, trackConnections } from '../helpers/client-lib.ts'
import { sleep } from '../helpers/wait.ts'

t.test('refresh before expiry keeps one socket open', async t => {
  const { app, ws, token } = await startApp(t, { config: { usersFile: null, wsExpiryGrace: 0 } })
  const conns = trackConnections(app)
  const reasons: TokenReason[] = []
  const client = connect({
    url: ws,
    channel: 'chat',
    WebSocket,
    getToken: ({ reason }) => { reasons.push(reason); return token({ sub: 'alice' }, { expiresIn: 3 }) }
  })
  t.teardown(() => client.close())
  const rec = record(client)
  const open = await rec.nextState('open')
  const firstExp = open.ready?.expiresAt as number
  t.ok(firstExp * 1000 - Date.now() <= 3000, 'a short-lived token')

  // control: a socket with the same kind of token that never refreshes
  const plain = new WebSocket(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token({ sub: 'bob' }, { expiresIn: 3 })}` } })
  const plainClosed = new Promise<number>(resolve => plain.on('close', code => resolve(code)))
  plain.on('error', () => {})

  await sleep(8000)
  t.equal(await plainClosed, 4401, 'without refresh the server closes 4401')
  t.equal(client.state, 'open', 'still open')
  t.same(rec.states.map(s => s.state), ['open'], 'no reconnect happened')
  t.ok(rec.refreshed.length >= 2, `refreshed ${rec.refreshed.length} times`)
  t.ok((client.expiresAt as number) > firstExp + 3, 'expiresAt moved on')
  t.ok(reasons.filter(r => r === 'refresh').length >= 2, 'tokens came from getToken({ reason: "refresh" })')
  t.equal(conns.all.filter(c => c.userId === 'alice').length, 1, 'one socket on the server, ever')
  t.equal(client.ready?.connectionId, open.ready?.connectionId)
  t.same(rec.errors, [])

  // and it still works
  const id = await client.publish('still here')
  t.type(id, 'string')
})

t.test('a refused refresh is reported and retried; the socket stays until the server closes it', async t => {
  const { ws, token } = await startApp(t, { config: { usersFile: null } })
  let n = 0
  const client = connect({
    url: ws,
    channel: 'chat',
    WebSocket,
    getToken: ({ reason }) => {
      n++
      // a token for another user is refused in-band
      return reason === 'refresh' ? token({ sub: 'mallory' }, { expiresIn: 3 }) : token({ sub: 'alice' }, { expiresIn: 3 })
    }
  })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  await sleep(2500)
  t.ok(rec.errors.some(e => e.type === 'error' && e.code === 'forbidden'), 'the refusal reached on("error")')
  t.equal(client.state, 'open', 'the grace keeps the socket open')
  t.ok(n >= 2)
})
