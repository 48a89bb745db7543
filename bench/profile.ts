// Summaries of V8 CPU profiles (.cpuprofile, as written by --cpu-prof or by
// the bench's --profile-window): self time per function, and per step of a
// publish's path. A step is found by walking up from the sampled frame to the
// first frame whose script belongs to a known step, so the time of a native
// callee with no script of its own (JSON.parse, writev, Buffer writes) goes to
// the step that called it.
//
//   node dist/bench/profile.js FILE.cpuprofile… [--top N]
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
  columnNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

/**
 * Ordered: the first whose script pattern (and function pattern, when given)
 * matches a frame names the step. Optimised code carries the self time of what
 * V8 inlined into it: Session#write's share includes WsTransport.write's.
 */
const STEPS: Array<[RegExp, string, RegExp?]> = [
  [/\/ws\/lib\/(receiver|buffer-util|validation)\.js$/, 'ws: receive (frame parsing, unmasking)'],
  [/\/ws\/lib\/sender\.js$/, 'ws: send (ws.send, its framing)'],
  [/\/ws\/lib\/websocket\.js$/, 'ws: WebSocket (events, send entry)'],
  [/\/src\/protocol\/frames\.js$|@sinclair\/typebox/, 'client frame: parse + validation (JSON.parse, TypeBox)'],
  [/\/src\/core\/session\.js$/, 'client frame: dispatch, rate limit, subscription check (Session#frame, #publish)', /^(#frame|#allowed|#publish|onMessage)$/],
  [/\/src\/core\/message-budget\.js$/, 'client frame: dispatch, rate limit, subscription check (Session#frame, #publish)'],
  [/\/src\/core\/session\.js$/, 'per-socket write (Session#write → transport, slow-consumer check)', /^(#write|#judge|deliver|send|open)$/],
  [/\/src\/core\/(session|subscription|sessions)\.js$/, 'session, subscription: other'],
  [/\/src\/core\/(publisher|channels|hooks)\.js$/, 'publisher: depth check, JSON.stringify(data)'],
  [/\/src\/engine\/ids\.js$/, 'message id'],
  [/\/src\/engine\/memory\/history[^/]*\.js$|\/src\/engine\/[^/]*history[^/]*\.js$/, 'history'],
  [/\/src\/engine\//, 'engine publish: sequence, id, history entry (MemoryBroker.publish)'],
  [/\/src\/protocol\/(message-layout|wire)\.js$/, 'frame build (message text, WebSocket frame)'],
  [/\/src\/core\/stats\.js$|\/plugins\/metrics\.js$/, 'metrics'],
  [/\/src\/core\/hub\.js$/, 'hub: delivery loop (Hub.deliver)'],
  [/\/src\/transport\//, 'transport: write, cork, backlog'],
  [/\/src\//, 'gatecast: other'],
  [/\/bench\/servers\//, 'bench server code (bare ws, Socket.IO glue)'],
  [/socket\.io|engine\.io|socket\.io-parser|socket\.io-adapter/, 'Socket.IO / engine.io'],
  [/^node:internal\/streams\/readable$/, 'socket read (net, streams)'],
  [/^node:(net|internal\/stream_base_commons)$/, 'socket read (net, streams)', /read|Read/],
  [/^node:(net|internal\/stream_base_commons|internal\/streams\/)/, 'socket write (net, streams; the write system call: writeBuffer, writev)'],
  [/^node:(internal\/timers|timers|internal\/process\/task_queues)/, 'timers, immediates, microtasks'],
  [/^node:events|^node:internal\/event_target/, 'EventEmitter'],
  [/^node:/, 'node: other'],
  [/node_modules/, 'other packages'],
  [/./, 'other JS']
]

const SPECIAL = new Map([
  ['(garbage collector)', 'GC (main thread)'],
  ['(program)', '(program): V8 and native code outside JS'],
  ['(idle)', '(idle)']
])

export interface Row {
  name: string
  ms: number
  /** share of the busy time (everything but idle), % */
  pct: number
}

export interface ProfileSummary {
  files: number
  /** sampled time, ms */
  totalMs: number
  idleMs: number
  steps: Row[]
  functions: Row[]
}

function shortUrl (url: string): string {
  if (url === '') return ''
  const m = /(?:node_modules\/(.*)|\/dist\/(.*)|^(node:.*))$/.exec(url)
  return m === null ? url.replace(/^file:\/\//, '') : (m[1] ?? m[2] ?? m[3])
}

/** Merges the self time of several profiles (the rounds of one server in one scenario). */
export function summarizeProfiles (profiles: CpuProfile[], top = 25): ProfileSummary {
  const byFunction = new Map<string, number>()
  const byStep = new Map<string, number>()
  let totalUs = 0
  let idleUs = 0
  for (const prof of profiles) {
    const nodes = new Map(prof.nodes.map(n => [n.id, n]))
    const parent = new Map<number, number>()
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
    const stepCache = new Map<number, string>()
    const stepOf = (id: number): string => {
      const cached = stepCache.get(id)
      if (cached !== undefined) return cached
      const node = nodes.get(id)
      let step: string | undefined
      if (node === undefined) {
        step = 'other JS'
      } else if ((step = SPECIAL.get(node.callFrame.functionName)) !== undefined) {
        // a pseudo-frame of V8's
      } else {
        const { url, functionName } = node.callFrame
        const hit = url === '' ? undefined : STEPS.find(([re, , fn]) => re.test(url) && (fn === undefined || fn.test(functionName)))
        const up = parent.get(id)
        step = hit !== undefined ? hit[1] : up !== undefined && nodes.get(up)?.callFrame.functionName !== '(root)' ? stepOf(up) : 'native, no JS caller'
      }
      stepCache.set(id, step)
      return step
    }
    const samples = prof.samples ?? []
    const deltas = prof.timeDeltas ?? []
    const mean = samples.length > 0 ? (prof.endTime - prof.startTime) / samples.length : 0
    for (let i = 0; i < samples.length; i++) {
      // timeDeltas[i] is the gap before sample i: the time sample i stands for is the gap after it
      const us = Math.max(0, i + 1 < deltas.length ? deltas[i + 1] : mean)
      const node = nodes.get(samples[i])
      if (node === undefined) continue
      totalUs += us
      const f = node.callFrame
      if (f.functionName === '(idle)') {
        idleUs += us
        continue
      }
      const key = f.url === '' ? (f.functionName === '' ? '(anonymous native)' : f.functionName) : `${f.functionName === '' ? '(anonymous)' : f.functionName} ${shortUrl(f.url)}:${f.lineNumber + 1}`
      byFunction.set(key, (byFunction.get(key) ?? 0) + us)
      const step = stepOf(node.id)
      byStep.set(step, (byStep.get(step) ?? 0) + us)
    }
  }
  const busyUs = Math.max(1, totalUs - idleUs)
  const rows = (m: Map<string, number>) => [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: us / 1000, pct: 100 * us / busyUs }))
  return {
    files: profiles.length,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    steps: rows(byStep),
    functions: rows(byFunction).slice(0, top)
  }
}

export function profileMarkdown (title: string, s: ProfileSummary): string {
  const busy = s.totalMs - s.idleMs
  const fmt = (r: Row) => `| ${r.name.replaceAll('|', '\\|')} | ${r.pct.toFixed(1)} % |`
  return [
    `#### ${title}`,
    '',
    `${s.files} profile${s.files === 1 ? '' : 's'}; the main thread was busy ${(100 * busy / Math.max(1, s.totalMs)).toFixed(0)} % of the sampled time. Shares are of the busy time.`,
    '',
    '| step of the path (self time, natives given to their JS caller) | share |',
    '| --- | ---: |',
    ...s.steps.map(fmt),
    '',
    '| function (self time) | share |',
    '| --- | ---: |',
    ...s.functions.map(fmt),
    ''
  ].join('\n')
}

function main (): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } })
  if (positionals.length === 0) {
    process.stderr.write('Usage: node dist/bench/profile.js FILE.cpuprofile… [--top N]\n')
    process.exit(2)
  }
  const profiles = positionals.map(f => JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)
  process.stdout.write(profileMarkdown(positionals.join(', '), summarizeProfiles(profiles, Number(values.top ?? 25))) + '\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main()
