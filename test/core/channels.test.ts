// The channel rules of the contract (section 3) as plain functions, no port:
// names `^[A-Za-z0-9_.:@#,-]{1,128}$`, `#` user lists, `ns:rest` namespaces with
// their options over the defaults, and the token's `channels` claim (`*` globs).
import t from 'tap'
import { ChannelRules, channelAllowedByClaim, isValidChannel, userMayJoin, type ChannelOptions } from '../../src/core/channels.ts'

const DEFAULTS = { historySize: 100, historyTtl: 300 }
const NAMESPACES = {
  news: { publish: false },
  room: { presence: true },
  quiet: { historySize: 0, historyTtl: 0 },
  long: { historySize: 1000, historyTtl: 3600, presence: true, publish: false }
}

/** A name for a test message: quoted, and printable ASCII only (TAP output is line-based). */
const show = (s: string): string => JSON.stringify(s).replace(/[^\x20-\x7e]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/** What resolve() must give: the defaults, with the given fields replaced. */
const expected = (o: Partial<ChannelOptions>): ChannelOptions => ({
  namespace: null, publish: true, presence: false, historySize: 100, historyTtl: 300, allowedUsers: null, ...o
})

t.test('isValidChannel: every allowed character, 1 to 128 of them', async t => {
  for (const name of [
    'chat', 'a', 'Z', '0', '_', '.', ':', '@', '#', ',', '-',
    'room:1', 'dm#alice,bob', 'user@example.com', 'a.b-c_d', 'ns:sub:leaf', 'room:1#alice',
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@#,-',
    'x'.repeat(128)
  ]) t.equal(isValidChannel(name), true, `valid: ${show(name)}`)
})

t.test('isValidChannel: empty, too long, or any other character is refused', async t => {
  for (const name of [
    '', 'x'.repeat(129), `${'a'.repeat(128)}#`,
    'a b', ' chat', 'chat ', 'a/b', 'a\\b', 'a%20b', 'a?b', 'a&b', 'a=b', 'a+b', 'a*', '*', 'room:*',
    'a$', '^a', 'a|b', '(a)', '[a]', '{a}', 'a!', 'a~', "a'b", 'a"b', 'a;b', 'a<b>', '%',
    'é', 'caf\u00e9', 'a\u00a0b', 'chat\u200b', '🙂', 'Ａ',
    'chat\n', '\nchat', 'ch\nat', 'chat\r', 'chat\t', 'chat\u0000', '\u2028'
  ]) t.equal(isValidChannel(name), false, `invalid: ${show(name)}`)
})

t.test('isValidChannel gives the same answer every time (no regex state between calls)', async t => {
  for (let i = 0; i < 4; i++) {
    t.equal(isValidChannel('chat'), true)
    t.equal(isValidChannel('bad name'), false)
  }
})

t.test('resolve: a name without a namespace gets the defaults', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  t.same(rules.resolve('chat'), expected({}))
  t.same(rules.resolve('news'), expected({}), 'a namespace name alone, without `:`, is not in the namespace')
  t.same(rules.resolve('newsroom:1'), expected({ namespace: 'newsroom' }), 'an unconfigured namespace gets the defaults')
  t.same(rules.resolve('News:1'), expected({ namespace: 'News' }), 'namespaces are case-sensitive')
  t.same(new ChannelRules({ historySize: 7, historyTtl: 9 }).resolve('chat'), expected({ historySize: 7, historyTtl: 9 }), 'the defaults given, publish on and presence off')
  t.same(new ChannelRules({ historySize: 7, historyTtl: 9 }).resolve('room:1'), expected({ namespace: 'room', historySize: 7, historyTtl: 9 }), 'no namespaces configured')
})

t.test('resolve: `ns:rest` takes the namespace options over the defaults, field by field', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  t.same(rules.resolve('news:today'), expected({ namespace: 'news', publish: false }))
  t.same(rules.resolve('room:1'), expected({ namespace: 'room', presence: true }))
  t.same(rules.resolve('quiet:x'), expected({ namespace: 'quiet', historySize: 0, historyTtl: 0 }), 'a 0 in the namespace is kept, not replaced by the default')
  t.same(rules.resolve('long:x'), expected({ namespace: 'long', historySize: 1000, historyTtl: 3600, presence: true, publish: false }))
  t.same(rules.resolve('room:a:b'), expected({ namespace: 'room', presence: true }), 'the namespace ends at the first `:`')
  t.same(rules.resolve('room:'), expected({ namespace: 'room', presence: true }))
})

