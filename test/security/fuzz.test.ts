// Property-based fuzz of the client frame parser (issue 5, item 7), with
// fast-check: as a pure function, and over a real socket against a model of
// contract §3 written here, independently of src/protocol.ts. Every input must
// yield exactly what the model says — a pong, an ack + message, `refreshed`, an
// `error` frame with a documented code, or a documented close (1007, 1008,
// 1009, 4429) — never a crash, never an undocumented frame; and a bystander on
// the same channel only ever sees well-formed `message` frames.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { ClientFrameSchema, parseClientFrame } from '../../src/protocol/frames.ts'
import { connect, type Client, type Frame } from '../helpers/client.ts'
import { bearer, claims, closedWithin, signJwt, start } from '../helpers/ws-extra.ts'
import { waitFor } from '../helpers/wait.ts'
import { bystander, depthOf, isServerFrame, nested, serverFrameProblem } from '../helpers/adversary.ts'
import type { TestApp } from '../helpers/app.ts'

const MAX_PAYLOAD = 4096
const MAX_DEPTH = 32
const DOCUMENTED_CLOSES = [1007, 1008, 1009, 4429]
const ERROR_CODES = ['bad_request', 'forbidden', 'rate_limited', 'too_large', 'internal']
// placeholders the socket fuzz swaps for real tokens of the fuzzing user and of someone else
const VALID = '<valid-token>'
const OTHER = '<other-users-token>'

// --- the model (contract §3, client → server frames) -------------------------------------

type Ref = string | number
type Expect =
  | { kind: 'close', code: number }
  | { kind: 'error', code: string, ref: Ref | undefined }
  | { kind: 'publish', data: unknown, ref: Ref | undefined }
  | { kind: 'pong' }
  | { kind: 'refreshed' }

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const refOf = (v: unknown): Ref | undefined => {
  if (v === null || typeof v !== 'object' || !Object.hasOwn(v, 'ref')) return undefined
  const ref = (v as { ref: unknown }).ref
  // a number past doubles (10000e305) parses to Infinity, which no error frame can carry back
  return typeof ref === 'string' || (typeof ref === 'number' && Number.isFinite(ref)) ? ref : undefined
}
const validRef = (v: unknown): boolean => (typeof v === 'string' && v.length <= 256) || (typeof v === 'number' && Number.isFinite(v))
const onlyKeys = (o: Record<string, unknown>, keys: string[]): boolean => Object.keys(o).every(k => keys.includes(k))

/** Whether a parsed value is a valid client frame, by the contract's rules. */
function modelValid (v: unknown): boolean {
  if (!isObject(v)) return false
  switch (v.type) {
    case 'publish': return onlyKeys(v, ['type', 'data', 'ref']) && Object.hasOwn(v, 'data') && (!Object.hasOwn(v, 'ref') || validRef(v.ref))
    case 'ping': return onlyKeys(v, ['type'])
    case 'refresh': return onlyKeys(v, ['type', 'token']) && typeof v.token === 'string' && v.token.length >= 1 && v.token.length <= 8192
    default: return false
  }
}

