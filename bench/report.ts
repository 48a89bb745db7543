// Medians over rounds, ratios to bare ws of the same run, and the markdown tables.
import type { RedisNodeWindow, RedisWindow, Result, ScenarioName } from './load.ts'
import { median } from './stats.ts'

export interface Summary {
  scenario: ScenarioName
  server: string
  kind: string
  nodes: number
  rounds: number
  cpuUsPerOp: number | null
  // optional: a --json file of an earlier run (--charts-from) has none of the three
  /** of which the redis-server process(es) (cluster-*; beside it for cluster) */
  redisCpuUsPerOp?: number | null
  /** `redis` or `cluster` when the nodes ran on Redis */
  redisSetup?: string | null
  redis?: RedisSummary | null
  writesPerOp: number | null
  p50Ms: number | null
  p99Ms: number | null
  rssKbPerConn: number | null
  marginalRssKbPerConn: number | null
  baselineRssKb: number | null
  heapKbPerSub: number | null
  rssKbPerSub: number | null
  throughput: number | null
  limitedBy: string
  /** cores used by other processes of the machine during the windows (median) */
  otherCores: number | null
  /** every round delivered everything, no failed connect, no dropped socket */
  complete: boolean
  problems: string[]
}

function med<T> (rs: readonly T[], pick: (r: T) => number | null): number | null {
  const v = median(rs.map(pick).filter((x): x is number => x !== null))
  return Number.isFinite(v) ? v : null
}

/** One redis-server's part of the work over a window, medians of the rounds. */
export interface RedisNodeSummary {
  port: number
  role: 'master' | 'replica'
  /** the shard's master port */
  shard: number
  /** CPU of the process per published message, µs */
  cpuUsPerMessage: number | null
  /** of every redis-server's CPU */
  cpuShare: number | null
  /** masters: of the masters' publish + spublish calls (a script's own included) */
  pubsubShare: number | null
  /** masters: of the masters' evalsha + eval calls */
  scriptShare: number | null
}

/** What Redis did per published message (masters only: a replica's commands are replication), medians of the rounds. */
export interface RedisSummary {
  setup: string
  /** calls of each command per published message */
  callsPerMessage: Record<string, number>
  /**
   * µs per call of each command, INFO commandstats' usec_per_call over the
   * window; a script's figure includes the commands it runs (which are counted
   * on their own as well, so these do not add up)
   */
  usecPerCall: Record<string, number>
  /** CPU of every redis-server per published message, µs */
  cpuUsPerMessage: number | null
  nodes: RedisNodeSummary[]
}

const PUBSUB = ['publish', 'spublish']
const SCRIPTS = ['evalsha', 'eval']

