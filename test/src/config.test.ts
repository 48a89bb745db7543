// Configuration: env (+ ./.env) → config, code overrides, the JWT secret, and
// production refusals, through readConfig(), build() and the real server process.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { build } from '../../server.ts'
import { checkApiKey, ConfigError, readConfig, resolveJwtSecret } from '../../src/config/config.ts'
import { createDemoUsers, UserStore } from '../../src/auth/users.ts'
import { api } from '../helpers/app.ts'
import { run, SERVER, startProcess } from '../helpers/cli.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-config-'))
const mode = (file: string): number => statSync(file).mode & 0o777
const LONG_SECRET = 'a-production-secret-of-more-than-32-bytes-0123456789'

function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw new Error(`expected a ConfigError, got ${String(err)}`)
  }
  throw new Error('expected a ConfigError, nothing was thrown')
}

t.test('defaults from an empty environment', async t => {
  const dir = tmp()
  const c = readConfig({}, {}, dir)
  t.match(c, {
    host: '127.0.0.1',
    port: 3000,
    production: false,
    jwtAlgorithm: 'HS256',
    jwtUserClaim: 'sub',
    accessTokenTtl: 3600,
    refreshTokenTtl: 1209600,
    usersFile: join(dir, 'data', 'users.json'),
    allowedOrigins: null,
    trustProxy: false,
    logLevel: 'info',
    plugins: [],
    wsMaxPayload: 65536,
    wsMessageRate: 100,
    wsUpgradeRate: 600,
    wsSocketsPerUser: 100,
    wsSendBuffer: 1048576,
    wsPingInterval: 25,
    wsExpiryGrace: 25,
    loginRate: 30,
    loginFailures: 5,
    historySize: 100,
    historyTtl: 300,
    channels: {},
    dataDir: join(dir, 'data')
  })
  for (const k of ['jwtSecret', 'jwtPublicKeyFile', 'jwtPrivateKeyFile', 'jwtJwksUrl', 'jwtIssuer', 'jwtAudience', 'apiKey', 'redisUrl'] as const) {
    t.equal(c[k], undefined, `${k} unset by default`)
  }
  t.notOk(existsSync(join(dir, 'data')), 'reading the config writes nothing')
})

