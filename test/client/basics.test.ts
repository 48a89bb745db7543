// The client library in Node 20 with the `ws` package, against a real server.
import t from 'tap'
import WebSocket from 'ws'
import { startApp } from '../helpers/app.ts'
import { connect, PublishError, type TokenReason } from '../../client/index.ts'
import { record, trackConnections, wsOf } from '../helpers/client-lib.ts'
import { eventually, sleep } from '../helpers/wait.ts'

const config = { usersFile: null, channels: { ro: { publish: false }, room: { presence: true } } }

t.test('connects, publishes with an ack carrying the message id, and receives its own message', async t => {
  const { ws, token } = await startApp(t, { config })
  const reasons: TokenReason[] = []
  const client = connect({ url: ws, channel: 'chat', WebSocket, getToken: ({ reason }) => { reasons.push(reason); return token({ sub: 'alice' }) } })
  t.teardown(() => client.close())
  const rec = record(client)
  t.equal(client.state, 'connecting')
  const open = await rec.nextState('open')
  t.equal(open.from, 'connecting')
  t.equal(open.ready?.userId, 'alice')
  t.equal(open.recovered, undefined, 'no since, no recovered')
  t.equal(client.state, 'open')
  t.same(reasons, ['connect'])
  t.type(client.expiresAt, 'number')

  const id = await client.publish({ text: 'hi' })
  t.type(id, 'string')
  await sleep(50)
  t.equal(rec.messages.length, 1)
  t.equal(rec.messages[0].id, id)
  t.equal(rec.messages[0].from, 'alice')
  t.same(rec.messages[0].data, { text: 'hi' })
  t.equal(client.lastId, id)
})

t.test('the token goes by header by default with `ws`, and by subprotocol when asked', async t => {
  const { app, ws, token } = await startApp(t, { config })
  const conns = trackConnections(app)
  for (const tokenTransport of [undefined, 'protocol'] as const) {
    const client = connect({ url: ws, channel: 'chat', WebSocket, tokenTransport, getToken: () => token({ sub: 'bob' }) })
    const rec = record(client)
    await rec.nextState('open')
    const conn = conns.all.at(-1)
    t.equal(conn === undefined ? undefined : wsOf(conn).protocol, tokenTransport === 'protocol' ? 'gatecast' : '', `${tokenTransport ?? 'default'}: negotiated subprotocol`)
    client.close()
    t.equal(client.state, 'closed')
  }
})

t.test('an http(s) URL or a full /ws/<channel> URL works too; channel names are encoded', async t => {
  const { base, ws, token } = await startApp(t, { config })
  for (const [url, channel] of [[base, 'dm#alice,bob'], [`${ws}/ws/plain`, 'plain']]) {
    const client = connect({ url, channel, WebSocket, getToken: () => token({ sub: 'alice' }) })
    const rec = record(client)
    const open = await rec.nextState('open')
    t.equal(open.ready?.channel, channel)
    client.close()
  }
})

t.test('publish is rejected by an error frame with its ref; other error frames reach on("error")', async t => {
  const { ws, token } = await startApp(t, { config })
  const client = connect({ url: ws, channel: 'ro:news', WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => client.close())
  const rec = record(client)
  await rec.nextState('open')
  const err = await client.publish({ text: 'nope' }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof PublishError)
  t.equal((err as PublishError).code, 'forbidden')
  t.equal(client.state, 'open', 'the socket stays open')
  t.equal(rec.errors.length, 0, 'an error settled by a publish is not emitted again')
})

t.test('publish while connecting waits for ready; close() rejects what is still pending', async t => {
  const { ws, token } = await startApp(t, { config })
  const client = connect({ url: ws, channel: 'chat', WebSocket, getToken: async () => token({ sub: 'alice' }) })
  const early = client.publish('early')
  const id = await early
  t.type(id, 'string', 'sent once the socket was ready')
  client.close()
  const late = await client.publish('late').then(() => null, (e: unknown) => e)
  t.equal((late as PublishError).code, 'closed')
})

t.test('presence and direct frames reach their listeners; unsubscribe works', async t => {
  const { app, ws, token } = await startApp(t, { config })
  const a = connect({ url: ws, channel: 'room:x', WebSocket, getToken: () => token({ sub: 'alice' }) })
  t.teardown(() => a.close())
  const presence: string[] = []
  const direct: unknown[] = []
  a.on('presence', p => presence.push(`${p.event}:${p.userId}`))
  const off = a.on('direct', d => direct.push(d.data))
  await record(a).nextState('open')
  const b = connect({ url: ws, channel: 'room:x', WebSocket, getToken: () => token({ sub: 'bob' }) })
  await record(b).nextState('open')
  await app.gatecast.sendToUser('alice', { hello: 1 })
  await eventually(() => presence.length >= 2 && direct.length >= 1, { ms: 3000 })
  t.ok(presence.includes('join:bob'), `presence seen: ${presence.join(', ')}`)
  t.same(direct, [{ hello: 1 }])
  off()
  b.close()
  await app.gatecast.sendToUser('alice', { hello: 2 })
  await eventually(() => presence.includes('leave:bob'), { ms: 3000 })
  t.ok(presence.includes('leave:bob'))
  t.same(direct, [{ hello: 1 }], 'no delivery after unsubscribe')
})

t.test('since: a client started with an id too old for the history reports recovered: false', async t => {
  const { app, ws, token } = await startApp(t, { config: { ...config, historySize: 2 } })
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await app.gatecast.publish('chat', i)).id)
  const fresh = connect({ url: ws, channel: 'chat', WebSocket, since: ids[3], getToken: () => token({ sub: 'alice' }) })
  const rf = record(fresh)
  const ok = await rf.nextState('open')
  t.equal(ok.recovered, true)
  await sleep(50)
  t.same(rf.messages.map(m => m.data), [4], 'what came after the given id')
  fresh.close()

  const old = connect({ url: ws, channel: 'chat', WebSocket, since: ids[0], getToken: () => token({ sub: 'alice' }) })
  const ro = record(old)
  const lost = await ro.nextState('open')
  t.equal(lost.recovered, false, 'history no longer reaches back that far')
  await sleep(50)
  t.same(ro.messages, [], 'recovery is never partial')
  old.close()
})