function summarizeRedis (rs: readonly Result[]): RedisSummary | null {
  const windows = rs.map(r => r.redis).filter((w): w is RedisWindow => w !== null && w !== undefined && w.messages > 0)
  if (windows.length === 0) return null
  const masters = (w: RedisWindow) => w.nodes.filter(n => n.role === 'master')
  const calls = (nodes: readonly RedisNodeWindow[], cmds: readonly string[]) => nodes.reduce((sum, n) => sum + cmds.reduce((c, cmd) => c + (n.commands[cmd]?.calls ?? 0), 0), 0)
  const cpu = (nodes: readonly RedisNodeWindow[]) => nodes.every(n => n.cpuUs === null) ? null : nodes.reduce((sum, n) => sum + (n.cpuUs ?? 0), 0)
  const cmds = new Set(windows.flatMap(w => masters(w).flatMap(n => Object.keys(n.commands))))
  const callsPerMessage: Record<string, number> = {}
  const usecPerCall: Record<string, number> = {}
  for (const cmd of [...cmds].sort()) {
    callsPerMessage[cmd] = med(windows, w => calls(masters(w), [cmd]) / w.messages) ?? 0
    const perCall = med(windows, w => {
      const n = calls(masters(w), [cmd])
      return n > 0 ? masters(w).reduce((u, x) => u + (x.commands[cmd]?.usec ?? 0), 0) / n : null
    })
    if (perCall !== null) usecPerCall[cmd] = perCall
  }
  const part = (w: RedisWindow, port: number, value: (nodes: readonly RedisNodeWindow[]) => number | null, all: readonly RedisNodeWindow[]) => {
    const n = w.nodes.find(x => x.port === port)
    const total = value(all)
    const mine = n === undefined ? null : value([n])
    return mine === null || total === null || total <= 0 ? null : mine / total
  }
  const nodes = windows[0].nodes.map(({ port, role, shard }): RedisNodeSummary => ({
    port,
    role,
    shard,
    cpuUsPerMessage: med(windows, w => { const us = w.nodes.find(x => x.port === port)?.cpuUs; return us === undefined || us === null ? null : us / w.messages }),
    cpuShare: med(windows, w => part(w, port, cpu, w.nodes)),
    pubsubShare: role === 'replica' ? null : med(windows, w => part(w, port, ns => calls(ns, PUBSUB), masters(w))),
    scriptShare: role === 'replica' ? null : med(windows, w => part(w, port, ns => calls(ns, SCRIPTS), masters(w)))
  }))
  return { setup: windows[0].setup, callsPerMessage, usecPerCall, cpuUsPerMessage: med(windows, w => { const us = cpu(w.nodes); return us === null ? null : us / w.messages }), nodes }
}

export function summarize (results: Result[]): Summary[] {
  const groups = new Map<string, Result[]>()
  for (const r of results) {
    const key = `${r.scenario}\0${r.server}`
    const g = groups.get(key)
    if (g === undefined) groups.set(key, [r])
    else g.push(r)
  }
  return [...groups.values()].map((rs) => {
    const first = rs[0]
    const throughput = med(rs, r => r.throughput)
    // the limiter of the round whose throughput is nearest the median
    const nearest = throughput === null ? first : rs.reduce((a, b) => Math.abs((b.throughput ?? 0) - throughput) < Math.abs((a.throughput ?? 0) - throughput) ? b : a)
    const problems = rs.flatMap(r => {
      if (r.complete) return []
      const h = r.health
      return [`${r.ops}/${r.expectedOps} ${r.opUnit}s, ${h.failed} failed connects, ${h.dropped} dropped, ${h.errorFrames} error frames${h.firstError !== undefined ? ` (${h.firstError})` : ''}`]
    })
    return {
      scenario: first.scenario,
      server: first.server,
      kind: first.kind,
      nodes: first.nodes,
      rounds: rs.length,
      cpuUsPerOp: med(rs, r => r.cpuUsPerOp),
      redisCpuUsPerOp: med(rs, r => r.redisCpuUsPerOp),
      redisSetup: first.redisSetup ?? null,
      redis: summarizeRedis(rs),
      writesPerOp: med(rs, r => r.writesPerOp),
      p50Ms: med(rs, r => r.p50Ms),
      p99Ms: med(rs, r => r.p99Ms),
      rssKbPerConn: med(rs, r => r.rssKbPerConn),
      marginalRssKbPerConn: med(rs, r => r.marginalRssKbPerConn),
      baselineRssKb: med(rs, r => r.baselineRssKb),
      heapKbPerSub: med(rs, r => r.heapKbPerSub),
      rssKbPerSub: med(rs, r => r.rssKbPerSub),
      throughput,
      limitedBy: nearest.limitedBy,
      otherCores: med(rs, r => r.otherCores),
      complete: problems.length === 0,
      problems
    }
  })
}

/** The scenarios of Gatecast nodes on Redis against the Node cluster floor (ws-redis) on the same Redis. */
export const FLOOR_SCENARIOS: readonly ScenarioName[] = ['cluster-fanout', 'cluster-rooms']

/**
 * The row a summary is compared with: bare ws in the same scenario (cluster
 * fan-out: the 1-node fan-out); in the cluster-* scenarios the Node cluster
 * floor on the same Redis.
 */