t.test('env values are read and coerced', async t => {
  const dir = tmp()
  const c = readConfig({}, {
    HOST: '0.0.0.0',
    PORT: '8080',
    NODE_ENV: 'production',
    JWT_SECRET: LONG_SECRET,
    JWT_ALGORITHM: 'HS512',
    JWT_ISSUER: 'https://issuer.example',
    JWT_AUDIENCE: 'gatecast',
    JWT_USER_CLAIM: 'uid',
    ACCESS_TOKEN_TTL: '60',
    REFRESH_TOKEN_TTL: '600',
    USERS_FILE: 'conf/users.json',
    API_KEY: 'k',
    REDIS_URL: 'redis://localhost:6379',
    ALLOWED_ORIGINS: 'https://a.example, https://b.example,,',
    LOG_LEVEL: 'warn',
    PLUGINS: './a.js,./b.js',
    WS_MAX_PAYLOAD: '1024',
    WS_MESSAGE_RATE: '5',
    WS_UPGRADE_RATE: '7',
    WS_SOCKETS_PER_USER: '2',
    WS_SEND_BUFFER: '2048',
    WS_PING_INTERVAL: '3',
    WS_EXPIRY_GRACE: '0',
    LOGIN_RATE: '3',
    LOGIN_FAILURES: '2',
    HISTORY_SIZE: '0',
    HISTORY_TTL: '10'
  }, dir)
  t.match(c, {
    host: '0.0.0.0',
    port: 8080,
    production: true,
    jwtSecret: LONG_SECRET,
    jwtAlgorithm: 'HS512',
    jwtIssuer: 'https://issuer.example',
    jwtAudience: 'gatecast',
    jwtUserClaim: 'uid',
    accessTokenTtl: 60,
    refreshTokenTtl: 600,
    usersFile: join(dir, 'conf', 'users.json'),
    apiKey: 'k',
    redisUrl: 'redis://localhost:6379',
    allowedOrigins: ['https://a.example', 'https://b.example'],
    logLevel: 'warn',
    plugins: ['./a.js', './b.js'],
    wsMaxPayload: 1024,
    wsMessageRate: 5,
    wsUpgradeRate: 7,
    wsSocketsPerUser: 2,
    wsSendBuffer: 2048,
    wsPingInterval: 3,
    wsExpiryGrace: 0,
    loginRate: 3,
    loginFailures: 2,
    historySize: 0,
    historyTtl: 10,
    channels: {},
    dataDir: join(dir, 'data')
  })
  t.equal(typeof c.port, 'number', 'numbers are numbers, not strings')
  t.same(c.allowedOrigins, ['https://a.example', 'https://b.example'], 'empty list items dropped')
  t.same(c.plugins, ['./a.js', './b.js'])
  t.same(c.channels, {})
  t.equal(readConfig({}, { PORT: '0' }, dir).port, 0, 'PORT=0 (any free port) is allowed')
  t.equal(readConfig({}, { USERS_FILE: '/abs/users.json' }, dir).usersFile, '/abs/users.json', 'absolute USERS_FILE kept')
  for (const alg of ['HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'EdDSA']) {
    t.equal(readConfig({}, { JWT_ALGORITHM: alg }, dir).jwtAlgorithm, alg, `JWT_ALGORITHM ${alg}`)
  }
})

t.test('invalid env values → ConfigError naming the variable', async t => {
  const dir = tmp()
  const cases: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['JWT_ALGORITHM', 'none'],
    ['JWT_ALGORITHM', 'hs256'],
    ['LOG_LEVEL', 'loud'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['ACCESS_TOKEN_TTL', '1h'],
    ['REFRESH_TOKEN_TTL', 'forever'],
    ['WS_MAX_PAYLOAD', '10'],
    ['WS_MESSAGE_RATE', '0'],
    ['HISTORY_SIZE', '-1'],
    ['LOGIN_RATE', 'many'],
    ['LOGIN_FAILURES', '0']
  ]
  for (const [name, value] of cases) {
    const err = configError(() => readConfig({}, { [name]: value }, dir))
    t.match(err.message, new RegExp(name), `${name}=${value}: the message names ${name}`)
    t.notMatch(err.message, /\n/, `${name}=${value}: one line`)
  }
})

t.test('TRUST_PROXY: false, true, or the proxies\' addresses', async t => {
  const dir = tmp()
  const read = (v: string) => readConfig({}, { TRUST_PROXY: v }, dir).trustProxy
  t.equal(readConfig({}, {}, dir).trustProxy, false, 'unset: the header is not believed')
  t.equal(read('false'), false)
  t.equal(read('true'), true)
  t.equal(read(' TRUE '), true, 'case and spaces do not matter')
  t.same(read('127.0.0.1'), ['127.0.0.1'])
  t.same(read('10.0.0.0/8, 192.168.1.1/32,,::1, fd00::/8 ,2001:db8::/128'), ['10.0.0.0/8', '192.168.1.1/32', '::1', 'fd00::/8', '2001:db8::/128'])
  t.same(read('loopback,uniquelocal,linklocal'), ['loopback', 'uniquelocal', 'linklocal'], 'Fastify\'s names for the reserved ranges')
  t.same(read('0.0.0.0/1,::ffff:10.0.0.1/128'), ['0.0.0.0/1', '::ffff:10.0.0.1/128'])
  t.same(readConfig({ trustProxy: ['10.1.2.3'] }, { TRUST_PROXY: 'true' }, dir).trustProxy, ['10.1.2.3'], 'the code option wins')
  t.equal(readConfig({ trustProxy: false }, { TRUST_PROXY: '10.0.0.1' }, dir).trustProxy, false)
})

t.test('TRUST_PROXY: a bad entry or a hop count → ConfigError', async t => {
  const dir = tmp()
  const err = (v: string) => configError(() => readConfig({}, { TRUST_PROXY: v }, dir)).message
  for (const bad of ['10.0.0.300', 'proxy.example', '10.0.0.0/33', '::1/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/x', '0.0.0.0/0', '::/0', 'yes', '10.0.0.1;10.0.0.2']) {
    t.match(err(bad), /^TRUST_PROXY: ".*" is not an IP address, a CIDR \(address\/1-(32|128)\) or one of loopback, linklocal, uniquelocal$/, `${bad} refused`)
  }
  t.match(err('10.0.0.1, nope'), /"nope"/, 'the bad entry is named')
  t.match(err(','), /lists no proxy address/)
  for (const hops of ['0', '1', '2']) {
    t.match(err(hops), /^TRUST_PROXY=\d: hop counts are not supported .*list the proxies' addresses instead/, `hop count ${hops} refused, with the fix`)
  }
  t.match(configError(() => readConfig({ trustProxy: ['10.0.0.1', '1.2.3'] }, {}, dir)).message, /^trustProxy: "1\.2\.3" is not an IP address/, 'the code option is checked too')
  t.match(configError(() => readConfig({ trustProxy: 1 as unknown as boolean }, {}, dir)).message, /^trustProxy must be true, false or a list/)
})

t.test('.env in the working directory is read; the process environment wins', async t => {
  const dir = tmp()
  writeFileSync(join(dir, '.env'), [
    '# a comment',
    'PORT=4000',
    'HOST=0.0.0.0',
    'LOGIN_RATE=7',
    'API_KEY="quoted key"',
    'ALLOWED_ORIGINS=https://dotenv.example'
  ].join('\n') + '\n')
  const fromFile = readConfig({}, {}, dir)
  t.equal(fromFile.port, 4000)
  t.equal(fromFile.host, '0.0.0.0')
  t.equal(fromFile.loginRate, 7)
  t.equal(fromFile.apiKey, 'quoted key')
  t.same(fromFile.allowedOrigins, ['https://dotenv.example'])

  const mixed = readConfig({}, { PORT: '5000', LOGIN_RATE: '9' }, dir)
  t.equal(mixed.port, 5000, 'process env wins over .env')
  t.equal(mixed.loginRate, 9)
  t.equal(mixed.host, '0.0.0.0', 'what env does not set still comes from .env')

  // a .env elsewhere is not read
  t.equal(readConfig({}, {}, tmp()).port, 3000)

  // a bad value in .env is a ConfigError too
  const bad = tmp()
  writeFileSync(join(bad, '.env'), 'PORT=not-a-port\n')
  t.match(configError(() => readConfig({}, {}, bad)).message, /PORT/)
})

t.test('code overrides win over env and .env', async t => {
  const dir = tmp()
  writeFileSync(join(dir, '.env'), 'PORT=4000\nLOGIN_RATE=7\n')
  const c = readConfig({ port: 1234, loginRate: 50, historySize: 0, channels: { news: { publish: false } } }, { PORT: '5000', HISTORY_SIZE: '10' }, dir)
  t.equal(c.port, 1234)
  t.equal(c.loginRate, 50)
  t.equal(c.historySize, 0, 'a falsy override still wins')
  t.same(c.channels, { news: { publish: false } })
  t.equal(readConfig({ port: undefined }, { PORT: '5000' }, dir).port, 5000, 'an undefined override does not erase the env value')

  // build() passes them through the same way
  const app = await build({ cwd: dir, env: { LOGIN_RATE: '1', JWT_SECRET: LONG_SECRET }, config: { loginRate: 42, usersFile: null }, logger: false })
  t.teardown(() => app.close())
  t.equal(app.config.loginRate, 42)
  t.equal(app.config.port, 4000, '.env of cwd read by build()')
})

t.test('CHANNELS_FILE', async t => {
  const dir = tmp()
  const options = { news: { publish: false, presence: true, historySize: 1000, historyTtl: 3600 }, chat: { presence: true } }
  writeFileSync(join(dir, 'channels.json'), JSON.stringify(options))
  t.same(readConfig({}, { CHANNELS_FILE: 'channels.json' }, dir).channels, options, 'relative to cwd')
  t.same(readConfig({}, { CHANNELS_FILE: join(dir, 'channels.json') }, tmp()).channels, options, 'absolute path')
  writeFileSync(join(dir, '.env'), 'CHANNELS_FILE=channels.json\n')
  t.same(readConfig({}, {}, dir).channels, options, 'set from .env')

  const invalid: Array<[string, string]> = [
    ['not JSON', '{"news": '],
    ['wrong type', '{"news": {"publish": "no"}}'],
    ['unknown option', '{"news": {"publsh": false}}'],
    ['negative history', '{"news": {"historySize": -1}}'],
    ['zero ttl', '{"news": {"historyTtl": 0}}'],
    ['not an object', '["news"]'],
    ['options not an object', '{"news": true}']
  ]
  for (const [what, content] of invalid) {
    const file = join(dir, `${what.replace(/\W+/g, '-')}.json`)
    writeFileSync(file, content)
    const err = configError(() => readConfig({}, { CHANNELS_FILE: file }, dir))
    t.ok(err.message.includes(file), `${what}: message names the file`)
    t.match(err.message, /CHANNELS_FILE/, `${what}: message names the variable`)
    t.notMatch(err.message, /\n/, `${what}: one line`)
  }
  const missing = configError(() => readConfig({}, { CHANNELS_FILE: 'nope.json' }, dir))
  t.ok(missing.message.includes(join(dir, 'nope.json')), 'a missing file → ConfigError naming it')
})

t.test('resolveJwtSecret in development: generated once into data/jwt-secret (0600), then reused', async t => {
  const dir = tmp()
  const config = readConfig({}, {}, dir)
  const warnings: string[] = []
  const secret = resolveJwtSecret(config, m => warnings.push(m))
  const file = join(dir, 'data', 'jwt-secret')
  t.type(secret, 'string')
  t.ok(Buffer.byteLength(secret ?? '') >= 32, 'at least 32 bytes')
  t.ok(existsSync(file))
  t.equal(mode(file), 0o600, 'mode 0600')
  t.equal(readFileSync(file, 'utf8').trim(), secret, 'the file holds the secret')
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], /JWT_SECRET/)
  t.ok(warnings[0].includes(file), 'the warning says where the secret is')
  t.notOk(warnings[0].includes(secret ?? '<none>'), 'the warning does not print the secret')

  const content = readFileSync(file, 'utf8')
  const again = resolveJwtSecret(readConfig({}, {}, dir), m => warnings.push(m))
  t.equal(again, secret, 'reused on the next start')
  t.equal(readFileSync(file, 'utf8'), content, 'file unchanged')

  // another directory gets its own secret
  const other = resolveJwtSecret(readConfig({}, {}, tmp()), () => {})
  t.not(other, secret)

  // a kept secret that is too short is replaced
  const shortDir = tmp()
  mkdirSync(join(shortDir, 'data'))
  writeFileSync(join(shortDir, 'data', 'jwt-secret'), 'short\n', { mode: 0o644 })
  const replaced = resolveJwtSecret(readConfig({}, {}, shortDir), () => {})
  t.ok(Buffer.byteLength(replaced ?? '') >= 32)
  t.equal(readFileSync(join(shortDir, 'data', 'jwt-secret'), 'utf8').trim(), replaced)
  t.equal(mode(join(shortDir, 'data', 'jwt-secret')), 0o600, 'and the file is 0600 afterwards')
})