/** What the server must answer to one text frame (already decoded as the server decodes it). */
function expectText (text: string, tokens: { valid: string }): Expect {
  if (Buffer.byteLength(text) > MAX_PAYLOAD) return { kind: 'close', code: 1009 }
  let v: unknown
  try { v = JSON.parse(text) } catch { return { kind: 'error', code: 'bad_request', ref: undefined } }
  if (!modelValid(v)) return { kind: 'error', code: 'bad_request', ref: refOf(v) }
  const f = v as Record<string, unknown>
  if (f.type === 'ping') return { kind: 'pong' }
  if (f.type === 'refresh') return f.token === tokens.valid ? { kind: 'refreshed' } : { kind: 'error', code: 'forbidden', ref: undefined }
  const ref = f.ref as Ref | undefined
  if (depthOf(f.data) > MAX_DEPTH) return { kind: 'error', code: 'bad_request', ref }
  return { kind: 'publish', data: JSON.parse(JSON.stringify(f.data)), ref }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

type Input = { kind: 'text', text: string } | { kind: 'bytes', bytes: Uint8Array } | { kind: 'binary', bytes: Uint8Array }

function expectInput (input: Input, tokens: { valid: string }): Expect {
  if (input.kind === 'text') return expectText(Buffer.from(input.text).toString(), tokens) // lone surrogates go out as U+FFFD
  if (input.bytes.length > MAX_PAYLOAD) return { kind: 'close', code: 1009 }
  if (input.kind === 'binary') return { kind: 'error', code: 'bad_request', ref: undefined }
  let text: string
  try { text = utf8.decode(input.bytes) } catch { return { kind: 'close', code: 1007 } }
  return expectText(text, tokens)
}

// --- arbitraries ---------------------------------------------------------------------------

const jsonText = (maxDepth = 4): fc.Arbitrary<string> => fc.jsonValue({ maxDepth }).map(v => JSON.stringify(v))
const keyArb = fc.constantFrom('type', 'data', 'ref', 'token', 'x', '__proto__', 'constructor', 'prototype', 'TYPE', '')
const refText = fc.oneof(
  fc.string({ maxLength: 300 }).map(s => JSON.stringify(s)),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(n => JSON.stringify(n)),
  fc.constantFrom('true', 'null', '[]', '{}', '"r"', '0', '-1.5')
)
const typeText = fc.constantFrom('"publish"', '"ping"', '"refresh"', '"Publish"', '"pong"', '1', 'null', '["ping"]')
const tokenText = fc.oneof(
  fc.constantFrom(JSON.stringify(VALID), JSON.stringify(OTHER), '""', '42', 'null'),
  fc.string({ maxLength: 40 }).map(s => JSON.stringify(s))
)
const dataText = fc.oneof({ weight: 5, arbitrary: jsonText() }, { weight: 1, arbitrary: fc.integer({ min: 28, max: 36 }).map(d => nested(d)) })

/** A frame-shaped object written as JSON text by hand: any keys, duplicates included. */
const frameText: fc.Arbitrary<string> = fc.tuple(
  fc.oneof(
    fc.record({ type: fc.constant('"publish"'), data: fc.option(dataText, { nil: undefined }), ref: fc.option(refText, { nil: undefined }) }),
    fc.record({ type: fc.constant('"ping"') }),
    fc.record({ type: fc.constant('"refresh"'), token: fc.option(tokenText, { nil: undefined }) }),
    fc.record({ type: typeText })
  ),
  fc.array(fc.tuple(keyArb, fc.oneof(typeText, refText, dataText)), { maxLength: 2 })
).map(([base, extra]) => {
  const pairs: Array<[string, string]> = Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined)
  pairs.push(...extra)
  return '{' + pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',') + '}'
})

const validFrameText = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant('publish'), data: fc.jsonValue({ maxDepth: 3 }), ref: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()) }, { requiredKeys: ['type', 'data'] }).map(f => JSON.stringify(f)) },
  { weight: 1, arbitrary: fc.constant('{"type":"ping"}') },
  { weight: 1, arbitrary: fc.constant(`{"type":"refresh","token":${JSON.stringify(VALID)}}`) }
)

/** A valid frame damaged by a few character-level edits. */
const mutatedText: fc.Arbitrary<string> = fc.tuple(
  validFrameText,
  fc.array(fc.tuple(fc.constantFrom('delete', 'insert', 'replace', 'truncate', 'duplicate'), fc.nat(), fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', '0', 'e', '-', ' ', 'x', '\u0000', '\u2028', '\uffff')), { minLength: 1, maxLength: 4 })
).map(([text, edits]) => {
  let s = text
  for (const [op, at, ch] of edits) {
    const i = s.length === 0 ? 0 : at % s.length
    if (op === 'delete') s = s.slice(0, i) + s.slice(i + 1)
    else if (op === 'insert') s = s.slice(0, i) + ch + s.slice(i)
    else if (op === 'replace') s = s.slice(0, i) + ch + s.slice(i + 1)
    else if (op === 'truncate') s = s.slice(0, i)
    else s = s.slice(0, i) + s.slice(i, i + 8) + s.slice(i)
  }
  return s
})

const anyText = fc.oneof(
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 120 }) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 4, arbitrary: frameText },
  { weight: 4, arbitrary: validFrameText },
  { weight: 4, arbitrary: mutatedText },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: MAX_PAYLOAD - 40, maxLength: MAX_PAYLOAD + 40 }).map(s => `{"type":"publish","data":${JSON.stringify(s)}}`) }
)