export function baseline (all: Summary[], s: Summary): Summary | undefined {
  if (FLOOR_SCENARIOS.includes(s.scenario)) return all.find(b => b.scenario === s.scenario && b.kind === 'ws-redis' && b.redisSetup === s.redisSetup)
  const scenario = s.scenario === 'cluster' ? 'fanout' : s.scenario
  return all.find(b => b.scenario === scenario && b.kind === 'ws')
}

export function ratio (value: number | null, base: number | null | undefined): number | null {
  if (value === null || base === null || base === undefined || base <= 0) return null
  return value / base
}

/** A measured value as the tables print it: 3 significant digits or so, '–' when there is none. */
export function num (x: number | null, unit = ''): string {
  if (x === null || !Number.isFinite(x)) return '–'
  const a = Math.abs(x)
  const s = a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3)
  return s + unit
}

/** A ratio as the tables print it: `1.30×`. */
export function times (x: number | null): string {
  return x === null || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`
}

function rate (x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '–'
  return x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : x.toFixed(0)
}

function table (head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((h, i) => i === 0 ? '---' : '---:').join(' | ')} |`,
    ...rows.map(r => `| ${r.join(' | ')} |`)
  ].join('\n')
}

export type ScenarioTitles = Record<ScenarioName, string>

const ORDER: ScenarioName[] = ['handshake', 'fanout', 'rooms', 'bursts', 'idle', 'cluster', 'multi', 'rooms-spread', 'cluster-fanout', 'cluster-rooms']

/** A row of a targets table: the metric, where it is read, and what it must reach. */
interface TargetRow { label: string, scenario: ScenarioName, pick: (s: Summary) => number | null, target: string }

/** Issue 6's targets for Gatecast, as ratios to bare ws (must / goal). */
const TARGETS: TargetRow[] = [
  { label: 'handshake: CPU per accepted connection', scenario: 'handshake', pick: s => s.cpuUsPerOp, target: '≤ 1.1 (stretch 0.8)' },
  { label: 'fan-out: CPU per delivery', scenario: 'fanout', pick: s => s.cpuUsPerOp, target: '≤ 0.5 (goal 0.4)' },
  { label: 'fan-out: p50 latency', scenario: 'fanout', pick: s => s.p50Ms, target: '' },
  { label: 'fan-out: p99 latency', scenario: 'fanout', pick: s => s.p99Ms, target: '' },
  { label: 'rooms: CPU per delivery', scenario: 'rooms', pick: s => s.cpuUsPerOp, target: '≤ 0.85 (goal 0.75)' },
  { label: 'rooms: p50 latency', scenario: 'rooms', pick: s => s.p50Ms, target: '' },
  { label: 'rooms: p99 latency', scenario: 'rooms', pick: s => s.p99Ms, target: '≤ 1.0' },
  { label: 'rooms in bursts: CPU per delivery', scenario: 'bursts', pick: s => s.cpuUsPerOp, target: '(rooms) ≤ 0.85 (goal 0.75)' },
  { label: 'rooms in bursts: p50 latency', scenario: 'bursts', pick: s => s.p50Ms, target: '' },
  { label: 'rooms in bursts: p99 latency', scenario: 'bursts', pick: s => s.p99Ms, target: '(rooms) ≤ 1.0' },
  { label: 'idle: RSS per connection', scenario: 'idle', pick: s => s.rssKbPerConn, target: '≤ 1.0 (stretch 0.8)' }
]

/**
 * Issue 15's targets (one socket, many channels; rooms with spread-out
 * publishes): ratios to bare ws, and Gatecast against Socket.IO where the
 * target names it.
 */