t.test('resolveJwtSecret with JWT_SECRET set: used as-is, nothing written', async t => {
  const dir = tmp()
  const warnings: string[] = []
  t.equal(resolveJwtSecret(readConfig({}, { JWT_SECRET: LONG_SECRET }, dir), m => warnings.push(m)), LONG_SECRET)
  t.same(warnings, [])
  t.notOk(existsSync(join(dir, 'data', 'jwt-secret')))
  // 32 bytes exactly is enough in production
  const exact = 'x'.repeat(32)
  t.equal(resolveJwtSecret(readConfig({}, { NODE_ENV: 'production', JWT_SECRET: exact }, dir), m => warnings.push(m)), exact)
  // bytes, not characters: 16 two-byte characters are 32 bytes
  const utf8 = 'é'.repeat(16)
  t.equal(resolveJwtSecret(readConfig({}, { NODE_ENV: 'production', JWT_SECRET: utf8 }, dir), () => {}), utf8)
  t.same(warnings, [])
})

t.test('resolveJwtSecret in development with a short secret only warns', async t => {
  const dir = tmp()
  const warnings: string[] = []
  t.equal(resolveJwtSecret(readConfig({}, { JWT_SECRET: 'short' }, dir), m => warnings.push(m)), 'short', 'used as-is')
  t.equal(warnings.length, 1)
  t.match(warnings[0], /JWT_SECRET/)
  t.match(warnings[0], /32/)
  t.notOk(warnings[0].includes('short-'), 'no secret in the warning')
  t.notOk(existsSync(join(dir, 'data', 'jwt-secret')), 'no generated secret either')
})

