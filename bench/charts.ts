// Charts of a run's medians: one SVG per scenario, a panel per metric, in each
// panel a bar per server (Gatecast, bare ws, wscork when it ran, Socket.IO)
// with its ratio to bare ws and its value written above it. Hand-written SVG,
// no dependency; the same summaries give the same bytes (no date but the
// run's own, no randomness, fixed number formats).
//
//   npm run bench                                        a full run writes docs/bench/<scenario>.svg
//   npm run bench -- --charts-from bench.json --charts /tmp/charts   draw a --json file, run nothing
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ScenarioName } from './load.ts'
import { baseline, num, ratio, times, type ScenarioTitles, type Summary } from './report.ts'

/** The figures a chart can draw. */
export type MetricKey = 'cpuUsPerOp' | 'p50Ms' | 'p99Ms' | 'rssKbPerConn' | 'marginalRssKbPerConn' | 'heapKbPerSub' | 'rssKbPerSub' | 'writesPerOp'

/**
 * A summary as report.ts makes it. `ratiosToWs` (optional) carries the ratios
 * to bare ws as a report printed them: a results file extracted from the
 * markdown tables has only rounded values, and recomputing a ratio from them
 * can differ from the printed one in the last digit. Without it the ratio is
 * computed from the values, as the report does.
 */
export type ChartSummary = Summary & { ratiosToWs?: Partial<Record<MetricKey, number>> }

interface Metric {
  key: MetricKey
  /** the panel's title */
  title: string
  /** after each value */
  unit: string
  /** the y axis */
  axis: string
}

const cpu = (per: string): Metric => ({ key: 'cpuUsPerOp', title: `Server CPU per ${per}`, unit: 'µs', axis: `µs of CPU per ${per}` })
const P50: Metric = { key: 'p50Ms', title: 'Latency p50', unit: 'ms', axis: 'ms, publish → delivery' }
const P99: Metric = { key: 'p99Ms', title: 'Latency p99', unit: 'ms', axis: 'ms, publish → delivery' }
const DELIVERY = [cpu('delivery'), P50, P99]

/** The panels of each scenario's chart, left to right (the report's tables, throughput aside). */
export const METRICS: Record<ScenarioName, readonly Metric[]> = {
  handshake: [
    cpu('connection'),
    { key: 'p50Ms', title: 'Connect p50', unit: 'ms', axis: 'ms, new WebSocket → ready' },
    { key: 'p99Ms', title: 'Connect p99', unit: 'ms', axis: 'ms, new WebSocket → ready' }
  ],
  fanout: DELIVERY,
  rooms: DELIVERY,
  bursts: DELIVERY,
  'rooms-spread': DELIVERY,
  cluster: DELIVERY,
  // in the tables only (not in CHART_SCENARIOS): their floor is ws-redis, not bare ws
  'cluster-fanout': DELIVERY,
  'cluster-rooms': DELIVERY,
  idle: [
    { key: 'rssKbPerConn', title: 'RSS per idle socket', unit: 'KB', axis: 'KB of RSS per socket' },
    { key: 'marginalRssKbPerConn', title: 'RSS per socket, 2nd half', unit: 'KB', axis: 'KB of RSS per socket (marginal)' }
  ],
  multi: [
    cpu('delivery'),
    P99,
    { key: 'heapKbPerSub', title: 'Heap per extra subscription', unit: 'KB', axis: 'KB of heap per subscription' }
  ]
}

/** Scenarios in the order the report prints them. */
export const CHART_SCENARIOS: readonly ScenarioName[] = ['handshake', 'fanout', 'rooms', 'bursts', 'idle', 'cluster', 'multi', 'rooms-spread']

/**
 * The servers charted, in this order, when they ran: the issue's comparison
 * (Gatecast, bare ws, Socket.IO) and wscork, the bare-ws "Node limit". The
 * opt-in fastify and direct floors stay in the tables.
 */
export const CHART_SERVERS: readonly string[] = ['gatecast', 'ws', 'wscork', 'socketio']

const COLORS: Record<string, string> = {
  gatecast: '#1f6feb',
  ws: '#6e7781',
  wscork: '#afb8c1',
  socketio: '#d4761b',
  fastify: '#8250df',
  direct: '#1a7f37',
  backend: '#0969da',
  'gatecast+redis ×1': '#54aeff',
  'gatecast+redis ×2': '#0a3069'
}
const PALETTE = ['#bf3989', '#9a6700', '#0550ae', '#116329', '#953800']

// neutral colours on an explicit light card: readable in GitHub's light and dark themes alike
const INK = '#1f2328'
const MUTED = '#59636e'
const GRID = '#eaeef2'
const AXIS = '#8c959f'
const CARD = '#ffffff'
const BORDER = '#d0d7de'
/** a ring of the card's colour around label text, so the dashed ws line never crosses a digit */
const HALO = `stroke="${CARD}" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`
const FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI','Noto Sans',Helvetica,Arial,sans-serif"