const TARGETS_15: TargetRow[] = [
  { label: 'multi: CPU per delivery', scenario: 'multi', pick: s => s.cpuUsPerOp, target: '≤ 0.8, and below socketio' },
  { label: 'multi: p50 latency', scenario: 'multi', pick: s => s.p50Ms, target: '' },
  { label: 'multi: p99 latency', scenario: 'multi', pick: s => s.p99Ms, target: '≤ 0.5' },
  { label: 'multi: heap KB per extra subscription', scenario: 'multi', pick: s => s.heapKbPerSub, target: 'below socketio' },
  { label: 'multi: RSS KB per extra subscription', scenario: 'multi', pick: s => s.rssKbPerSub, target: '(below socketio)' },
  { label: 'rooms-spread: CPU per delivery', scenario: 'rooms-spread', pick: s => s.cpuUsPerOp, target: '≤ 0.85' },
  { label: 'rooms-spread: p50 latency', scenario: 'rooms-spread', pick: s => s.p50Ms, target: '' },
  { label: 'rooms-spread: p99 latency', scenario: 'rooms-spread', pick: s => s.p99Ms, target: '' }
]

function ratioTable (summaries: Summary[], others: string[], targets: typeof TARGETS, head: string): string[] {
  const rows: string[][] = []
  const vsSocketIo = others.includes('gatecast') && others.includes('socketio')
  for (const t of targets) {
    const base = summaries.find(s => s.scenario === t.scenario && s.kind === 'ws')
    if (base === undefined) continue
    const of = (server: string) => summaries.find(x => x.scenario === t.scenario && x.server === server)
    const row = [t.label, ...others.map(o => {
      const s = of(o)
      return s === undefined ? '–' : times(ratio(t.pick(s), t.pick(base)))
    })]
    if (vsSocketIo) {
      const g = of('gatecast')
      const io = of('socketio')
      row.push(g === undefined || io === undefined ? '–' : times(ratio(t.pick(g), t.pick(io))))
    }
    rows.push([...row, t.target])
  }
  if (rows.length === 0) return []
  return [table(['metric', ...others, ...(vsSocketIo ? ['gatecast ÷ socketio'] : []), head], rows), '']
}