t.test('resolve: only configured namespaces count, not names inherited by plain objects', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  for (const ns of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
    t.same(rules.resolve(`${ns}:1`), expected({ namespace: ns }), `${ns}:1`)
  }
})

t.test('resolve: `#` makes a user list of the part after it, empty entries dropped', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  t.same(rules.resolve('dm#alice,bob').allowedUsers, ['alice', 'bob'])
  t.same(rules.resolve('dm#alice').allowedUsers, ['alice'])
  t.same(rules.resolve('dm#alice,,bob').allowedUsers, ['alice', 'bob'])
  t.same(rules.resolve('dm#,alice,').allowedUsers, ['alice'])
  t.same(rules.resolve('dm#').allowedUsers, [], 'an empty list admits nobody: it is not "open"')
  t.same(rules.resolve('dm#,,').allowedUsers, [])
  t.same(rules.resolve('#alice').allowedUsers, ['alice'])
  t.same(rules.resolve('dm#user@example.com,x.y').allowedUsers, ['user@example.com', 'x.y'])
  t.equal(rules.resolve('dm').allowedUsers, null, 'no `#`: open to everyone the token allows')
  t.equal(rules.resolve('room:1').allowedUsers, null)
  t.same(rules.resolve('dm#alice,bob'), expected({ allowedUsers: ['alice', 'bob'] }), 'a user list does not change the other options')
})

t.test('resolve: `#` after a namespace keeps the namespace; a `:` in the user list makes none', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  t.same(rules.resolve('room:1#alice,bob'), expected({ namespace: 'room', presence: true, allowedUsers: ['alice', 'bob'] }))
  t.same(rules.resolve('news:x#carol'), expected({ namespace: 'news', publish: false, allowedUsers: ['carol'] }))
  t.same(rules.resolve('dm#org:alice,bob'), expected({ allowedUsers: ['org:alice', 'bob'] }), 'user ids may hold `:`')
  t.same(rules.resolve('room#alice:1'), expected({ allowedUsers: ['alice:1'] }), 'not namespace `room#alice`, nor `room`')
})

t.test('resolve: the cache answers per name and per instance', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  const first = rules.resolve('room:1')
  t.equal(rules.resolve('room:1'), first, 'the same name resolves once and is served from the cache')
  t.same(rules.resolve('room:1#alice').allowedUsers, ['alice'], 'a cached name does not answer for its `#` variant')
  t.same(rules.resolve('room:1#bob').allowedUsers, ['bob'])
  t.equal(rules.resolve('room:1').allowedUsers, null, 'nor the other way round')
  t.same(rules.resolve('room:2'), expected({ namespace: 'room', presence: true }))

  const other = new ChannelRules({ historySize: 5, historyTtl: 6 }, { room: { publish: false } })
  t.same(other.resolve('room:1'), expected({ namespace: 'room', publish: false, historySize: 5, historyTtl: 6 }), 'another instance has its own rules and cache')
  t.same(rules.resolve('room:1'), expected({ namespace: 'room', presence: true }), 'and does not disturb the first')

  // far more names than the cache keeps: answers stay right on both sides of its limit
  for (let i = 0; i < 12_000; i++) {
    const name = i % 2 === 0 ? `room:${i}` : `dm#u${i},v${i}`
    const opts = rules.resolve(name)
    if (i % 2 === 0 ? opts.namespace !== 'room' || !opts.presence : opts.allowedUsers?.join() !== `u${i},v${i}`) {
      t.fail(`wrong options for ${name}: ${JSON.stringify(opts)}`)
      break
    }
  }
  t.same(rules.resolve('room:0'), expected({ namespace: 'room', presence: true }))
  t.same(rules.resolve('dm#u1,v1').allowedUsers, ['u1', 'v1'])
  t.same(rules.resolve('news:z'), expected({ namespace: 'news', publish: false }))
})

t.test('channelAllowedByClaim: no claim allows every channel; an empty claim allows none', async t => {
  for (const name of ['chat', 'room:1', 'dm#alice,bob']) {
    t.equal(channelAllowedByClaim(name, undefined), true, `no claim: ${name}`)
    t.equal(channelAllowedByClaim(name, []), false, `[]: ${name}`)
  }
})