/** What the charts say about the run the numbers come from. */
export interface ChartRun {
  commit?: string | null
  /** the tree had uncommitted changes in src/, plugins/ or routes/ */
  dirty?: boolean
  /** ISO date of the run */
  date?: string | null
  cpus?: number
  cpuModel?: string
  node?: string
  /** where the numbers were taken from, when not straight from the bench */
  source?: string
}

export interface ChartOptions {
  /** the scenario's title (the report's heading); the scenario's name without it */
  title?: string
  run?: ChartRun
  /** servers to chart, in order (default CHART_SERVERS) */
  servers?: readonly string[]
}

/** The run a results file (`--json`, or one in its shape) describes. */
export function chartRun (meta: Record<string, unknown> | undefined): ChartRun {
  const m = (meta?.machine ?? {}) as Record<string, unknown>
  const str = (x: unknown) => typeof x === 'string' && x !== '' ? x : undefined
  const run: ChartRun = {}
  if (str(m.commit) !== undefined) run.commit = str(m.commit)
  if (m.dirty === true) run.dirty = true
  if (str(meta?.date) !== undefined) run.date = str(meta?.date)
  if (typeof m.cpus === 'number') run.cpus = m.cpus
  if (str(m.cpuModel) !== undefined) run.cpuModel = str(m.cpuModel)
  if (str(m.node) !== undefined) run.node = str(m.node)
  if (str(meta?.source) !== undefined) run.source = str(meta?.source)
  return run
}

/** Text for XML content and attribute values. */
export function escapeXml (s: string): string {
  return s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string)
}

/** A coordinate: one decimal, no trailing zero, never -0. */
function px (x: number): string {
  const r = Math.round(x * 10) / 10
  return r === 0 ? '0' : String(r)
}

/** Estimated width of a line of text (no font metrics in here): generous, so nothing overlaps. */
function textWidth (s: string, size: number, bold = false): number {
  return [...s].length * size * (bold ? 0.6 : 0.54)
}

