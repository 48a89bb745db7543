// Logout against sockets, over real HTTP and WebSocket on both engines:
// a token with a numeric `jti` is revoked like one with a string, and a
// logout that lands while an upgrade with the token is between its admission
// (the token verified) and its attach still closes that socket 4401. The race
// is made deterministic with an onConnect hook that holds the upgrade until
// the logout has reached the node: a socket already open with the same token
// closing 4401 is the proof that the revocation arrived.
import { randomInt } from 'node:crypto'
import t, { type Test } from 'tap'
import { api, type TestApp } from '../helpers/app.ts'
import { connect, open, type Client } from '../helpers/client.ts'
import { bearer, expectRefused, start } from '../helpers/ws-extra.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { waitFor, within } from '../helpers/wait.ts'
import { CloseCodes } from '../../src/protocol/codes.ts'

/** The node that takes the sockets, and the node that takes the logout (the same one on the memory engine). */
async function nodes (t: Test, engine: string): Promise<[TestApp, TestApp]> {
  if (engine === 'memory') {
    const a = await start(t)
    return [a, a]
  }
  const prefix = redisPrefix(t)
  return [await start(t, { redisUrl: REDIS_URL, redisPrefix: prefix }), await start(t, { redisUrl: REDIS_URL, redisPrefix: prefix })]
}

/** Holds every upgrade to `channel` in its onConnect hook until released. */
function gate (a: TestApp, channel: string): { entered: Promise<void>, release: () => void } {
  let entered!: () => void
  let release!: () => void
  const enteredP = new Promise<void>(resolve => { entered = resolve })
  const released = new Promise<void>(resolve => { release = resolve })
  a.app.gatecast.onConnect(async ctx => {
    if (ctx.channel !== channel) return
    entered()
    await released
  })
  return { entered: enteredP, release }
}

const logout = async (a: TestApp, token: string): Promise<number> =>
  (await api(a.base, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${token}` } })).status

async function closedWith (t: Test, c: Client, label: string): Promise<void> {
  const { code, reason } = await within(c.closed, 3000, label)
  t.equal(code, CloseCodes.unauthorized, `${label}: closed 4401`)
  t.equal(reason, 'token revoked', `${label}: reason`)
}

const engines = ['memory', 'redis']
const jtis: Array<[string, () => string | number]> = [
  ['a string jti', () => `jti-${randomInt(1e9)}`],
  ['a numeric jti', () => randomInt(1e9)]
]

for (const engine of engines) {
  for (const [kind, jti] of jtis) {
    t.test(`${engine}, ${kind}: logout closes open sockets, refuses new upgrades and closes one caught between admission and attach`, async t => {
      const [a, other] = await nodes(t, engine)
      const token = a.token({ sub: 'alice', jti: jti() })
      const held = gate(a, 'gated')

      const witness = await connect(`${a.ws}/ws/chat`, bearer(token))
      t.teardown(() => witness.ws.terminate())
      const caught = open(`${a.ws}/ws/gated`, bearer(token))
      t.teardown(async () => { held.release(); (await caught.catch(() => null))?.ws.terminate() })
      await within(held.entered, 3000, 'the gated upgrade reached onConnect')
      // admitted as far as the token goes: verified before the logout
      t.equal(await logout(other, token), 204, 'logout')
      await closedWith(t, witness, 'the socket already open')

      held.release()
      const late = await within(caught, 3000, 'the gated upgrade completed')
      await closedWith(t, late, 'the socket attached after the logout')
      t.notOk(late.frames.some(f => f.type === 'ready'), 'it never got ready')
      await waitFor(() => a.app.gatecast.hub.size === 0, { what: 'no socket left on the hub' })

      await expectRefused(t, a, `${a.ws}/ws/chat`, bearer(token), 401, 'token_revoked', 'a new upgrade')
      await expectRefused(t, other, `${other.ws}/ws/chat`, bearer(token), 401, 'token_revoked', 'a new upgrade on the logout node')

      const fresh = await connect(`${a.ws}/ws/chat`, bearer(a.token({ sub: 'alice', jti: jti() })))
      await api(a.base, 'POST', '/auth/logout', { headers: { authorization: `Bearer ${a.token({ sub: 'alice', jti: jti() })}` } })
      t.equal(fresh.ws.readyState, fresh.ws.OPEN, 'another token of the same user stays open')
      fresh.close()
    })
  }
}