t.test('channelAllowedByClaim: a pattern without `*` matches exactly the whole name', async t => {
  t.equal(channelAllowedByClaim('chat', ['chat']), true)
  t.equal(channelAllowedByClaim('chatter', ['chat']), false, 'anchored at the end')
  t.equal(channelAllowedByClaim('mychat', ['chat']), false, 'anchored at the start')
  t.equal(channelAllowedByClaim('Chat', ['chat']), false, 'case-sensitive')
  t.equal(channelAllowedByClaim('dm#alice', ['dm']), false, 'the whole name, `#` part included')
  t.equal(channelAllowedByClaim('room:1', ['room']), false)
  t.equal(channelAllowedByClaim('chat', ['']), false, 'an empty pattern matches no name')
  t.equal(channelAllowedByClaim('chat', ['news', 'chat']), true, 'any pattern of the list')
  t.equal(channelAllowedByClaim('sport', ['news', 'chat']), false)
})

t.test('channelAllowedByClaim: `*` matches any run of characters, the empty one included', async t => {
  t.equal(channelAllowedByClaim('chat', ['*']), true)
  t.equal(channelAllowedByClaim('dm#alice,bob', ['*']), true)
  t.equal(channelAllowedByClaim('room:1', ['room:*']), true)
  t.equal(channelAllowedByClaim('room:', ['room:*']), true, '`*` may match nothing')
  t.equal(channelAllowedByClaim('room:a:b', ['room:*']), true, '`*` crosses `:`')
  t.equal(channelAllowedByClaim('room:1#alice', ['room:*']), true, '`*` crosses `#`')
  t.equal(channelAllowedByClaim('room', ['room:*']), false)
  t.equal(channelAllowedByClaim('myroom:1', ['room:*']), false, 'still anchored at the start')
  t.equal(channelAllowedByClaim('a:public', ['*:public']), true)
  t.equal(channelAllowedByClaim('a:public:x', ['*:public']), false, 'still anchored at the end')
  t.equal(channelAllowedByClaim('axbyc', ['a*b*c']), true, 'every `*`, not only the first')
  t.equal(channelAllowedByClaim('abc', ['a*b*c']), true)
  t.equal(channelAllowedByClaim('axbyd', ['a*b*c']), false)
  t.equal(channelAllowedByClaim('ab', ['a**b']), true)
  t.equal(channelAllowedByClaim('dm#alice,bob', ['dm#*alice*']), true)
  t.equal(channelAllowedByClaim('dm#bob', ['dm#*alice*']), false)
})

t.test('channelAllowedByClaim: every other character of a pattern is literal, regex metacharacters too', async t => {
  t.equal(channelAllowedByClaim('a.c', ['a.c']), true)
  t.equal(channelAllowedByClaim('abc', ['a.c']), false, '`.` is a dot')
  t.equal(channelAllowedByClaim('.abc', ['.*']), true)
  t.equal(channelAllowedByClaim('abc', ['.*']), false, '`.*` is a dot and then anything')
  t.equal(channelAllowedByClaim('x.example', ['*.example']), true)
  t.equal(channelAllowedByClaim('xexample', ['*.example']), false)
  t.equal(channelAllowedByClaim('a-c', ['a-c']), true)
  t.equal(channelAllowedByClaim('b', ['[a-c]']), false)
  t.equal(channelAllowedByClaim('aa', ['a+']), false)
  t.equal(channelAllowedByClaim('a', ['a+']), false)
  t.equal(channelAllowedByClaim('a', ['a?']), false, '`?` is no wildcard')
  t.equal(channelAllowedByClaim('ab', ['a?']), false)
  t.equal(channelAllowedByClaim('a', ['a|b']), false)
  t.equal(channelAllowedByClaim('b', ['a|b']), false)
  t.equal(channelAllowedByClaim('chat', ['nope|chat']), false, 'no alternation smuggled in')
  t.equal(channelAllowedByClaim('chat', ['.*|chat']), false)
  t.equal(channelAllowedByClaim('a', ['(a)']), false)
  t.equal(channelAllowedByClaim('a', ['^a$']), false)
  t.equal(channelAllowedByClaim('aa', ['a{2}']), false)
  t.equal(channelAllowedByClaim('1', ['\\d']), false)
  t.equal(channelAllowedByClaim('chat', ['chat$']), false)
  for (const broken of ['(', ')', '[', ']', '{', '\\', 'a(b', 'room[', '*(*', '+', '?', '*?', '**+']) {
    t.doesNotThrow(() => channelAllowedByClaim('room:1', [broken]), `pattern ${show(broken)} does not throw`)
    t.equal(channelAllowedByClaim('room:1', [broken]), false, `pattern ${show(broken)} matches nothing here`)
  }
  t.equal(channelAllowedByClaim('room:1', ['(', 'room:*']), true, 'a bad pattern does not spoil the others')
})