const inputArb: fc.Arbitrary<Input> = fc.oneof(
  { weight: 20, arbitrary: anyText.map(text => ({ kind: 'text' as const, text })) },
  // raw bytes as a text frame: most are not UTF-8 (1007), some are, and some are valid frames with a bad byte
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map(bytes => ({ kind: 'bytes' as const, bytes })) },
  { weight: 1, arbitrary: fc.tuple(validFrameText, fc.nat(), fc.constantFrom(0xff, 0xc0, 0xed, 0x80, 0xf5)).map(([s, at, b]) => { const buf = Buffer.from(s); buf[at % buf.length] = b; return { kind: 'bytes' as const, bytes: new Uint8Array(buf) } }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map(bytes => ({ kind: 'binary' as const, bytes })) }
)

const describeInput = (i: Input): string => i.kind === 'text' ? JSON.stringify(i.text).slice(0, 200) : `${i.kind} ${Buffer.from(i.bytes).toString('hex').slice(0, 200)}`

// --- the pure parser ----------------------------------------------------------------------------

t.test('parseClientFrame: never throws; ok ⇔ the schema accepts ⇔ the model accepts; refs echoed', async t => {
  let oks = 0
  fc.assert(fc.property(anyText, text => {
    const r = parseClientFrame(text)
    let parsed: unknown
    let json = true
    try { parsed = JSON.parse(text) } catch { json = false }
    if (!json) {
      assert.equal(r.ok, false)
      return
    }
    assert.equal(r.ok, Value.Check(ClientFrameSchema, parsed), 'ok ⇔ ClientFrameSchema')
    assert.equal(r.ok, modelValid(parsed), 'ok ⇔ the contract model')
    if (r.ok) {
      oks++
      assert.deepEqual(r.frame, parsed, 'the frame is the parsed value')
    } else {
      assert.equal(typeof r.message, 'string')
      assert.ok(r.message.length > 0)
      const ref = refOf(parsed)
      if (ref !== undefined && Number.isFinite(ref as number | string)) assert.equal(r.ref, ref, 'the ref is echoed')
    }
  }), { numRuns: 3000 })
  t.ok(oks > 200, `a fair share of the inputs were valid frames (${oks})`)
})

t.test('parseClientFrame: numbers beyond doubles (1e400, 2^53+1, -0) never yield a ref an error frame cannot carry', async t => {
  const edge = fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '9007199254740993', '123456789012345678901234567890', '1E+309', '0.0000000000000000000001')
  fc.assert(fc.property(edge, fc.constantFrom('publish', 'nope', 'ping'), (num, type) => {
    const r = parseClientFrame(`{"type":"${type}","data":1,"ref":${num}}`)
    if (!r.ok && r.ref !== undefined) {
      assert.ok(typeof r.ref === 'string' || Number.isFinite(r.ref), `ref ${num} comes back as ${r.ref}: JSON turns it into null`)
    }
    if (r.ok && r.frame.type === 'publish' && r.frame.ref !== undefined) assert.ok(Number.isFinite(r.frame.ref as number))
  }), { numRuns: 100 })
  t.pass('checked')
})

// --- over a real socket -------------------------------------------------------------------------

interface Rig {
  a: TestApp
  fuzzer: Client
  tokens: { valid: string, other: string }
  /** the fuzzer's own copies of what it published, in order, across reconnects */
  published: Frame[]
  closes: number[]
}

async function openFuzzer (a: TestApp): Promise<Client> {
  const c = await connect(`${a.ws}/ws/fuzz`, bearer(a.token({ sub: 'fuzzer' })))
  await c.nextOfType('ready')
  c.frames.length = 0
  return c
}

const pongs = (c: Client): number => c.frames.filter(f => f.type === 'pong').length

async function until (c: Client, cond: () => boolean, ms: number, what: string): Promise<void> {
  await waitFor(() => cond() || c.ws.readyState !== c.ws.OPEN, { ms, what, every: 2 })
  if (!cond()) throw new Error(`socket closed while waiting for ${what}`)
}