t.test('production refuses a missing or short JWT_SECRET with a one-line fix', async t => {
  const dir = tmp()
  const missing = configError(() => resolveJwtSecret(readConfig({}, { NODE_ENV: 'production' }, dir), () => {}))
  t.match(missing.message, /JWT_SECRET/)
  t.match(missing.message, /32/)
  t.match(missing.message, /openssl rand|set JWT_SECRET/i, 'says how to fix it')
  t.notMatch(missing.message, /\n/, 'one line')
  t.notOk(existsSync(join(dir, 'data', 'jwt-secret')), 'production never generates a secret')

  // a dev secret lying around is not picked up in production
  resolveJwtSecret(readConfig({}, {}, dir), () => {})
  t.ok(existsSync(join(dir, 'data', 'jwt-secret')))
  configError(() => resolveJwtSecret(readConfig({}, { NODE_ENV: 'production' }, dir), () => {}))

  for (const short of ['short', 'x'.repeat(31), 'é'.repeat(15)]) {
    const err = configError(() => resolveJwtSecret(readConfig({}, { NODE_ENV: 'production', JWT_SECRET: short }, dir), () => {}))
    t.match(err.message, /JWT_SECRET/)
    t.match(err.message, new RegExp(`${Buffer.byteLength(short)} bytes`), 'says how long it is')
    t.match(err.message, /32/)
    t.match(err.message, /openssl rand/, 'says how to fix it')
    t.notMatch(err.message, /\n/, 'one line')
    t.notOk(err.message.includes(short), 'does not echo the secret')
  }

  // build() refuses too
  await t.rejects(build({ cwd: dir, env: { NODE_ENV: 'production' }, config: { usersFile: null }, logger: false }), ConfigError)
  await t.rejects(build({ cwd: dir, env: { NODE_ENV: 'production', JWT_SECRET: 'short' }, config: { usersFile: null }, logger: false }), ConfigError)
})

