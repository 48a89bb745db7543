// Every refusal of admit() with its status and code, and what an admitted
// upgrade carries: the core alone, no port.
import t from 'tap'
import { GatecastError, isGatecastError } from '../../src/protocol/errors.ts'
import { coreNode } from '../helpers/core.ts'

async function refusal (p: Promise<unknown>): Promise<{ status: number, code: string }> {
  try {
    await p
  } catch (err) {
    if (isGatecastError(err)) return { status: err.statusCode, code: err.code }
    throw err
  }
  throw new Error('admitted')
}

const remoteAddress = '10.0.0.1'

t.test('the admission matrix', async t => {
  const n = await coreNode(t, { allowedOrigins: ['https://app.example'], wsSocketsPerUser: 2, channels: { news: { publish: false } } })
  const req = (over: Record<string, unknown> = {}, claims: Record<string, unknown> = {}) =>
    ({ channel: 'chat', tokens: { query: { token: n.token(claims) } }, remoteAddress, ...over })

  t.same(await refusal(n.gatecast.admit(req({ channel: 'bad channel' }))), { status: 400, code: 'bad_channel' }, 'bad channel name')
  t.same(await refusal(n.gatecast.admit(req({ channel: 'x'.repeat(129) }))), { status: 400, code: 'bad_channel' }, 'overlong channel name')
  t.same(await refusal(n.gatecast.admit(req({ since: 'nope' }))), { status: 400, code: 'bad_since' }, 'bad since')
  t.same(await refusal(n.gatecast.admit(req({ origin: 'https://evil.example' }))), { status: 403, code: 'origin_forbidden' }, 'origin not listed')
  t.same(await refusal(n.gatecast.admit(req({ tokens: { query: {} } }))), { status: 401, code: 'token_missing' }, 'no token')
  t.same(await refusal(n.gatecast.admit(req({ tokens: { query: { token: 'a.b.c' } } }))), { status: 401, code: 'token_invalid' }, 'malformed token')
  t.same(await refusal(n.gatecast.admit(req({ tokens: { query: { token: n.token({}, -60) } } }))), { status: 401, code: 'token_expired' }, 'expired token')
  t.same(await refusal(n.gatecast.admit(req({}, { channels: ['room:*'] }))), { status: 403, code: 'channel_forbidden' }, 'channels claim without this channel')
  t.same(await refusal(n.gatecast.admit(req({ channel: 'dm#bob,carol' }))), { status: 403, code: 'channel_forbidden' }, 'user-limited channel of others')

  const ok = await n.gatecast.admit(req({ channel: 'dm#alice,bob', origin: 'https://app.example', since: 'abc:3' }, { channels: ['dm#*'] }))
  t.equal(ok.userId, 'alice')
  t.equal(ok.channel, 'dm#alice,bob')
  t.equal(ok.since, 'abc:3')
  t.equal(ok.remoteAddress, remoteAddress)
  t.same(ok.identity.channels, ['dm#*'])
  t.type(ok.startedAt, 'number')
  t.ok(await n.gatecast.admit(req({ origin: undefined })), 'no Origin header (not a browser) is not refused')
})

t.test('sockets per user count cluster-wide presence', async t => {
  const n = await coreNode(t, { wsSocketsPerUser: 2 })
  await n.connect('a')
  await n.connect('b')
  t.same(await refusal(n.gatecast.admit({ channel: 'c', tokens: { query: { token: n.token() } }, remoteAddress })), { status: 429, code: 'too_many_sockets' })
  t.ok(await n.gatecast.admit({ channel: 'c', tokens: { query: { token: n.token({ sub: 'bob' }) } }, remoteAddress }), 'another user is not counted')
})

t.test('revoked tokens, the engine away and shutdown', async t => {
  const n = await coreNode(t)
  const token = n.token({ jti: 'gone' })
  await n.engine.store.revokeToken('gone', 60)
  t.same(await refusal(n.gatecast.admit({ channel: 'c', tokens: { query: { token } }, remoteAddress })), { status: 401, code: 'token_revoked' })
  await n.engine.close()
  t.same(await refusal(n.gatecast.admit({ channel: 'c', tokens: { query: { token: n.token() } }, remoteAddress })), { status: 503, code: 'unavailable' }, 'engine not ready')
  await n.gatecast.shutdown(10)
  t.same(await refusal(n.gatecast.admit({ channel: 'c', tokens: { query: { token: n.token() } }, remoteAddress })), { status: 503, code: 'shutting_down' }, 'shutting down comes first')
})

t.test('connect hooks run in order, see the context and may refuse with their own status', async t => {
  const n = await coreNode(t)
  const seen: string[] = []
  n.gatecast.onConnect(ctx => { seen.push(`1:${ctx.userId}:${ctx.channel}:${ctx.remoteAddress}`) })
  n.gatecast.onConnect(async ctx => {
    seen.push(`2:${ctx.identity.roles.join(',')}`)
    if (ctx.channel === 'vip') throw new GatecastError(402, 'payment_required', 'members only')
  })
  await n.gatecast.admit({ channel: 'lobby', tokens: { query: { token: n.token({ roles: ['member'] }) } }, remoteAddress })
  t.same(seen, [`1:alice:lobby:${remoteAddress}`, '2:member'])
  t.same(await refusal(n.gatecast.admit({ channel: 'vip', tokens: { query: { token: n.token() } }, remoteAddress })), { status: 402, code: 'payment_required' })
})