/** Sends one input and checks the answer against the model; reconnects after a close. */
async function exercise (rig: Rig, input: Input): Promise<void> {
  // the placeholders become real tokens before the model looks, so it judges what is sent
  const sent: Input = input.kind === 'text' ? { kind: 'text', text: input.text.replaceAll(VALID, rig.tokens.valid).replaceAll(OTHER, rig.tokens.other) } : input
  const expect = expectInput(sent, { valid: rig.tokens.valid })
  const c = rig.fuzzer
  c.frames.length = 0
  if (sent.kind === 'text') c.ws.send(sent.text)
  else c.ws.send(sent.bytes, { binary: sent.kind === 'binary' })

  if (expect.kind === 'close') {
    const closed = await closedWithin(c, 3000)
    rig.closes.push(closed.code)
    assert.equal(closed.code, expect.code, `closed ${expect.code}`)
    for (const f of c.frames) assert.ok(isServerFrame(f), `documented frame before the close: ${JSON.stringify(f)}`)
    rig.fuzzer = await openFuzzer(rig.a)
    return
  }
  // two ping round trips after the input: the second pong can only come after every answer to it
  const extra = expect.kind === 'pong' ? 1 : 0
  c.send('{"type":"ping"}')
  await until(c, () => pongs(c) >= 1 + extra, 3000, 'first sentinel pong')
  c.send('{"type":"ping"}')
  await until(c, () => pongs(c) >= 2 + extra, 3000, 'second sentinel pong')

  for (const f of c.frames) assert.ok(isServerFrame(f), `undocumented frame ${JSON.stringify(f).slice(0, 200)}: ${serverFrameProblem(f)}`)
  assert.equal(pongs(c), 2 + extra, 'pong count')
  const answers = c.frames.filter(f => f.type !== 'pong')
  switch (expect.kind) {
    case 'pong':
      assert.deepEqual(answers, [])
      break
    case 'refreshed':
      assert.equal(answers.length, 1)
      assert.equal(answers[0].type, 'refreshed')
      break
    case 'error': {
      assert.equal(answers.length, 1, `one error frame, got ${JSON.stringify(answers).slice(0, 300)}`)
      const e = answers[0]
      assert.equal(e.type, 'error')
      assert.ok(ERROR_CODES.includes(e.code))
      assert.equal(e.code, expect.code)
      if (expect.ref === undefined) assert.ok(!('ref' in e), 'no ref in the error')
      else assert.equal(e.ref, expect.ref, 'the ref is echoed')
      break
    }
    case 'publish': {
      const msgs = answers.filter(f => f.type === 'message')
      const acks = answers.filter(f => f.type === 'ack')
      assert.equal(msgs.length, 1, `one message, got ${JSON.stringify(answers).slice(0, 300)}`)
      assert.equal(acks.length, expect.ref === undefined ? 0 : 1, 'an ack exactly when a ref was given')
      assert.equal(answers.length, msgs.length + acks.length)
      assert.equal(msgs[0].from, 'fuzzer')
      assert.equal(msgs[0].channel, 'fuzz')
      assert.deepEqual(msgs[0].data, expect.data)
      if (expect.ref !== undefined) assert.deepEqual(acks[0], { type: 'ack', ref: expect.ref, id: msgs[0].id })
      rig.published.push(msgs[0])
      break
    }
  }
}

t.test('socket fuzz: every input gets exactly the documented answer; the bystander sees only well-formed messages', async t => {
  const a = await start(t, { wsMaxPayload: MAX_PAYLOAD, wsMessageRate: 100_000 })
  const by = await bystander(t, a, 'fuzz')
  const rig: Rig = {
    a,
    fuzzer: await openFuzzer(a),
    tokens: { valid: signJwt(claims('fuzzer')), other: signJwt(claims('someone-else')) },
    published: [],
    closes: []
  }
  t.teardown(() => rig.fuzzer.ws.terminate())
  const started = Date.now()
  let runs = 0
  await fc.assert(fc.asyncProperty(inputArb, async input => {
    runs++
    try {
      await exercise(rig, input)
    } catch (err) {
      throw new Error(`input ${describeInput(input)}: ${(err as Error).message}`)
    }
  }), { numRuns: 400 })
  const closes: Record<number, number> = {}
  for (const c of rig.closes) closes[c] = (closes[c] ?? 0) + 1
  t.pass(`${runs} inputs in ${Date.now() - started} ms; ${rig.published.length} published; closes ${JSON.stringify(closes)}`)
  t.ok(rig.closes.every(c => DOCUMENTED_CLOSES.includes(c)), 'every close was a documented code')
  t.ok(rig.published.length > 20, 'the fuzz reached the publish path')

  // the bystander: exactly the fuzzer's messages, same frames, same order, nothing else
  await by.healthy(t)
  const seen = by.messagesFrom('fuzzer')
  t.equal(seen.length, rig.published.length, 'the bystander got every accepted publish, and only those')
  t.same(seen.map(f => f.id), rig.published.map(f => f.id), 'in the same order')
  t.same(seen, rig.published, 'as the same frames')
  t.equal(a.app.gatecast.hub.size, 2, 'the server holds the fuzzer and the bystander, nothing leaked')
})

