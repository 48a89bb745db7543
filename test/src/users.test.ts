// UserStore and password hashing on a real filesystem.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError } from '../../src/config/config.ts'
import { createDemoUsers, DEMO_USERS, hashPassword, isValidUsername, UserStore, verifyPassword } from '../../src/auth/users.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-users-'))
const mode = (file: string): number => statSync(file).mode & 0o777

t.test('hashPassword / verifyPassword', async t => {
  const hash = await hashPassword('correct horse battery staple')
  t.match(hash, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'scrypt$N$r$p$salt$key')
  t.notMatch(hash, /correct horse/, 'the hash does not contain the password')
  t.equal(await verifyPassword('correct horse battery staple', hash), true, 'round trip')
  t.equal(await verifyPassword('correct horse battery stapl', hash), false, 'wrong password')
  t.equal(await verifyPassword('', hash), false, 'empty password')
  t.equal(await verifyPassword('Correct horse battery staple', hash), false, 'case matters')

  const again = await hashPassword('correct horse battery staple')
  t.not(again, hash, 'a fresh salt every time')
  t.equal(await verifyPassword('correct horse battery staple', again), true)

  const unicode = await hashPassword('pässwörd-🔑')
  t.equal(await verifyPassword('pässwörd-🔑', unicode), true, 'unicode passwords')
  t.equal(await verifyPassword('passwort-🔑', unicode), false)

  // malformed stored values never verify, and never throw
  for (const bad of ['', 'plain-text', 'scrypt$', 'bcrypt$1$2$3$abc$def', 'scrypt$x$8$1$c2FsdA==$a2V5', hash.split('$').slice(0, 5).join('$')]) {
    t.equal(await verifyPassword('correct horse battery staple', bad), false, `malformed ${JSON.stringify(bad.slice(0, 20))}`)
  }
})

t.test('a missing file is an empty store; set() creates it with mode 0600', async t => {
  const dir = tmp()
  const file = join(dir, 'nested', 'users.json')
  const store = UserStore.open(file)
  t.same(store.list(), [])
  t.notOk(existsSync(file), 'opening does not create the file')

  await store.set('alice', 'alice-password', { roles: ['admin'] })
  t.ok(existsSync(file))
  t.equal(mode(file), 0o600, 'users file is 0600')
  t.equal(mode(join(dir, 'nested')), 0o700, 'a created data directory is 0700')

  const text = readFileSync(file, 'utf8')
  t.notMatch(text, /alice-password/, 'no plain-text password on disk')
  const json = JSON.parse(text)
  t.match(json.users.alice.password, /^scrypt\$/)
  t.same(json.users.alice.roles, ['admin'])

  // a file that became world-readable is 0600 again after the next save
  chmodSync(file, 0o644)
  await store.set('bob', 'bob-password')
  t.equal(mode(file), 0o600, 'still 0600 after a rewrite')
  t.ok(store.remove('bob'))
  t.equal(mode(file), 0o600, 'still 0600 after remove')
})

t.test('writes are atomic: no temp files are left behind, content survives reopen', async t => {
  const dir = tmp()
  const file = join(dir, 'users.json')
  const store = UserStore.open(file)
  await store.set('alice', 'alice-password')
  await store.set('bob', 'bob-password', { roles: ['admin'] })
  await store.set('carol', 'carol-password')
  t.ok(store.remove('carol'))
  t.equal(store.remove('carol'), false, 'removing an unknown user is false')
  await store.set('alice', 'alice-new-password') // overwrite
  t.same(readdirSync(dir), ['users.json'], 'only users.json in the directory')

  const reopened = UserStore.open(file)
  t.same(reopened.list().map(u => u.name).sort(), ['alice', 'bob'])
  t.same(reopened.list().find(u => u.name === 'bob'), { name: 'bob', roles: ['admin'], demo: false })
  t.same(await reopened.verify('alice', 'alice-new-password'), { id: 'alice', name: 'alice', roles: undefined, channels: undefined })
  t.equal(await reopened.verify('alice', 'alice-password'), null, 'the old password no longer works')
  t.same(await reopened.verify('bob', 'bob-password'), { id: 'bob', name: 'bob', roles: ['admin'], channels: undefined })
  t.equal(await reopened.verify('carol', 'carol-password'), null, 'removed user')
  t.equal(await reopened.verify('nobody', 'x'), null, 'unknown user')
  t.equal(reopened.get('constructor'), undefined, 'prototype names are not users')
  t.equal(await reopened.verify('__proto__', 'x'), null)
})

