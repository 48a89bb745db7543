import t from 'tap'
import { startApp } from '../../helpers/app.ts'
import { connect, refused } from '../../helpers/client.ts'

t.test('publish reaches every socket on the channel, sender included, with an ack', async t => {
  const { ws, token } = await startApp(t)
  const a = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token({ sub: 'alice' })}` } })
  const b = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token({ sub: 'bob' })}` } })
  t.teardown(() => { a.close(); b.close() })
  const ready = await a.nextOfType('ready')
  t.equal(ready.channel, 'chat')
  t.equal(ready.userId, 'alice')
  a.send({ type: 'publish', data: { text: 'hi' }, ref: 1 })
  const ma = await a.nextOfType('message')
  const ack = await a.nextOfType('ack')
  const mb = await b.nextOfType('message')
  t.same(mb, ma)
  t.equal(ma.from, 'alice')
  t.same(ma.data, { text: 'hi' })
  t.equal(ack.ref, 1)
  t.equal(ack.id, ma.id)
})

t.test('no token: 401 before any socket', async t => {
  const { ws } = await startApp(t)
  const res = await refused(`${ws}/ws/chat`)
  t.equal(res.status, 401)
  t.equal(res.body.code, 'token_missing')
})
