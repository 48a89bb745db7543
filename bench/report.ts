// Medians over rounds, ratios to bare ws of the same run, and the markdown tables.
import type { Result, ScenarioName } from './load.ts'
import { median } from './stats.ts'

export interface Summary {
  scenario: ScenarioName
  server: string
  kind: string
  nodes: number
  rounds: number
  cpuUsPerOp: number | null
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

function med (rs: Result[], pick: (r: Result) => number | null): number | null {
  const v = median(rs.map(pick).filter((x): x is number => x !== null))
  return Number.isFinite(v) ? v : null
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

/** The bare ws row a summary is compared with: same scenario (cluster fan-out: the 1-node fan-out). */
export function baseline (all: Summary[], s: Summary): Summary | undefined {
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

const ORDER: ScenarioName[] = ['handshake', 'fanout', 'rooms', 'bursts', 'idle', 'cluster', 'multi', 'rooms-spread']

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
  const others = [...new Set(summaries.filter(s => s.kind !== 'ws' && s.scenario !== 'cluster').map(s => s.server))]
  const hasWs = summaries.some(s => s.kind === 'ws')

  if (hasWs && others.length > 0) {
    const six = ratioTable(summaries, others, TARGETS, 'issue 6 target (gatecast)')
    const fifteen = ratioTable(summaries, others, TARGETS_15, 'issue 15 target (gatecast)')
    if (six.length + fifteen.length > 0) out.push('### Ratios to bare ws (medians of the rounds; lower is better)', '', ...six, ...fifteen)
  }

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
    } else if (scenario === 'handshake') {
      out.push(table(['server', 'CPU µs/conn', '× ws', 'connect p50 ms', '× ws', 'connect p99 ms', '× ws', 'conn/s', 'limited by'], rows.map(s => [
        s.server, num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms), rate(s.throughput), s.limitedBy
      ])))
    } else {
      out.push(table(['server', 'CPU µs/delivery', '× ws', 'writes/delivery', 'p50 ms', '× ws', 'p99 ms', '× ws', 'deliveries/s', 'limited by'], rows.map(s => [
        s.server, num(s.cpuUsPerOp), r(s, x => x.cpuUsPerOp), num(s.writesPerOp), num(s.p50Ms), r(s, x => x.p50Ms), num(s.p99Ms), r(s, x => x.p99Ms), rate(s.throughput), s.limitedBy
      ])))
      if (scenario === 'cluster') {
        out.push('', 'CPU is the sum over the nodes (the Redis server\'s own CPU is not counted); × ws compares with bare ws in the 1-node fan-out above.')
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
