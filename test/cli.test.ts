// The `gatecast` command line, as real processes in a temporary working directory.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { verifyPassword } from '../src/auth/users.ts'
import { gatecast } from './helpers/cli.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-cli-'))
const mode = (file: string): number => statSync(file).mode & 0o777
const usersOf = (dir: string): Record<string, { password: string, roles?: string[], demo?: boolean }> =>
  JSON.parse(readFileSync(join(dir, 'data', 'users.json'), 'utf8')).users

t.test('user add / list / remove', async t => {
  const dir = tmp()
  const password = 'correct-horse-battery'

  const add = await gatecast(['user', 'add', 'alice'], { cwd: dir, input: `${password}\nignored second line\n` })
  t.equal(add.code, 0, `user add: exit 0 (${add.stderr})`)
  t.match(add.stdout, /alice/)
  const file = join(dir, 'data', 'users.json')
  t.equal(mode(file), 0o600, 'users file is 0600')
  const text = readFileSync(file, 'utf8')
  t.notOk(text.includes(password), 'the password is not in the file')
  t.notOk(add.stdout.includes(password) || add.stderr.includes(password), 'nor echoed')
  const alice = usersOf(dir).alice
  t.match(alice.password, /^scrypt\$/, 'a scrypt hash')
  t.equal(await verifyPassword(password, alice.password), true, 'the hash is of the first stdin line')
  t.equal(await verifyPassword('ignored second line', alice.password), false)
  t.notOk(alice.demo, 'not a demo user')
  t.same(alice.roles ?? [], [])

  // --role admin; a password without a trailing newline works too
  const admin = await gatecast(['user', 'add', 'root', '--role', 'admin'], { cwd: dir, input: 'root-password-1' })
  t.equal(admin.code, 0)
  t.same(usersOf(dir).root.roles, ['admin'], '--role admin stored')
  t.equal(await verifyPassword('root-password-1', usersOf(dir).root.password), true)

  const list = await gatecast(['user', 'list'], { cwd: dir })
  t.equal(list.code, 0)
  const lines = list.stdout.trim().split('\n')
  t.equal(lines.length, 2, 'one line per user')
  t.match(list.stdout, /^alice\s*$/m)
  t.match(list.stdout, /^root\s.*admin/m, 'roles listed')
  t.notMatch(list.stdout, /scrypt|password/, 'no hashes listed')

  const [remove, unknown] = await Promise.all([
    gatecast(['user', 'remove', 'alice'], { cwd: dir }),
    gatecast(['user', 'remove', 'ghost'], { cwd: dir })
  ])
  t.equal(remove.code, 0)
  t.match(remove.stdout, /alice/)
  t.same(Object.keys(usersOf(dir)), ['root'], 'alice removed, root kept')
  t.equal(mode(file), 0o600, 'still 0600')
  t.equal(unknown.code, 2, 'removing an unknown user: exit 2')
  t.match(unknown.stderr, /ghost/, 'names the user')
  t.notMatch(unknown.stderr, /\n\s+at /, 'no stack trace')
})

t.test('user add refuses a short or missing password with exit 2', async t => {
  const dir = tmp()
  const [short, none] = await Promise.all([
    gatecast(['user', 'add', 'alice'], { cwd: dir, input: 'short\n' }),
    gatecast(['user', 'add', 'alice'], { cwd: dir, input: '' })
  ])
  t.equal(short.code, 2, 'a too-short password: exit 2')
  t.match(short.stderr, /password/)
  t.equal(none.code, 2, 'no password on stdin: exit 2')
  t.match(none.stderr, /password/)
  t.notOk(existsSync(join(dir, 'data', 'users.json')), 'nothing was written')
})

t.test('--help on every command prints its usage on stdout and exits 0, without reading the configuration', async t => {
  const dir = tmp()
  // production without JWT_SECRET, and a broken users file: any command that
  // read its configuration would fail here
  mkdirSync(join(dir, 'data'))
  writeFileSync(join(dir, 'data', 'users.json'), '{"users": ')
  const env = { NODE_ENV: 'production' }
  const cases: Array<[string[], RegExp]> = [
    [['--help'], /gatecast user add NAME[\s\S]*gatecast token NAME/],
    [['-h'], /gatecast serve \[--plugin PATH\]/],
    [['help'], /gatecast user remove NAME/],
    [['serve', '--help'], /^usage: gatecast serve \[--plugin PATH\][\s\S]*--plugin PATH/],
    [['serve', '-h'], /^usage: gatecast serve/],
    [['user', '--help'], /^usage:\n {2}gatecast user add[\s\S]*gatecast user remove[\s\S]*gatecast user list/],
    [['user', 'add', '--help'], /^usage: gatecast user add NAME \[--role ROLE\][\s\S]*--role ROLE/],
    [['user', 'add', 'alice', '--role', 'admin', '--help'], /^usage: gatecast user add NAME/],
    [['user', 'remove', '--help'], /^usage: gatecast user remove NAME/],
    [['user', 'list', '--help'], /^usage: gatecast user list/],
    [['token', '--help'], /^usage: gatecast token NAME \[--ttl SECONDS\][\s\S]*--channels a,b/],
    [['token', 'alice', '-h'], /^usage: gatecast token NAME/],
    [['help', 'user', 'add'], /^usage: gatecast user add NAME/],
    [['help', 'token'], /^usage: gatecast token NAME/]
  ]
  const results = await Promise.all(cases.map(([args]) => gatecast(args, { cwd: dir, env })))
  cases.forEach(([args, re], i) => {
    const r = results[i]
    const what = `gatecast ${args.join(' ')}`
    t.equal(r.code, 0, `${what}: exit 0 (${r.stderr.slice(0, 200)})`)
    t.match(r.stdout, re, `${what}: its usage`)
    t.equal(r.stderr, '', `${what}: nothing on stderr`)
  })
  t.same(readdirSync(join(dir, 'data')), ['users.json'], 'no secret or users created')

  const unknown = await gatecast(['help', 'frobnicate'], { cwd: dir, env })
  t.equal(unknown.code, 2, 'help for an unknown command: exit 2')
  t.match(unknown.stderr, /frobnicate/)
  t.equal(unknown.stdout, '')
})
