// `gatecast` failures as real processes: usage errors exit 2 with the usage,
// configuration errors (a corrupted users file) exit 1 with one line.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { gatecast, oneLineError } from './helpers/cli.ts'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gatecast-cli-'))

t.test('unknown command, action or a bad option value → exit 2 with usage', async t => {
  const dir = tmp()
  const [unknown, badAction, badTtl] = await Promise.all([
    gatecast(['frobnicate'], { cwd: dir }),
    gatecast(['user', 'frobnicate'], { cwd: dir }),
    gatecast(['token', 'alice', '--ttl', 'soon'], { cwd: dir })
  ])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /frobnicate/)
  t.match(unknown.stderr, /usage/)
  t.match(unknown.stderr, /gatecast user add NAME/)
  t.match(unknown.stderr, /gatecast token NAME/)
  t.notMatch(unknown.stderr, /\n\s+at /, 'no stack trace')
  t.equal(badAction.code, 2, 'an unknown user action: exit 2')
  t.match(badAction.stderr, /usage/)
  t.equal(badTtl.code, 2, 'a bad --ttl: exit 2')
  t.match(badTtl.stderr, /ttl/)
  t.equal(badTtl.stdout, '', 'no token printed')
})

t.test('a corrupted users file → exit 1 with one `gatecast: …` line, no stack trace', async t => {
  const dir = tmp()
  mkdirSync(join(dir, 'data'))
  const file = join(dir, 'data', 'users.json')
  writeFileSync(file, '{"users": {"alice": ', { mode: 0o600 })
  const [list, token] = await Promise.all([
    gatecast(['user', 'list'], { cwd: dir }),
    gatecast(['token', 'alice'], { cwd: dir })
  ])
  for (const [what, r] of [['user list', list], ['token', token]] as const) {
    oneLineError(t, r, /users file/, what)
    t.ok(r.stderr.includes(file), `${what}: names the file`)
    t.equal(r.stdout, '', `${what}: nothing on stdout`)
  }
  t.equal(readFileSync(file, 'utf8'), '{"users": {"alice": ', 'the broken file is left alone')

  writeFileSync(file, '{"users": {"alice": {"password": "hunter2"}}}', { mode: 0o600 })
  const shape = await gatecast(['user', 'add', 'bob'], { cwd: dir, input: 'bob-password-1\n' })
  oneLineError(t, shape, /malformed/, 'wrong shape')
  t.notMatch(shape.stderr, /hunter2/, 'file content not echoed')
  t.notMatch(readFileSync(file, 'utf8'), /bob/, 'not overwritten')
})
