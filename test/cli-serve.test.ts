// `gatecast token` and `gatecast serve` as real processes: tokens from the CLI
// are accepted by a server started in the same working directory.
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createSigner, createVerifier } from 'fast-jwt'
import { UserStore } from '../src/auth/users.ts'
import { api } from './helpers/app.ts'
import { connect, refused } from './helpers/client.ts'
import { BIN, gatecast, jwtHeader, oneLineError, startProcess } from './helpers/cli.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-cli-'))
const mode = (file: string): number => statSync(file).mode & 0o777

t.test('token: a JWT the running server accepts (same cwd → same data/jwt-secret)', async t => {
  const dir = tmp()
  // a stored admin user: its roles go into the token without --role
  await UserStore.open(join(dir, 'data', 'users.json')).set('root', 'root-password-1', { roles: ['admin'] })
  const server = await startProcess(t, BIN, ['serve'], { cwd: dir })
  const secret = readFileSync(join(dir, 'data', 'jwt-secret'), 'utf8').trim()
  t.ok(secret.length >= 32, 'the server generated the dev secret')

  const [r, rootTok] = await Promise.all([
    gatecast(['token', 'alice', '--ttl', '600', '--channels', 'a,b', '--role', 'admin'], { cwd: dir }),
    gatecast(['token', 'root'], { cwd: dir })
  ])
  t.equal(r.code, 0, `token: exit 0 (${r.stderr})`)
  const token = r.stdout.trim()
  t.equal(r.stdout, `${token}\n`, 'only the token on stdout, one line')
  t.equal(jwtHeader(token).alg, 'HS256')
  const claims = createVerifier({ key: secret, algorithms: ['HS256'] })(token) // signed with data/jwt-secret
  t.equal(claims.sub, 'alice')
  t.equal(claims.exp - claims.iat, 600, 'exp - iat = --ttl')
  t.ok(Math.abs(claims.iat - Date.now() / 1000) < 30, 'iat is now')
  t.same(claims.channels, ['a', 'b'])
  t.same(claims.roles, ['admin'])
  t.type(claims.jti, 'string')
  t.equal(claims.name, 'alice')

  // accepted by the server on an upgrade, limited to its channels
  const c = await connect(`${server.ws}/ws/a`, { headers: { authorization: `Bearer ${token}` } })
  const ready = await c.nextOfType('ready')
  t.equal(ready.userId, 'alice')
  t.equal(ready.expiresAt, claims.exp)
  c.close()
  const viaQuery = await connect(`${server.ws}/ws/b?token=${token}`)
  viaQuery.close()
  const other = await refused(`${server.ws}/ws/c`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(other.status, 403, 'a channel outside --channels is refused')
  // and its admin role opens the server API
  t.equal((await api(server.url, 'GET', '/api/channels', { headers: { authorization: `Bearer ${token}` } })).status, 200, '--role admin works on the server API')

  // defaults: ACCESS_TOKEN_TTL, no channel limit; a stored user keeps its roles
  t.equal(rootTok.code, 0)
  const plain = rootTok.stdout.trim()
  const p = createVerifier({ key: secret })(plain)
  t.equal(p.sub, 'root')
  t.equal(p.exp - p.iat, 3600, 'default ttl = ACCESS_TOKEN_TTL')
  t.equal(p.channels, undefined, 'no channel limit')
  t.same(p.roles, ['admin'], 'roles of the users file included')
  t.equal((await api(server.url, 'GET', '/api/channels', { headers: { authorization: `Bearer ${plain}` } })).status, 200)
  const anyChannel = await connect(`${server.ws}/ws/anything`, { headers: { authorization: `Bearer ${plain}` } })
  anyChannel.close()

  t.equal((await server.stop('SIGTERM')).code, 0, 'gatecast serve exits 0 on SIGTERM')
})

t.test('token before the server: the secret the CLI generates is the one `gatecast` uses', async t => {
  const dir = tmp()
  const r = await gatecast(['token', 'alice', '--ttl', '120'], { cwd: dir })
  t.equal(r.code, 0)
  t.match(r.stderr, /warning: .*JWT_SECRET/, 'warns about the generated dev secret on stderr')
  t.equal(mode(join(dir, 'data', 'jwt-secret')), 0o600)
  const server = await startProcess(t, BIN, [], { cwd: dir }) // plain `gatecast` = serve
  const c = await connect(`${server.ws}/ws/chat`, { headers: { authorization: `Bearer ${r.stdout.trim()}` } })
  t.equal((await c.nextOfType('ready')).userId, 'alice')
  c.close()
  // a token signed with another secret is refused
  const foreign = createSigner({ key: 'another-secret-that-is-long-enough-0123456789', expiresIn: 60_000 })({ sub: 'alice' })
  t.equal((await refused(`${server.ws}/ws/chat`, { headers: { authorization: `Bearer ${foreign}` } })).status, 401)
  t.equal((await server.stop('SIGTERM')).code, 0, '`gatecast` exits 0 on SIGTERM')
})

t.test('serve: a configuration error → exit 1 with one line', async t => {
  const dir = tmp()
  const r = await gatecast(['serve'], { cwd: dir, env: { PORT: '0', NODE_ENV: 'production' } })
  oneLineError(t, r, /JWT_SECRET/, 'serve in production without JWT_SECRET')
})