export function markdown (summaries: Summary[], titles: ScenarioTitles): string {
  const out: string[] = []
  const others = [...new Set(summaries.filter(s => s.kind !== 'ws' && s.scenario !== 'cluster' && !FLOOR_SCENARIOS.includes(s.scenario)).map(s => s.server))]
  const hasWs = summaries.some(s => s.kind === 'ws')

  if (hasWs && others.length > 0) {
    const six = ratioTable(summaries, others, TARGETS, 'issue 6 target (gatecast)')
    const fifteen = ratioTable(summaries, others, TARGETS_15, 'issue 15 target (gatecast)')
    if (six.length + fifteen.length > 0) out.push('### Ratios to bare ws (medians of the rounds; lower is better)', '', ...six, ...fifteen)
  }
  out.push(...floorTargets(summaries))

  for (const scenario of ORDER) {
    const rows = summaries.filter(s => s.scenario === scenario)
    if (rows.length === 0) continue
    out.push(`### ${titles[scenario]}`, '')
    const r = (s: Summary, pick: (x: Summary) => number | null) => times(ratio(pick(s), (() => { const b = baseline(summaries, s); return b === undefined ? null : pick(b) })()))
    if (scenario === 'idle') {
      out.push(table(['server', 'RSS KB/conn', '× ws', 'marginal KB/conn (2nd half)', '× ws', 'baseline RSS MB'], rows.map(s => [
        s.server, num(s.rssKbPerConn), r(s, x => x.rssKbPerConn), num(s.marginalRssKbPerConn), r(s, x => x.marginalRssKbPerConn),
        num(s.baselineRssKb === null ? null : s.baselineRssKb / 1024)
      ])))
    } else if (scenario === 'multi') {
      out.push(table(['server', 'CPU µs/delivery', '× ws', 'writes/delivery', 'p50 ms', '× ws', 'p99 ms', '× ws', 'heap KB/extra sub', '× ws', 'RSS KB/extra sub', 'deliveries/s', 'limited by'], rows.map(s => [
        s.server, num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.writesPerOp), num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms),
        num(s.heapKbPerSub), r(s, x => x.heapKbPerSub), num(s.rssKbPerSub), rate(s.throughput), s.limitedBy
      ])))
    } else if (FLOOR_SCENARIOS.includes(scenario)) {
      out.push(...floorSection(summaries, rows))
    } else if (scenario === 'handshake') {
      out.push(table(['server', 'CPU µs/conn', '× ws', 'connect p50 ms', '× ws', 'connect p99 ms', '× ws', 'conn/s', 'limited by'], rows.map(s => [
        s.server, num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms), rate(s.throughput), s.limitedBy
      ])))
    } else {
      out.push(table(['server', 'CPU µs/delivery', '× ws', 'writes/delivery', 'p50 ms', '× ws', 'p99 ms', '× ws', 'deliveries/s', 'limited by'], rows.map(s => [
        s.server, num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.writesPerOp), num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms), rate(s.throughput), s.limitedBy
      ])))
      if (scenario === 'cluster') {
        const redis = rows.filter(x => x.redisCpuUsPerOp !== null && x.redisCpuUsPerOp !== undefined).map(x => `${num(x.redisCpuUsPerOp ?? null)} µs/delivery beside ${x.server}`)
        out.push('', `CPU is the sum over the nodes (the Redis server's own CPU is not counted${redis.length > 0 ? `: it used ${redis.join(', ')}` : ''}); × ws compares with bare ws in the 1-node fan-out above.`)
      }
    }
    const busy = rows.filter(s => (s.otherCores ?? 0) > 0.2)
    if (busy.length > 0) {
      out.push('', `> other processes of the machine used ${busy.map(s => `${num(s.otherCores)} core during ${s.server}`).join(', ')}: these rows are noisy`)
    }
    const bad = rows.filter(s => !s.complete)
    for (const s of bad) out.push('', `> **incomplete** ${s.server}: ${s.problems.join('; ')}`)
    out.push('')
  }
  return out.join('\n')
}

/** Issue 18's targets: Gatecast nodes on Redis against the Node cluster floor on the same Redis (CPU of nodes and Redis). */
const TARGETS_18: TargetRow[] = [
  { label: 'cluster fan-out: CPU per delivery (nodes + Redis)', scenario: 'cluster-fanout', pick: s => s.cpuUsPerOp, target: '≤ 0.6' },
  { label: 'cluster fan-out: p50 latency', scenario: 'cluster-fanout', pick: s => s.p50Ms, target: '' },
  { label: 'cluster fan-out: p99 latency', scenario: 'cluster-fanout', pick: s => s.p99Ms, target: '' },
  { label: 'cluster rooms: CPU per delivery (nodes + Redis)', scenario: 'cluster-rooms', pick: s => s.cpuUsPerOp, target: '≤ 1.0' },
  { label: 'cluster rooms: p50 latency', scenario: 'cluster-rooms', pick: s => s.p50Ms, target: '' },
  { label: 'cluster rooms: p99 latency', scenario: 'cluster-rooms', pick: s => s.p99Ms, target: '≤ 1.0' }
]

function floorTargets (summaries: Summary[]): string[] {
  const gatecast = summaries.filter(s => FLOOR_SCENARIOS.includes(s.scenario) && s.kind === 'gatecast')
  const setups = [...new Set(gatecast.map(s => s.redisSetup ?? ''))]
  if (setups.length === 0) return []
  const rows: string[][] = []
  for (const t of TARGETS_18) {
    const row = [t.label]
    let any = false
    for (const setup of setups) {
      const g = gatecast.find(s => s.scenario === t.scenario && s.redisSetup === setup)
      const base = g === undefined ? undefined : baseline(summaries, g)
      const x = g === undefined || base === undefined ? null : ratio(t.pick(g), t.pick(base))
      any ||= x !== null
      row.push(times(x))
    }
    if (any) rows.push([...row, t.target])
  }
  if (rows.length === 0) return []
  return [
    '### Gatecast nodes on Redis ÷ the Node cluster floor (ws-redis) on the same Redis (medians of the rounds; lower is better)', '',
    table(['metric', ...setups.map(s => `gatecast on ${setupName(s)}`), 'issue 18 target'], rows), ''
  ]
}