t.test('checkApiKey: production refuses an API_KEY shorter than 32 bytes; development warns', async t => {
  const dir = tmp()
  const warnings: string[] = []
  const warn = (m: string): void => { warnings.push(m) }
  checkApiKey(readConfig({}, {}, dir), warn)
  checkApiKey(readConfig({}, { NODE_ENV: 'production' }, dir), warn)
  t.same(warnings, [], 'no API_KEY: nothing to check (the server API then needs an admin token)')
  checkApiKey(readConfig({}, { NODE_ENV: 'production', API_KEY: 'k'.repeat(32) }, dir), warn)
  checkApiKey(readConfig({}, { NODE_ENV: 'production', API_KEY: 'é'.repeat(16) }, dir), warn)
  t.same(warnings, [], '32 bytes pass')

  for (const short of ['k', 'k'.repeat(31), 'é'.repeat(15)]) {
    const bytes = Buffer.byteLength(short)
    const err = configError(() => checkApiKey(readConfig({}, { NODE_ENV: 'production', API_KEY: short }, dir), warn))
    t.equal(err.message, `API_KEY is ${bytes} bytes; production needs at least 32 (generate one: openssl rand -base64 48)`)
    t.notOk(err.message.includes(short), 'does not echo the key')
  }
  configError(() => checkApiKey(readConfig({ apiKey: 'short' }, { NODE_ENV: 'production' }, dir), warn))
  t.pass('the code option is checked too')

  checkApiKey(readConfig({}, { API_KEY: 'dev-key' }, dir), warn)
  t.same(warnings, ['API_KEY is only 7 bytes; production requires at least 32'], 'development: a warning without the key')
})

