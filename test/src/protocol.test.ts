import t from 'tap'
import { MAX_DATA_DEPTH, parseClientFrame, readyFrameText, withinDepth } from '../../src/protocol/frames.ts'
import { startApp, api } from '../helpers/app.ts'
import { connect } from '../helpers/client.ts'

const nest = (n: number): unknown => { let v: unknown = 1; for (let i = 0; i < n; i++) v = i % 2 === 0 ? [v] : { k: v }; return v }

t.test('withinDepth', async t => {
  t.ok(withinDepth(1))
  t.ok(withinDepth(nest(MAX_DATA_DEPTH)))
  t.notOk(withinDepth(nest(MAX_DATA_DEPTH + 1)))
  t.notOk(withinDepth(nest(100_000)), 'no stack overflow on absurd depth')
})

t.test('readyFrameText is the JSON of the ready frame, with or without recovered', async t => {
  for (const userId of ['alice', 'a"b\\c', 'line\u2028sep', '42']) {
    for (const expiresAt of [null, 1_900_000_000]) {
      for (const recovered of [undefined, true, false]) {
        const text = readyFrameText('room:1#a,b', 'c0ffee', userId, expiresAt, recovered)
        const expected = { type: 'ready', channel: 'room:1#a,b', connectionId: 'c0ffee', userId, expiresAt, ...(recovered === undefined ? {} : { recovered }) }
        t.same(JSON.parse(text), expected)
        t.equal(text, JSON.stringify(expected), 'same bytes as JSON.stringify')
      }
    }
  }
})

t.test('parseClientFrame reports the field that is wrong', async t => {
  t.same(parseClientFrame('{"type":"publish"}'), { ok: false, message: 'invalid publish frame at /data: Expected required property', ref: undefined })
  t.same(parseClientFrame('{"type":"publish","data":1,"ref":7}'), { ok: true, frame: { type: 'publish', data: 1, ref: 7 } })
})

t.test('too deep data: error frame over the socket, 400 over the API', async t => {
  const { base, ws, token } = await startApp(t, { config: { apiKey: 'k' } })
  const c = await connect(`${ws}/ws/chat`, { headers: { authorization: `Bearer ${token()}` } })
  t.teardown(() => c.close())
  c.send({ type: 'publish', data: nest(MAX_DATA_DEPTH + 1), ref: 'deep' })
  const err = await c.nextOfType('error')
  t.equal(err.code, 'bad_request')
  t.equal(err.ref, 'deep')
  // 5000 levels still fits in one 64 KiB frame: refused, not a crash
  c.send(`{"type":"publish","data":${'['.repeat(5000)}${']'.repeat(5000)}}`)
  t.equal((await c.nextOfType('error')).code, 'bad_request')
  c.send({ type: 'publish', data: nest(MAX_DATA_DEPTH), ref: 'ok' })
  t.equal((await c.nextOfType('ack')).ref, 'ok')
  const res = await api(base, 'POST', '/api/channels/chat/messages', { body: { data: nest(MAX_DATA_DEPTH + 1) }, headers: { 'x-api-key': 'k' } })
  t.equal(res.status, 400)
  t.equal(res.body.code, 'bad_request')
})
