// The auth store of both engines, the same cases on each: revocations,
// refresh tokens (use, reuse, peek), families, hit counters and their windows.
import t from 'tap'
import type { RefreshRecord } from '../../src/engine/index.ts'
import { KINDS, openEngine, sleep } from '../helpers/engine.ts'

const record: RefreshRecord = { userId: 'alice', name: 'Ålice "A"', roles: ['admin'], channels: ['room:*'], family: 'fam-1' }

for (const kind of KINDS) {
  t.test(`${kind}: revoked tokens and families`, async t => {
    const { engine } = await openEngine(t, kind)
    const s = engine.store
    t.equal(await s.isTokenRevoked('j1'), false)
    await s.revokeToken('j1', 60)
    t.equal(await s.isTokenRevoked('j1'), true)
    t.equal(await s.isTokenRevoked('j2'), false)
    t.equal(await s.isFamilyRevoked('j1'), false, 'families and tokens do not share keys')
    t.equal(await s.isFamilyRevoked('f1'), false)
    await s.revokeFamily('f1', 60)
    t.equal(await s.isFamilyRevoked('f1'), true)
    t.equal(await s.isTokenRevoked('f1'), false)
  })

  t.test(`${kind}: a refresh token is used once; a second use is reported as reuse`, async t => {
    const { engine } = await openEngine(t, kind)
    const s = engine.store
    await s.saveRefreshToken('k1', record, 60)
    t.strictSame(await s.peekRefreshToken('k1'), record)
    t.strictSame(await s.peekRefreshToken('k1'), record, 'peeking does not use it')
    t.strictSame(await s.useRefreshToken('k1'), { record, reused: false })
    t.strictSame(await s.useRefreshToken('k1'), { record, reused: true })
    t.strictSame(await s.useRefreshToken('k1'), { record, reused: true })
    t.strictSame(await s.peekRefreshToken('k1'), record, 'a used token is still readable')
    t.equal(await s.useRefreshToken('missing'), null)
    t.equal(await s.peekRefreshToken('missing'), null)
    const minimal: RefreshRecord = { userId: 'bob', family: 'fam-2' }
    await s.saveRefreshToken('k2', minimal, 60)
    t.strictSame(await s.useRefreshToken('k2'), { record: minimal, reused: false }, 'one token’s use leaves another alone')
  })

  t.test(`${kind}: hit counters count per key and clear`, async t => {
    const { engine } = await openEngine(t, kind)
    const s = engine.store
    t.equal(await s.hits('k'), 0)
    t.strictSame([await s.hit('k', 60), await s.hit('k', 60), await s.hit('k', 60)], [1, 2, 3])
    t.equal(await s.hits('k'), 3)
    t.equal(await s.hits('other'), 0)
    await s.clearHits('k')
    t.equal(await s.hits('k'), 0)
    t.equal(await s.hit('k', 60), 1)
  })

  t.test(`${kind}: rate counters report the count and the window left`, async t => {
    const { engine } = await openEngine(t, kind)
    const s = engine.store
    const a = await s.rateHit('ip', 60_000)
    t.equal(a.count, 1)
    t.ok(a.ttlMs > 59_000 && a.ttlMs <= 60_000, `a fresh window: ${a.ttlMs}`)
    await sleep(20)
    const b = await s.rateHit('ip', 60_000)
    t.equal(b.count, 2)
    t.ok(b.ttlMs <= a.ttlMs - 10 && b.ttlMs > 59_000, `the same window, counting down: ${b.ttlMs}`)
    t.strictSame(await s.rateHit('other-ip', 60_000), { count: 1, ttlMs: 60_000 })
    await s.hit('ip', 60)
    t.equal(await s.hits('ip'), 1, 'rate counters and hit counters are apart')
    t.equal((await s.rateHit('ip', 60_000)).count, 3)

    t.equal((await s.rateHit('short', 150)).count, 1)
    t.equal((await s.rateHit('short', 150)).count, 2)
    await sleep(200)
    t.strictSame(await s.rateHit('short', 150), { count: 1, ttlMs: 150 }, 'a new window after the old one ran out')
  })

  t.test(`${kind}: everything with a ttl is gone after it`, async t => {
    const { engine } = await openEngine(t, kind)
    const s = engine.store
    await s.revokeToken('jx', 1)
    await s.revokeFamily('fx', 1)
    await s.saveRefreshToken('kx', record, 1)
    await s.hit('hx', 1)
    await s.hit('hx', 1)
    t.equal(await s.hits('hx'), 2)
    await sleep(1100)
    t.equal(await s.isTokenRevoked('jx'), false)
    t.equal(await s.isFamilyRevoked('fx'), false)
    t.equal(await s.peekRefreshToken('kx'), null)
    t.equal(await s.useRefreshToken('kx'), null)
    t.equal(await s.hits('hx'), 0)
    t.equal(await s.hit('hx', 1), 1, 'a new window')
  })
}