t.test('the server process: a short API_KEY in production prints one line and exits 1', async t => {
  const dir = tmp()
  const r = await run(SERVER, [], { cwd: dir, env: { PORT: '0', NODE_ENV: 'production', JWT_SECRET: LONG_SECRET, API_KEY: 'k'.repeat(31) }, timeoutMs: 10_000 })
  t.equal(r.code, 1, 'exit code 1')
  const lines = r.stderr.split('\n').filter(l => l !== '')
  t.same(lines, ['gatecast: API_KEY is 31 bytes; production needs at least 32 (generate one: openssl rand -base64 48)'], `one line on stderr (${JSON.stringify(r.stderr.slice(0, 300))})`)
  t.notMatch(r.stdout, /Server listening/, 'never listened')
})

t.test('production: demo users or a world-readable users file → build() rejects', async t => {
  const dir = tmp()
  const file = join(dir, 'data', 'users.json')
  await createDemoUsers(UserStore.open(file))
  const env = { NODE_ENV: 'production', JWT_SECRET: LONG_SECRET }
  const demo = await build({ cwd: dir, env, logger: false }).then(() => null, (err: unknown) => err)
  t.ok(demo instanceof ConfigError, 'demo users: ConfigError')
  t.match((demo as Error).message, /demo/)
  t.ok((demo as Error).message.includes(file), 'names the file')
  t.match((demo as Error).message, /gatecast user remove/, 'says how to fix it')
  t.notMatch((demo as Error).message, /\n/)

  // also when USERS_FILE points elsewhere, and one demo user is enough
  const other = join(dir, 'other-users.json')
  const store = UserStore.open(other)
  await store.set('carol', 'carol-password')
  await store.set('bob', 'bob-password', { demo: true })
  await t.rejects(build({ cwd: dir, env: { ...env, USERS_FILE: 'other-users.json' }, logger: false }), ConfigError)

  // real users but a world-readable file
  const readable = join(dir, 'readable.json')
  await UserStore.open(readable).set('carol', 'carol-password')
  chmodSync(readable, 0o644)
  const world = await build({ cwd: dir, env: { ...env, USERS_FILE: readable }, logger: false }).then(() => null, (err: unknown) => err)
  t.ok(world instanceof ConfigError, 'world-readable: ConfigError')
  t.match((world as Error).message, /world-readable/)
  t.match((world as Error).message, /chmod 600/, 'says how to fix it')
  t.ok((world as Error).message.includes(readable))

  // the same file fixed: production starts
  chmodSync(readable, 0o600)
  const app = await build({ cwd: dir, env: { ...env, USERS_FILE: readable }, logger: false })
  t.teardown(() => app.close())
  t.equal(app.config.production, true)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'carol', password: 'carol-password' } })).status, 200)
})

t.test('production: a corrupted users file → ConfigError', async t => {
  const dir = tmp()
  mkdirSync(join(dir, 'data'))
  writeFileSync(join(dir, 'data', 'users.json'), '{not json', { mode: 0o600 })
  await t.rejects(build({ cwd: dir, env: { NODE_ENV: 'production', JWT_SECRET: LONG_SECRET }, logger: false }), ConfigError)
  await t.rejects(build({ cwd: dir, env: {}, logger: false }), ConfigError, 'in development too')
})

t.test('the server process: a configuration error prints one line `gatecast: …` and exits 1', async t => {
  const dir = tmp()
  const r = await run(SERVER, [], { cwd: dir, env: { PORT: '0', NODE_ENV: 'production' } })
  t.equal(r.code, 1, 'exit code 1')
  const lines = r.stderr.split('\n').filter(l => l !== '')
  t.equal(lines.length, 1, `one line on stderr (${JSON.stringify(r.stderr.slice(0, 300))})`)
  t.match(lines[0] ?? '', /^gatecast: /, 'starts with "gatecast: "')
  t.match(lines[0] ?? '', /JWT_SECRET.*openssl rand/, 'says what is wrong and how to fix it')
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  t.notMatch(r.stdout, /Server listening/, 'never listened')
  t.notOk(existsSync(join(dir, 'data', 'jwt-secret')), 'no secret generated')
})