t.test('the synced write: same bytes and mode as before, whatever the umask; a failed write leaves no temp file', async t => {
  const dir = tmp()
  const file = join(dir, 'users.json')
  const store = UserStore.open(file)
  // a umask that would make a plain create 0400: the store still ends at 0600
  const umask = process.umask(0o277)
  try {
    await store.set('alice', 'alice-password', { roles: ['admin'] })
  } finally {
    process.umask(umask)
  }
  t.equal(mode(file), 0o600, '0600 despite the umask')
  const text = readFileSync(file, 'utf8')
  const json = JSON.parse(text)
  t.equal(text, JSON.stringify(json, null, 2) + '\n', 'two-space JSON with a final newline, as before')
  t.same(Object.keys(json), ['users'])
  t.same(Object.keys(json.users), ['alice'])
  t.same(json.users.alice.roles, ['admin'])
  t.equal(await verifyPassword('alice-password', json.users.alice.password), true)
  t.same(readdirSync(dir), ['users.json'], 'no temp file left')

  // a write that cannot be renamed into place (a directory is in the way) fails
  // and removes its temp file
  const blocked = join(dir, 'blocked')
  const other = UserStore.open(join(blocked, 'users.json'))
  mkdirSync(join(blocked, 'users.json', 'in-the-way'), { recursive: true })
  t.throws(() => other.save(), 'the rename fails')
  t.same(readdirSync(blocked), ['users.json'], 'no temp file beside the blocked path')
})

t.test('user names are validated', async t => {
  const store = UserStore.open(join(tmp(), 'users.json'))
  for (const bad of ['', 'has space', 'a/b', '../x', 'x'.repeat(65), 'ünï']) {
    t.equal(isValidUsername(bad), false, `${JSON.stringify(bad)} is invalid`)
    await t.rejects(store.set(bad, 'password-123'), ConfigError)
  }
  for (const good of ['alice', 'a.b-c_d@example.com', 'x'.repeat(64), '42']) t.equal(isValidUsername(good), true, `${good} is valid`)
})

t.test('a corrupted file → ConfigError with a clear message naming the file', async t => {
  const dir = tmp()
  const cases: Array<[string, string, RegExp]> = [
    ['bad JSON', '{"users": {', /not valid JSON/],
    ['empty file', '', /not valid JSON/],
    ['an array', '[]', /malformed/],
    ['users is an array', '{"users": []}', /malformed/],
    ['no users key', '{"alice": "x"}', /malformed/],
    ['plain-text password', '{"users": {"alice": {"password": "hunter2"}}}', /malformed.*\/users\/alice\/password/],
    ['roles not an array', '{"users": {"alice": {"password": "scrypt$1$2$3$a$b", "roles": "admin"}}}', /malformed.*roles/],
    ['valid user beside a bad name', '{"users": {"alice": {"password": "scrypt$1$2$3$a$b"}, "a b": {"password": "hunter2"}}}', /malformed/],
    ['bad name with a non-record', '{"users": {"x/y": "hunter2"}}', /malformed/],
    ['unknown field', '{"users": {"alice": {"password": "scrypt$1$2$3$a$b", "admin": true}}}', /malformed/]
  ]
  for (const [what, content, re] of cases) {
    const file = join(dir, `${what.replace(/\W+/g, '-')}.json`)
    writeFileSync(file, content)
    let err: unknown
    try {
      UserStore.open(file)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `${what}: ConfigError`)
    const message = (err as Error | undefined)?.message ?? ''
    t.ok(message.includes(file), `${what}: the message names the file`)
    t.match(message, re, `${what}: says what is wrong`)
    t.match(message, /gatecast user add/, `${what}: says how to fix it`)
    t.notMatch(message, /\n/, `${what}: one line`)
    t.notMatch(message, /hunter2/, `${what}: does not echo file content`)
    t.equal(readFileSync(file, 'utf8'), content, `${what}: the file is left as it was`)
  }
})

t.test('demo users', async t => {
  const file = join(tmp(), 'users.json')
  const store = UserStore.open(file)
  t.equal(store.hasDemoUsers(), false)
  const created = await createDemoUsers(store)
  t.same(created.map(u => u.name), DEMO_USERS.map(u => u.name))
  t.same(created.map(u => u.name), ['alice', 'bob', 'admin'])
  t.same(created.find(u => u.name === 'admin')?.roles, ['admin'])
  t.equal(new Set(created.map(u => u.password)).size, 3, 'every demo user has its own password')
  for (const u of created) {
    t.ok(u.password.length >= 12, `${u.name}: a random password of at least 12 characters`)
    t.same(await store.verify(u.name, u.password), { id: u.name, name: u.name, roles: u.roles.length > 0 ? u.roles : undefined, channels: undefined })
  }
  const reopened = UserStore.open(file)
  t.equal(reopened.hasDemoUsers(), true)
  t.ok(reopened.list().every(u => u.demo), 'all flagged demo')
  t.equal(mode(file), 0o600)
  // replacing a demo user with a real one clears the flag
  await reopened.set('admin', 'a-real-password', { roles: ['admin'] })
  t.equal(reopened.list().find(u => u.name === 'admin')?.demo, false)
  reopened.remove('alice')
  reopened.remove('bob')
  t.equal(UserStore.open(file).hasDemoUsers(), false)
})
