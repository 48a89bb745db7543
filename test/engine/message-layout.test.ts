// The `message` frame is laid out once (src/protocol/message-layout.ts): built
// in JS by messageFrameText and in Lua by the Redis publish script. Whatever
// the inputs, the frame delivered and the frame kept in history are the same
// bytes from both engines.
import t from 'tap'
import { CHANNEL_PATTERN, messageFrameText } from '../../src/protocol/frames.ts'
import { MESSAGE_LAYOUT } from '../../src/protocol/message-layout.ts'
import { luaString } from '../../src/engine/redis/scripts.ts'
import { KINDS, openEngine, rawRedis, until } from '../helpers/engine.ts'

const channels = ['a', 'room:1', 'x_y.z:@#,-9', 'ns:name#alice,bob', 'Z'.repeat(64) + '_.:@#,-'.repeat(9)]
const froms: Array<string | null> = [
  null,
  'alice',
  'he said "hi" \\ and \\"left\\"',
  'ünïcødé ☃ 😀 中文',
  '\u2028\u2029\n\t\r\u0000\u001f',
  "'single' ]] [[ .. -- %d \\ddd",
  ''
]
const datas = [
  'null', 'true', 'false', '0', '-12.5e-3', '1e+21', '"str"', '""',
  '"\\u00e9\\ud83d\\ude00 escaped \\" \\\\ \\/"',
  '"é 😀 raw \u2028"',
  '[]', '{}',
  '[1,[2,[3,{"a":null}]]]',
  '{"k":{"n":[true,false,null,"\\"q\\\\"],"u":"\\u2028","é":{"":[{}]}}}',
  JSON.stringify({ deep: [[[[{ x: 'ü\'"\\' }]]]], n: -0.000001, big: 9007199254740991 }),
  '  { "spaced" : [ 1 , 2 ] }  '
]

// assertion names in ASCII: a raw U+2028 would end a line of the TAP stream
const show = (s: string) => JSON.stringify(s).replace(/[^\x20-\x7e]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))

t.test('the pieces make the schema’s JSON, in its field order', async t => {
  t.equal(MESSAGE_LAYOUT.length, 6)
  const data = { nested: ['ü', { q: '"\\' }], n: null }
  t.equal(
    messageFrameText('room:1', 'abc:7', 'he said "hi"', JSON.stringify(data), 1700000000123),
    JSON.stringify({ type: 'message', channel: 'room:1', id: 'abc:7', from: 'he said "hi"', data, ts: 1700000000123 })
  )
  t.equal(messageFrameText('c', 'e:1', null, '1', 0), '{"type":"message","channel":"c","id":"e:1","from":null,"data":1,"ts":0}')
  for (const c of channels) t.match(c, new RegExp(CHANNEL_PATTERN), `${show(c)} is a valid channel name`)
})

t.test('luaString quotes anything as a Lua literal of the same bytes', async t => {
  const r = rawRedis(t)
  const samples = [...MESSAGE_LAYOUT, ...froms.filter(f => f !== null), "'", '\\', '\\\'', '\\0011', '\n1', 'é1', '"]]--']
  for (const s of samples) {
    t.equal(await r.eval(`return ${luaString(s)}`, 0), s, show(s))
  }
  t.notMatch(luaString('\'\\\n"é'), /[\n\u0080-\uffff]|[^\\]\\[^0-9]/, 'only printable ASCII and \\ddd escapes')
})

for (const kind of KINDS) {
  t.test(`${kind}: delivered and history frames are messageFrameText, byte for byte`, async t => {
    const { engine, rec } = await openEngine(t, kind)
    for (const c of channels) await engine.broker.subscribe(c)
    const base = Date.now()
    const sent: Array<{ channel: string, id: string, from: string | null, dataJson: string, ts: number }> = []
    for (let i = 0; i < datas.length; i++) {
      const channel = channels[i % channels.length]
      const from = froms[i % froms.length]
      const dataJson = datas[i]
      const ts = base + i * 997
      const id = await engine.broker.publish(channel, { from, dataJson, ts }, { historySize: 100, historyTtl: 3600 })
      sent.push({ channel, id, from, dataJson, ts })
    }
    await until(() => rec.deliveries.length === sent.length, 'every message delivered')
    const expected = sent.map(s => messageFrameText(s.channel, s.id, s.from, s.dataJson, s.ts))
    for (let i = 0; i < sent.length; i++) {
      const d = rec.deliveries.find(d => d.frame.includes(`"id":"${sent[i].id}"`) && d.channel === sent[i].channel)
      t.equal(d?.frame, expected[i], `delivered: ${show(sent[i].dataJson)}`)
      t.equal(d?.ts, sent[i].ts)
    }
    for (const channel of channels) {
      const mine = sent.flatMap((s, i) => s.channel === channel ? [{ s, frame: expected[i] }] : [])
      const epoch = mine[0].s.id.slice(0, mine[0].s.id.indexOf(':'))
      const recovered = await engine.broker.recover(channel, `${epoch}:0`)
      t.equal(recovered.recovered, true)
      t.strictSame(recovered.frames, mine.map(m => m.frame), `history frames of ${channel}`)
      const history = await engine.broker.history(channel, { limit: 100 })
      t.strictSame(history.messages, mine.map(m => ({ id: m.s.id, channel, from: m.s.from, data: JSON.parse(m.s.dataJson), ts: m.s.ts })))
    }
  })
}