t.test('dev start with no users file: demo users created and their passwords printed once on stdout', async t => {
  const dir = tmp()
  const file = join(dir, 'data', 'users.json')

  const first = await startProcess(t, SERVER, [], { cwd: dir })
  const out = first.stdout()
  const printed = new Map([...out.matchAll(/^\s+(alice|bob|admin)\s+password (\S+)/gm)].map(m => [m[1], m[2]]))
  t.same([...printed.keys()].sort(), ['admin', 'alice', 'bob'], 'alice, bob and admin printed with passwords')
  t.match(out, /demo users/i)
  t.ok(out.includes(file), 'says where the file is')
  t.match(out, /admin\s+password \S+\s+roles admin/, 'admin has the admin role')
  const logLines = out.split('\n').filter(l => l.startsWith('{'))
  t.ok(logLines.length > 0, 'the server logs JSON lines on stdout')
  for (const [name, password] of printed) {
    t.notOk(logLines.some(l => l.includes(password)), `${name}'s password is not in any log line`)
    t.notOk(first.stderr().includes(password), `${name}'s password is not on stderr`)
  }

  t.ok(existsSync(file), 'data/users.json created')
  t.equal(mode(file), 0o600, 'mode 0600')
  t.equal(mode(join(dir, 'data', 'jwt-secret')), 0o600, 'the generated secret is 0600')
  const onDisk = readFileSync(file, 'utf8')
  const store = UserStore.open(file)
  t.same(store.list().map(u => u.name).sort(), ['admin', 'alice', 'bob'])
  t.ok(store.list().every(u => u.demo), 'flagged as demo users')
  for (const [name, password] of printed) {
    t.notOk(onDisk.includes(password), `${name}'s password is not stored in clear`)
    t.ok(await store.verify(name, password), `${name}'s printed password verifies`)
  }

  // the printed password logs in on the running server
  const login = await api(first.url, 'POST', '/auth/login', { body: { username: 'admin', password: printed.get('admin') } })
  t.equal(login.status, 200, 'login with a printed password')

  const exit1 = await first.stop('SIGTERM')
  t.equal(exit1.code, 0, 'SIGTERM: exit code 0')
  const secret = readFileSync(join(dir, 'data', 'jwt-secret'), 'utf8')

  // second start: same users, nothing printed
  const second = await startProcess(t, SERVER, [], { cwd: dir })
  const out2 = second.stdout()
  t.notMatch(out2, /password/i, 'no passwords printed the second time')
  for (const password of printed.values()) t.notOk(out2.includes(password))
  t.equal(readFileSync(file, 'utf8'), onDisk, 'users file unchanged')
  t.equal(readFileSync(join(dir, 'data', 'jwt-secret'), 'utf8'), secret, 'secret reused')
  const login2 = await api(second.url, 'POST', '/auth/login', { body: { username: 'alice', password: printed.get('alice') } })
  t.equal(login2.status, 200, 'the same demo password still works')
  // a token from the first run is still valid (same secret)
  const hello = await fetch(`${second.url}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${login.body.access_token as string}`, 'content-type': 'application/json' }, body: '{}' })
  t.equal(hello.status, 204, 'a token issued by the first run is accepted by the second')
  const exit2 = await second.stop('SIGTERM')
  t.equal(exit2.code, 0)
})

t.test('production start never creates demo users or a secret file', async t => {
  const dir = tmp()
  const app = await build({ cwd: dir, env: { NODE_ENV: 'production', JWT_SECRET: LONG_SECRET }, logger: false })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.notOk(existsSync(join(dir, 'data', 'users.json')), 'no users file written')
  t.notOk(existsSync(join(dir, 'data', 'jwt-secret')), 'no secret written')
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  t.equal((await api(base, 'POST', '/auth/login', { body: { username: 'admin', password: 'whatever-pass' } })).status, 401)
})