t.test('channelAllowedByClaim: a pattern gives the same answer on every call', async t => {
  for (let i = 0; i < 3; i++) {
    t.equal(channelAllowedByClaim('room:1', ['room:*']), true)
    t.equal(channelAllowedByClaim('news:1', ['room:*']), false)
    t.equal(channelAllowedByClaim('abc', ['a.c']), false)
  }
})

t.test('userMayJoin: a `#` list admits exactly its users, and the claim must allow the name too', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  const dm = 'dm#alice,bob'
  const opts = rules.resolve(dm)
  t.equal(userMayJoin(dm, opts, 'alice', undefined), true)
  t.equal(userMayJoin(dm, opts, 'bob', undefined), true)
  for (const other of ['carol', '', 'ali', 'alice2', 'Alice', 'alice,bob', 'alice ', 'dm']) {
    t.equal(userMayJoin(dm, opts, other, undefined), false, `not ${show(other)}`)
  }
  t.equal(userMayJoin(dm, opts, 'carol', ['*']), false, 'a claim allowing everything does not open a user list')
  t.equal(userMayJoin(dm, opts, 'alice', ['dm#*']), true)
  t.equal(userMayJoin(dm, opts, 'alice', ['room:*']), false, 'listed, but the claim does not allow the channel')
  t.equal(userMayJoin(dm, opts, 'alice', ['dm']), false, 'the claim is matched against the whole name')
  t.equal(userMayJoin(dm, opts, 'alice', []), false)
})

t.test('userMayJoin: empty entries of a `#` list admit nobody, the empty user id included', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  const padded = 'dm#,alice,,'
  t.equal(userMayJoin(padded, rules.resolve(padded), 'alice', undefined), true)
  t.equal(userMayJoin(padded, rules.resolve(padded), '', undefined), false)
  for (const name of ['dm#', 'dm#,', 'dm#,,']) {
    for (const user of ['', 'alice', 'dm']) {
      t.equal(userMayJoin(name, rules.resolve(name), user, undefined), false, `${name} refuses ${show(user)}`)
      t.equal(userMayJoin(name, rules.resolve(name), user, ['*']), false, `${name} refuses ${show(user)} whatever the claim`)
    }
  }
})

t.test('userMayJoin: without `#` the claim alone decides', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  for (const name of ['chat', 'room:1', 'news:today']) {
    const opts = rules.resolve(name)
    t.equal(userMayJoin(name, opts, 'anyone', undefined), true, `${name}: no claim`)
    t.equal(userMayJoin(name, opts, 'anyone', ['*']), true, `${name}: *`)
    t.equal(userMayJoin(name, opts, 'anyone', []), false, `${name}: []`)
    t.equal(userMayJoin(name, opts, 'anyone', ['sport:*']), false, `${name}: another pattern`)
  }
  t.equal(userMayJoin('room:1', rules.resolve('room:1'), 'anyone', ['room:*', 'chat']), true)
  t.equal(userMayJoin('chat', rules.resolve('chat'), 'anyone', ['room:*', 'chat']), true)
})

t.test('userMayJoin: a user list in a namespace needs both the list and the claim', async t => {
  const rules = new ChannelRules(DEFAULTS, NAMESPACES)
  const name = 'room:1#alice'
  const opts = rules.resolve(name)
  t.equal(opts.presence, true, 'the namespace options still apply')
  t.equal(userMayJoin(name, opts, 'alice', ['room:*']), true)
  t.equal(userMayJoin(name, opts, 'bob', ['room:*']), false)
  t.equal(userMayJoin(name, opts, 'alice', ['room:1']), false)
  t.equal(userMayJoin(name, opts, 'alice', ['room:1#alice']), true)
})