function setupName (setup: string): string {
  return setup === 'cluster' ? 'the Redis Cluster' : setup === 'redis' ? 'one Redis' : setup
}

const pct = (x: number | null) => x === null || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(0)} %`

/** A cluster-* scenario: the table of its rows, what Redis did per message, and each master's share. */
function floorSection (summaries: Summary[], rows: Summary[]): string[] {
  const out: string[] = []
  const r = (s: Summary, pick: (x: Summary) => number | null) => { const b = baseline(summaries, s); return times(ratio(pick(s), b === undefined ? null : pick(b))) }
  out.push(table(['server', 'Redis', 'CPU µs/delivery (nodes + Redis)', '× floor', 'of which Redis', 'writes/delivery', 'p50 ms', '× floor', 'p99 ms', '× floor', 'deliveries/s', 'limited by'], rows.map(s => [
    s.server, setupName(s.redisSetup ?? ''), num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.redisCpuUsPerOp ?? null), num(s.writesPerOp),
    num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms), rate(s.throughput), s.limitedBy
  ])))
  out.push('', 'CPU is summed over both nodes and every redis-server of the Redis (a cluster\'s replicas included); × floor compares with ws-redis on the same Redis. Writes are the nodes\'.')
  const withRedis = rows.filter(s => s.redis !== null && s.redis !== undefined)
  if (withRedis.length > 0) {
    out.push('', 'What Redis did per published message: CPU of every redis-server, and INFO commandstats of the masters over the window (a script\'s own commands counted too; µs/evalsha includes them):', '')
    out.push(table(['server', 'Redis', 'Redis CPU µs/message', 'evalsha /message', 'µs/evalsha', 'publish+spublish /message', 'µs/publish', 'other commands /message'], withRedis.map(s => {
      const x = s.redis as RedisSummary
      const perMsg = (cmds: readonly string[]) => cmds.reduce((c, cmd) => c + (x.callsPerMessage[cmd] ?? 0), 0)
      const perCall = (cmds: readonly string[]) => cmds.map(c => x.usecPerCall[c]).find(u => u !== undefined) ?? null
      // INFO and HELLO come from the orchestrator's own reads around the window
      const other = Object.entries(x.callsPerMessage).filter(([cmd, n]) => !PUBSUB.includes(cmd) && !SCRIPTS.includes(cmd) && cmd !== 'info' && cmd !== 'hello' && n >= 0.005)
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([cmd, n]) => `${cmd} ${num(n)}`).join(', ')
      return [s.server, setupName(x.setup), num(x.cpuUsPerMessage), num(perMsg(SCRIPTS)), num(perCall(SCRIPTS)), num(perMsg(PUBSUB)), num(perCall(PUBSUB)), other === '' ? '–' : other]
    })))
    const sharded = withRedis.filter(s => (s.redis?.nodes.filter(n => n.role === 'master').length ?? 0) > 1)
    if (sharded.length > 0) {
      out.push('', 'Each shard\'s part: of the masters\' publish + spublish calls and scripts, and of every redis-server\'s CPU:', '')
      out.push(table(['server', 'shard (master port)', 'node', 'publish+spublish', 'evalsha', 'CPU share', 'CPU µs/message'], sharded.flatMap(s => (s.redis as RedisSummary).nodes.map(n => [
        s.server, String(n.shard), `${n.role} ${n.port}`, pct(n.pubsubShare), pct(n.scriptShare), pct(n.cpuShare), num(n.cpuUsPerMessage)
      ]))))
    }
  }
  return out
}