t.test('backend settings: defaults, env, and what boot refuses', async t => {
  const dir = tmp()
  const none = readConfig({}, {}, dir)
  t.match(none, { backendUrl: undefined, backendEvents: ['connect', 'subscribe', 'publish', 'close'], backendTimeout: 2000, backendMaxInFlight: 1000, adminConsole: true })
  t.equal(readConfig({}, { NODE_ENV: 'production', JWT_SECRET: LONG_SECRET }, dir).adminConsole, false, 'the console is off in production by default')
  t.equal(readConfig({}, { NODE_ENV: 'production', ADMIN_CONSOLE: 'true' }, dir).adminConsole, true)
  const c = readConfig({}, { BACKEND_URL: 'http://127.0.0.1:8000/gatecast', BACKEND_EVENTS: ' publish, close,publish', BACKEND_SECRET: 's', BACKEND_TIMEOUT: '500' }, dir)
  t.match(c, { backendUrl: 'http://127.0.0.1:8000/gatecast', backendEvents: ['publish', 'close'], backendSecret: 's', backendTimeout: 500 })

  const prod = { NODE_ENV: 'production', JWT_SECRET: LONG_SECRET, BACKEND_URL: 'https://backend.internal' }
  t.match(configError(() => readConfig({}, prod, dir)).message, /BACKEND_URL is set without BACKEND_SECRET/)
  t.match(configError(() => readConfig({}, { ...prod, BACKEND_SECRET: 'short' }, dir)).message, /BACKEND_SECRET is 5 bytes; production needs at least 32/)
  t.equal(readConfig({}, { ...prod, BACKEND_SECRET: LONG_SECRET }, dir).backendSecret, LONG_SECRET)
  t.match(configError(() => readConfig({}, { BACKEND_URL: 'not a url' }, dir)).message, /BACKEND_URL "not a url" is not a URL/)
  t.match(configError(() => readConfig({}, { BACKEND_URL: 'ftp://x' }, dir)).message, /http:\/\/ or https:\/\//)
  t.match(configError(() => readConfig({}, { BACKEND_URL: 'http://user:pw@x' }, dir)).message, /without credentials/)
  t.match(configError(() => readConfig({}, { BACKEND_URL: 'http://x/?a=1' }, dir)).message, /query/)
  t.match(configError(() => readConfig({}, { BACKEND_URL: 'http://x', BACKEND_EVENTS: 'connect,message' }, dir)).message, /BACKEND_EVENTS: unknown event "message"/)
  t.match(configError(() => readConfig({ backendUrl: 'http://x', backendEvents: ['nope' as 'close'] }, {}, dir)).message, /unknown event "nope"/, 'code options are checked too')
  t.match(configError(() => readConfig({ backendUrl: 'http://x', backendTimeout: 0 }, {}, dir)).message, /backendTimeout/)
  t.match(configError(() => readConfig({ backendUrl: 'http://x', backendMaxInFlight: 1.5 }, {}, dir)).message, /backendMaxInFlight/)
  t.match(configError(() => readConfig({}, { BACKEND_TIMEOUT: '0' }, dir)).message, /BACKEND_TIMEOUT/)
})

t.test('REDIS_CLUSTER: a comma list of seeds only with it, and a URL it needs', async t => {
  const dir = tmp()
  t.equal(readConfig({}, {}, dir).redisCluster, false)
  const c = readConfig({}, { REDIS_CLUSTER: 'true', REDIS_URL: 'redis://127.0.0.1:7000, redis://127.0.0.1:7001' }, dir)
  t.match(c, { redisCluster: true, redisUrl: 'redis://127.0.0.1:7000, redis://127.0.0.1:7001' })
  t.match(configError(() => readConfig({}, { REDIS_URL: 'redis://a:1,redis://b:2' }, dir)).message, /set REDIS_CLUSTER=true/)
  t.match(configError(() => readConfig({}, { REDIS_CLUSTER: 'true' }, dir)).message, /REDIS_CLUSTER=true needs REDIS_URL/)
  t.match(configError(() => readConfig({}, { REDIS_CLUSTER: 'true', REDIS_URL: 'redis://a:1,http://b:2' }, dir)).message, /redis:\/\/ or rediss:\/\//)
  const bad = configError(() => readConfig({}, { REDIS_CLUSTER: 'true', REDIS_URL: 'redis://:secret@a:1,::nope' }, dir)).message
  t.match(bad, /is not a URL/)
  t.notMatch(bad, /secret/, 'a password in the URL is not repeated')
  t.match(configError(() => readConfig({}, { REDIS_CLUSTER: 'maybe' }, dir)).message, /REDIS_CLUSTER/)
})
