// The per-username lock-out (LOGIN_FAILURES) against parallel guessing: the
// password check (scrypt) is slow, so attempts sent together are all in flight
// at once. Each one must be counted before its password is looked at, or every
// one of them passes a count that none has raised yet. Both engines, over real
// HTTP, with a real users file.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { api, startApp, type TestApp } from '../helpers/app.ts'
import { REDIS_URL, redisPrefix } from '../helpers/redis.ts'
import { UserStore } from '../../src/auth/users.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

const PASSWORD = 'alice-password-1'
const FAILURES = 5
const ATTEMPTS = 20

const usersDir = mkdtempSync(join(tmpdir(), 'gatecast-login-race-'))
const usersFile = join(usersDir, 'users.json')
await UserStore.open(usersFile).set('alice', PASSWORD)

const engines: Array<[string, (t: Test) => ConfigOverrides]> = [
  ['memory', () => ({})],
  ['redis', t => ({ redisUrl: REDIS_URL, redisPrefix: redisPrefix(t) })]
]

async function app (t: Test, engine: (t: Test) => ConfigOverrides): Promise<TestApp> {
  // LOGIN_RATE (per IP) far above the attempts, so only the per-user count refuses
  return startApp(t, { cwd: usersDir, config: { usersFile, loginFailures: FAILURES, loginRate: 1000, ...engine(t) } })
}

const attempt = (a: TestApp, password: string) =>
  api(a.base, 'POST', '/auth/login', { body: { username: 'alice', password } })

function lockedOut (t: Test, res: { status: number, body: any }, label: string): void {
  t.equal(res.status, 429, `${label}: 429`)
  t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'rate_limited', message: 'too many failed logins for this user; try again later' }, `${label}: the lock-out error`)
  t.notOk(res.body?.access_token, `${label}: no token`)
}

for (const [name, engine] of engines) {
  t.test(`${name}: ${ATTEMPTS} concurrent logins, ${ATTEMPTS - 1} wrong and the right one, check at most LOGIN_FAILURES passwords`, async t => {
    const a = await app(t, engine)
    // the right password goes last: it is the one a guesser hopes to slip in
    const passwords = [...Array.from({ length: ATTEMPTS - 1 }, (_, i) => `wrong-${i}`), PASSWORD]
    const results = await Promise.all(passwords.map(p => attempt(a, p)))
    const statuses = results.map(r => r.status)
    const checked = statuses.filter(s => s === 401 || s === 200).length
    t.ok(checked >= 1 && checked <= FAILURES, `${checked} passwords checked (401/200), at most ${FAILURES}: ${statuses.join(' ')}`)
    t.equal(statuses.filter(s => s === 429).length, ATTEMPTS - checked, 'every other attempt refused with 429 (nothing else)')
    results.forEach((r, i) => { if (r.status === 429) lockedOut(t, r, `attempt ${i}`) })
    for (const r of results.slice(0, -1)) t.not(r.status, 200, 'no wrong password accepted')

    const right = results[ATTEMPTS - 1]
    if (right.status === 200) {
      // the right password was among those checked: a success clears the count
      t.comment('the right password was checked in the burst; the count was cleared')
      t.equal((await attempt(a, PASSWORD)).status, 200, 'cleared by the success: the right password works')
    } else {
      lockedOut(t, await attempt(a, PASSWORD), 'the right password afterwards, while locked')
      lockedOut(t, await attempt(a, 'wrong-again'), 'a wrong one afterwards')
    }
  })

  t.test(`${name}: ${ATTEMPTS} concurrent wrong logins lock the user; the right password is then refused`, async t => {
    const a = await app(t, engine)
    const results = await Promise.all(Array.from({ length: ATTEMPTS }, (_, i) => attempt(a, `wrong-${i}`)))
    const statuses = results.map(r => r.status)
    t.equal(statuses.filter(s => s === 401).length, FAILURES, `exactly ${FAILURES} passwords checked: ${statuses.join(' ')}`)
    t.equal(statuses.filter(s => s === 429).length, ATTEMPTS - FAILURES, 'the rest refused before their check')
    results.forEach((r, i) => { if (r.status === 429) lockedOut(t, r, `attempt ${i}`) })

    lockedOut(t, await attempt(a, PASSWORD), 'the right password, while locked')
    // and a burst of the right password does not get through either
    const again = await Promise.all(Array.from({ length: 5 }, () => attempt(a, PASSWORD)))
    again.forEach((r, i) => lockedOut(t, r, `right password in a second burst, ${i}`))
  })

  t.test(`${name}: below the limit a burst is checked in full, and a success clears the count`, async t => {
    const a = await app(t, engine)
    const wrong = await Promise.all(Array.from({ length: FAILURES - 1 }, (_, i) => attempt(a, `wrong-${i}`)))
    t.same(wrong.map(r => r.status), Array(FAILURES - 1).fill(401), `${FAILURES - 1} failures: all checked`)
    t.equal((await attempt(a, PASSWORD)).status, 200, `attempt ${FAILURES} is still checked and succeeds`)
    // cleared: LOGIN_FAILURES - 1 failures again, and the right one still gets through
    const wrong2 = await Promise.all(Array.from({ length: FAILURES - 1 }, (_, i) => attempt(a, `wrong-${i}`)))
    t.same(wrong2.map(r => r.status), Array(FAILURES - 1).fill(401))
    t.equal((await attempt(a, PASSWORD)).status, 200)
  })
}