/** Greedy line breaking at spaces (and after `+`) to at most `max` px. */
function wrap (s: string, size: number, max: number, bold = false): string[] {
  const words = s.split(/(?<=\+)|\s+/).filter(w => w !== '')
  const lines: string[] = []
  let line = ''
  for (const w of words) {
    const glue = line === '' || line.endsWith('+') ? '' : ' '
    if (line !== '' && textWidth(line + glue + w, size, bold) > max) {
      lines.push(line)
      line = w
    } else {
      line += glue + w
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

/** A round step of an axis that shows `max` in about four ticks. */
function niceStep (max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1
  const raw = max / 4
  const p = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p
  return 10 * p
}

function decimalsOf (step: number): number {
  for (let d = 0; d < 8; d++) {
    const x = step * 10 ** d
    if (Math.abs(x - Math.round(x)) < 1e-9 * Math.max(1, x)) return d
  }
  return 8
}

interface Bar {
  label: string
  color: string
  value: number | null
  ratio: number | null
  /** the row has problems (incomplete) */
  mark: boolean
}

function text (x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${px(x)}" y="${px(y)}"${attrs === '' ? '' : ' ' + attrs}>${escapeXml(s)}</text>`
}

/** The rows a scenario's chart compares: its servers in order; the cluster runs beside bare ws's 1-node fan-out. */
function chartRows (summaries: readonly ChartSummary[], scenario: ScenarioName, servers: readonly string[]): Array<{ s: ChartSummary, label: string }> {
  const rows = summaries.filter(s => s.scenario === scenario)
  if (scenario === 'cluster') {
    const ws = summaries.find(s => s.scenario === 'fanout' && s.kind === 'ws')
    return [...(ws === undefined ? [] : [{ s: ws, label: 'ws (fan-out)' }]), ...rows.map(s => ({ s, label: s.server }))]
  }
  return servers.flatMap(name => rows.filter(s => s.server === name).map(s => ({ s, label: s.server })))
}

const PAD = 16
const GAP = 28
const PLOT_H = 180
/** above the plot: the ratio and the value of the tallest bar */
const HEADROOM = 34
const SLOT = 60
const BAR_W = 38
const Y_AXIS_W = 64
const MAX_W = 960

/**
 * One scenario as an SVG document: a panel per metric, a bar per server.
 * `null` when no charted server has a value for the scenario.
 */
export function chartSvg (summaries: readonly ChartSummary[], scenario: ScenarioName, options: ChartOptions = {}): string | null {
  const rows = chartRows(summaries, scenario, options.servers ?? CHART_SERVERS)
  const metrics = METRICS[scenario].filter(m => rows.some(r => r.s[m.key] !== null))
  if (rows.length === 0 || metrics.length === 0) return null

  const tickLines = rows.map(r => wrap(r.label, 11, SLOT - 4))
  const tickH = Math.max(...tickLines.map(l => l.length)) * 13
  const panelW = Y_AXIS_W + rows.length * SLOT + 8
  const plotsW = metrics.length * panelW + (metrics.length - 1) * GAP
  const title = options.title ?? scenario
  const run = options.run ?? {}
  const runLine = [
    'one run',
    rows[0].s.rounds > 0 ? `medians of ${rows[0].s.rounds} round${rows[0].s.rounds === 1 ? '' : 's'}` : '',
    run.commit != null ? `commit ${run.commit}${run.dirty === true ? ' + uncommitted changes' : ''}` : 'commit unknown',
    run.date != null ? run.date.slice(0, 10) : '',
    run.cpus !== undefined ? `${run.cpus} CPUs${run.cpuModel !== undefined ? ` (${run.cpuModel})` : ''}` : '',
    run.node !== undefined ? `Node ${run.node}` : ''
  ].filter(s => s !== '').join(' · ')

  const notes: string[] = [
    'Lower is better. Above each bar: its ratio to bare ws in the same run, then its value. Dashed line: bare ws.'
  ]
  if (scenario === 'cluster') notes.push('CPU is summed over the nodes (the Redis server\'s own CPU is not counted); ratios compare with bare ws in the 1-node fan-out.')
  for (const { s, label } of rows) {
    if (!s.complete) notes.push(`* ${label} incomplete: ${s.problems.join('; ')}`)
    if ((s.otherCores ?? 0) > 0.2) notes.push(`${label}: other processes used ${num(s.otherCores)} core during its window (noisy)`)
  }
  if (run.source !== undefined) notes.push(`Numbers: ${run.source}.`)

  // as wide as the panels, or as the longest line of text up to MAX_W (longer lines wrap)
  const longest = Math.max(textWidth(title, 16, true), textWidth(runLine, 12), ...notes.map(n => textWidth(n, 11)))
  const width = Math.ceil(Math.max(plotsW + 2 * PAD, Math.min(longest + 2 * PAD, MAX_W), 480))
  const inner = width - 2 * PAD
  const titleLines = wrap(title, 16, inner, true)
  const runLines = wrap(runLine, 12, inner)
  const noteLines = notes.flatMap(n => wrap(n, 11, inner))

  const out: string[] = []
  let y = PAD + 16
  const head: string[] = []
  for (const l of titleLines) {
    head.push(text(PAD, y, l, 'font-size="16" font-weight="600"'))
    y += 21
  }
  for (const l of runLines) {
    head.push(text(PAD, y, l, `font-size="12" fill="${MUTED}"`))
    y += 16
  }
  y += 14

  // panels
  const panelTop = y
  for (const [i, m] of metrics.entries()) {
    const x0 = PAD + i * (panelW + GAP)
    const plotX = x0 + Y_AXIS_W
    const plotTop = panelTop + 20 + HEADROOM
    const plotBottom = plotTop + PLOT_H
    const bars: Bar[] = rows.map(({ s, label }) => {
      const value = s[m.key]
      const base = baseline(summaries as Summary[], s)
      const r = s.ratiosToWs?.[m.key] ?? ratio(value, base === undefined ? null : base[m.key])
      return { label, color: COLORS[label] ?? COLORS[s.kind] ?? PALETTE[rows.findIndex(x => x.s === s) % PALETTE.length], value, ratio: r, mark: !s.complete }
    })
    const max = Math.max(0, ...bars.map(b => b.value ?? 0))
    const step = niceStep(max)
    const top = Math.max(step, Math.ceil(max / step - 1e-9) * step)
    const yOf = (v: number) => plotBottom - Math.max(0, v) / top * PLOT_H
    const dec = decimalsOf(step)

    const g: string[] = [`<g class="panel" data-metric="${m.key}">`]
    g.push(text(plotX, panelTop + 12, m.title, 'font-size="13" font-weight="600"'))
    // grid and y ticks
    for (let k = 0; k * step <= top + 1e-9; k++) {
      const v = k * step
      const ty = yOf(v)
      g.push(`<line x1="${px(plotX)}" y1="${px(ty)}" x2="${px(plotX + rows.length * SLOT)}" y2="${px(ty)}" stroke="${k === 0 ? AXIS : GRID}" stroke-width="1"/>`)
      g.push(text(plotX - 6, ty + 4, v.toFixed(dec), `font-size="11" fill="${MUTED}" text-anchor="end"`))
    }
    g.push(`<line x1="${px(plotX)}" y1="${px(plotTop)}" x2="${px(plotX)}" y2="${px(plotBottom)}" stroke="${AXIS}" stroke-width="1"/>`)
    // y axis label, vertical, left of the tick labels
    const ay = (plotTop + plotBottom) / 2
    g.push(`<text x="${px(x0 + 10)}" y="${px(ay)}" transform="rotate(-90 ${px(x0 + 10)} ${px(ay)})" font-size="11" fill="${MUTED}" text-anchor="middle">${escapeXml(m.axis)}</text>`)
    // bars, then bare ws as a dashed line across the panel, then the labels (with a halo, over the line)
    const labels: string[] = []
    for (const [j, b] of bars.entries()) {
      const cx = plotX + j * SLOT + SLOT / 2
      if (b.value === null) {
        labels.push(text(cx, plotBottom - 6, 'n/a', `font-size="11" fill="${MUTED}" text-anchor="middle"`))
        continue
      }
      const by = yOf(b.value)
      const tip = `${b.label}: ${num(b.value)} ${m.unit}${b.ratio === null ? '' : `, ${times(b.ratio)} bare ws`}`
      g.push(`<rect class="bar" data-server="${escapeXml(b.label)}" data-value="${b.value}" x="${px(cx - BAR_W / 2)}" y="${px(by)}" width="${BAR_W}" height="${px(plotBottom - by)}" fill="${b.color}"><title>${escapeXml(tip)}</title></rect>`)
      if (b.ratio !== null) labels.push(text(cx, by - 19, times(b.ratio), `class="ratio" font-size="12" font-weight="600" text-anchor="middle" ${HALO}`))
      labels.push(text(cx, by - 5, `${num(b.value)} ${m.unit}${b.mark ? ' *' : ''}`, `class="value" font-size="11" fill="${MUTED}" text-anchor="middle" ${HALO}`))
    }
    const ws = bars.find((b, j) => rows[j].s.kind === 'ws' && rows[j].s.nodes === 1 && b.value !== null)
    if (ws?.value != null) {
      const wy = yOf(ws.value)
      g.push(`<line class="ws" x1="${px(plotX)}" y1="${px(wy)}" x2="${px(plotX + rows.length * SLOT)}" y2="${px(wy)}" stroke="${INK}" stroke-width="1" stroke-dasharray="4 3" opacity="0.55"/>`)
    }
    g.push(...labels)
    // server names under the bars, and the x axis label
    for (const [j, lines] of tickLines.entries()) {
      const cx = plotX + j * SLOT + SLOT / 2
      for (const [li, l] of lines.entries()) g.push(text(cx, plotBottom + 15 + li * 13, l, 'class="tick" font-size="11" text-anchor="middle"'))
    }
    g.push(text(plotX + rows.length * SLOT / 2, plotBottom + tickH + 19, 'server', `font-size="11" fill="${MUTED}" text-anchor="middle"`))
    g.push('</g>')
    out.push(g.join('\n'))
  }
  y = panelTop + 20 + HEADROOM + PLOT_H + tickH + 19 + 22
  const foot: string[] = []
  for (const l of noteLines) {
    foot.push(text(PAD, y, l, `font-size="11" fill="${MUTED}"`))
    y += 15
  }
  const height = y - 15 + PAD + 4

  const id = `chart-${scenario.replace(/[^\w-]/g, '')}`
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${px(width)}" height="${px(height)}" viewBox="0 0 ${px(width)} ${px(height)}" role="img" aria-labelledby="${id}-title ${id}-desc">`,
    `<title id="${id}-title">${escapeXml(title)}</title>`,
    `<desc id="${id}-desc">${escapeXml(runLine)}</desc>`,
    `<rect x="0.5" y="0.5" width="${px(width - 1)}" height="${px(height - 1)}" rx="6" fill="${CARD}" stroke="${BORDER}"/>`,
    `<g font-family="${escapeXml(FONT)}" fill="${INK}">`,
    ...head,
    ...out,
    ...foot,
    '</g>',
    '</svg>',
    ''
  ].join('\n')
}

/**
 * Writes `<dir>/<scenario>.svg` for every scenario of the summaries that has
 * something to chart; returns the files written, in the report's order.
 */
export function writeCharts (dir: string, summaries: readonly ChartSummary[], options: { titles?: Partial<ScenarioTitles>, run?: ChartRun, servers?: readonly string[] } = {}): string[] {
  const files: string[] = []
  for (const scenario of CHART_SCENARIOS) {
    if (!summaries.some(s => s.scenario === scenario)) continue
    const svg = chartSvg(summaries, scenario, { title: options.titles?.[scenario], run: options.run, servers: options.servers })
    if (svg === null) continue
    if (files.length === 0) mkdirSync(dir, { recursive: true })
    const file = join(dir, `${scenario}.svg`)
    writeFileSync(file, svg)
    files.push(file)
  }
  return files
}