t.test('socket fuzz with numbers beyond doubles: answers stay documented frames', async t => {
  const a = await start(t, { wsMaxPayload: MAX_PAYLOAD, wsMessageRate: 100_000 })
  const by = await bystander(t, a, 'fuzz')
  const c = await openFuzzer(a)
  t.teardown(() => c.ws.terminate())
  const edge = fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '9007199254740993', '1E+309', '4.9e-325')
  let i = 0
  await fc.assert(fc.asyncProperty(edge, fc.constantFrom('ref', 'data', 'both'), fc.constantFrom('publish', 'nope'), async (num, where, type) => {
    const tag = `n${i++}`
    const text = where === 'ref'
      ? `{"type":"${type}","data":"${tag}","ref":${num}}`
      : where === 'data'
        ? `{"type":"${type}","ref":"${tag}","data":${num}}`
        : `{"type":"${type}","data":${num},"ref":${num}}`
    c.frames.length = 0
    c.send(text)
    c.send('{"type":"ping"}')
    await until(c, () => pongs(c) >= 1, 3000, 'pong')
    c.send('{"type":"ping"}')
    await until(c, () => pongs(c) >= 2, 3000, 'pong')
    for (const f of c.frames) assert.ok(isServerFrame(f), `${text} → undocumented frame ${JSON.stringify(f)}: ${serverFrameProblem(f)}`)
  }), { numRuns: 60 })
  await by.healthy(t)
})

t.test('burst fuzz: arbitrary frames back to back end open or in a documented close, never harming the bystander', async t => {
  // a low rate (10/s, bursts of 20) so floods reach 4429; streaks of bad frames reach 1008
  const a = await start(t, { wsMaxPayload: MAX_PAYLOAD, wsMessageRate: 10 })
  const by = await bystander(t, a, 'fuzz')
  const outcomes: Record<string, number> = {}
  // runs of the same input repeated: long enough to reach 1008 (50 bad in a row) and 4429 (a flood)
  const burst = fc.array(fc.tuple(inputArb, fc.integer({ min: 1, max: 60 })), { minLength: 1, maxLength: 6 })
    .map(runs => runs.flatMap(([input, n]) => Array.from({ length: n }, () => input)))
  await fc.assert(fc.asyncProperty(burst, async inputs => {
    const c = await openFuzzer(a)
    try {
      for (const input of inputs) {
        if (c.ws.readyState !== c.ws.OPEN) break
        if (input.kind === 'text') c.ws.send(input.text)
        else c.ws.send(input.bytes, { binary: input.kind === 'binary' })
      }
      let outcome = 'open'
      if (c.ws.readyState === c.ws.OPEN) {
        c.send('{"type":"ping"}')
        await waitFor(() => pongs(c) >= 1 || c.ws.readyState !== c.ws.OPEN, { ms: 3000, what: 'pong or close', every: 2 })
      }
      if (c.ws.readyState !== c.ws.OPEN) {
        const closed = await closedWithin(c, 3000)
        assert.ok(DOCUMENTED_CLOSES.includes(closed.code), `closed with ${closed.code}, not a documented code`)
        outcome = String(closed.code)
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
      for (const f of c.frames) {
        assert.ok(isServerFrame(f), `undocumented frame ${JSON.stringify(f).slice(0, 200)}: ${serverFrameProblem(f)}`)
        assert.ok(['ready', 'message', 'ack', 'error', 'pong', 'refreshed'].includes(f.type))
      }
    } finally {
      c.ws.terminate()
    }
  }), { numRuns: 40 })
  t.pass(`outcomes: ${JSON.stringify(outcomes)}`)
  await by.healthy(t)
  t.ok(by.messagesFrom('fuzzer').every(f => f.channel === 'fuzz' && isServerFrame(f)), 'the bystander only got well-formed message frames of its channel')
  await waitFor(() => a.app.gatecast.hub.size === 1, { ms: 3000, what: 'only the bystander left' })
})
