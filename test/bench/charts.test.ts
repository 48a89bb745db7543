// The bench's SVG charts: a bar per server and metric with its ratio to bare ws
// and its value, heights in proportion to the values, well-formed XML with every
// name escaped, the same bytes for the same input; and how the bench decides
// where they go.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { CHART_SERVERS, chartRun, chartSvg, escapeXml, writeCharts, type ChartSummary } from '../../bench/charts.ts'
import { DOCS_CHARTS_DIR, chartsFrom, parseCli } from '../../bench/run.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function summary (scenario: ChartSummary['scenario'], server: string, values: Partial<ChartSummary>): ChartSummary {
  return {
    scenario,
    server,
    kind: server,
    nodes: 1,
    rounds: 3,
    cpuUsPerOp: null,
    writesPerOp: null,
    p50Ms: null,
    p99Ms: null,
    rssKbPerConn: null,
    marginalRssKbPerConn: null,
    baselineRssKb: null,
    heapKbPerSub: null,
    rssKbPerSub: null,
    throughput: null,
    limitedBy: 'offered load',
    otherCores: 0,
    complete: true,
    problems: [],
    ...values
  }
}

const ROOMS: ChartSummary[] = [
  summary('rooms', 'gatecast', { cpuUsPerOp: 10, p50Ms: 1.5, p99Ms: 5 }),
  summary('rooms', 'ws', { cpuUsPerOp: 20, p50Ms: 1.2, p99Ms: 10 }),
  summary('rooms', 'socketio', { cpuUsPerOp: 30, p50Ms: 2, p99Ms: 20 }),
  summary('rooms', 'wscork', { cpuUsPerOp: 8, p50Ms: 1.4, p99Ms: 6 }),
  summary('rooms', 'fastify', { cpuUsPerOp: 19, p50Ms: 1.3, p99Ms: 7 }),
  summary('idle', 'gatecast', { rssKbPerConn: 5, marginalRssKbPerConn: 4 }),
  summary('idle', 'ws', { rssKbPerConn: 11.2, marginalRssKbPerConn: 11.3 })
]
const RUN = { commit: 'abc1234', cpus: 2, cpuModel: 'Test CPU', node: 'v20.20.2' }

/**
 * Well-formedness of the XML the charts use: one root element, balanced tags,
 * quoted and unique attributes, no `<` or bare `&` in text or attribute values.
 * Returns the problems found.
 */
function xmlProblems (xml: string): string[] {
  const problems: string[] = []
  const token = /<\?xml[^?]*\?>|<!--[\s\S]*?-->|<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|[^<]+/y
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9A-Fa-f]+);)/
  const stack: string[] = []
  let roots = 0
  let at = 0
  while (at < xml.length) {
    token.lastIndex = at
    const m = token.exec(xml)
    if (m === null) {
      problems.push(`not markup at ${at}: ${JSON.stringify(xml.slice(at, at + 40))}`)
      break
    }
    const [all, close, open, attrs, selfClosing] = m
    if (all.startsWith('<?xml') && at !== 0) problems.push('XML declaration not at the start')
    if (close !== undefined) {
      const top = stack.pop()
      if (top !== close) problems.push(`</${close}> closes <${top ?? 'nothing'}>`)
    } else if (open !== undefined) {
      if (stack.length === 0) roots++
      const names = new Set<string>()
      for (const a of attrs.matchAll(/([A-Za-z_:][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (names.has(a[1])) problems.push(`<${open}> repeats ${a[1]}`)
        names.add(a[1])
        const value = a[2] ?? a[3]
        if (value.includes('<') || entity.test(value)) problems.push(`<${open} ${a[1]}> has an unescaped < or &: ${value}`)
      }
      if (selfClosing !== '/') stack.push(open)
    } else if (!all.startsWith('<')) {
      if (stack.length === 0 && all.trim() !== '') problems.push(`text outside the root: ${all.trim().slice(0, 40)}`)
      if (entity.test(all)) problems.push(`unescaped & in ${JSON.stringify(all.slice(0, 40))}`)
    }
    at += all.length
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`)
  if (roots !== 1) problems.push(`${roots} root elements`)
  return problems
}

interface BarInfo { server: string, x: number, y: number, width: number, height: number }

function panel (svg: string, metric: string): string {
  const m = new RegExp(`<g class="panel" data-metric="${metric}">([\\s\\S]*?)</g>`).exec(svg)
  if (m === null) throw new Error(`no ${metric} panel`)
  return m[1]
}

function bars (panelSvg: string): BarInfo[] {
  return [...panelSvg.matchAll(/<rect class="bar" data-server="([^"]*)" data-value="[^"]*" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)]
    .map(m => ({ server: m[1], x: Number(m[2]), y: Number(m[3]), width: Number(m[4]), height: Number(m[5]) }))
}

/** the texts of a class in a panel, by their x */
function labels (panelSvg: string, cls: string): Map<number, string> {
  return new Map([...panelSvg.matchAll(new RegExp(`<text x="([\\d.]+)" y="[\\d.]+" class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map(m => [Number(m[1]), m[2]]))
}

t.test('a bar per charted server and metric, heights in proportion, each labelled with its ratio to ws and its value', async t => {
  const svg = chartSvg(ROOMS, 'rooms', { title: 'Rooms — 50 × 10', run: RUN })
  t.ok(svg !== null)
  if (svg === null) return
  t.same(xmlProblems(svg), [], 'well-formed')
  t.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/)
  t.match(svg, '>Rooms — 50 × 10</text>', 'the title')
  t.match(svg, 'commit abc1234', 'the run it comes from')
  t.match(svg, 'medians of 3 rounds')
  t.match(svg, /<rect x="0.5" y="0.5" width="[\d.]+" height="[\d.]+" rx="6" fill="#ffffff"/, 'an explicit light card, for dark and light themes')
  t.notMatch(svg, /NaN|undefined|Infinity|null/)

  const expected: Record<string, Record<string, [number, string, string]>> = {
    cpuUsPerOp: { gatecast: [10, '0.50×', '10.0 µs'], ws: [20, '1.00×', '20.0 µs'], wscork: [8, '0.40×', '8.00 µs'], socketio: [30, '1.50×', '30.0 µs'] },
    p50Ms: { gatecast: [1.5, '1.25×', '1.50 ms'], ws: [1.2, '1.00×', '1.20 ms'], wscork: [1.4, '1.17×', '1.40 ms'], socketio: [2, '1.67×', '2.00 ms'] },
    p99Ms: { gatecast: [5, '0.50×', '5.00 ms'], ws: [10, '1.00×', '10.0 ms'], wscork: [6, '0.60×', '6.00 ms'], socketio: [20, '2.00×', '20.0 ms'] }
  }
  for (const [metric, want] of Object.entries(expected)) {
    const p = panel(svg, metric)
    const bs = bars(p)
    t.same(bs.map(b => b.server), ['gatecast', 'ws', 'wscork', 'socketio'], `${metric}: one bar per server, in order, fastify left out`)
    const ratios = labels(p, 'ratio')
    const values = labels(p, 'value')
    const ws = bs.find(b => b.server === 'ws') as BarInfo
    for (const b of bs) {
      const [value, ratio, text] = want[b.server]
      const centre = Math.round((b.x + b.width / 2) * 10) / 10
      t.equal(ratios.get(centre), ratio, `${metric} ${b.server}: ratio over the bar`)
      t.equal(values.get(centre), text, `${metric} ${b.server}: value over the bar`)
      t.ok(Math.abs(b.height / ws.height - value / want.ws[0]) < 0.01, `${metric} ${b.server}: height ${b.height} in proportion (${value} against ws ${want.ws[0]})`)
      t.ok(Math.abs(b.y + b.height - (ws.y + ws.height)) < 0.11, `${metric} ${b.server}: on the same baseline`)
    }
    t.match(p, /<line class="ws" [^>]*stroke-dasharray/, `${metric}: the dashed bare-ws line`)
  }
  t.match(svg, /transform="rotate\(-90[^"]*"[^>]*>µs of CPU per delivery<\/text>/, 'y axis label')
  t.match(svg, />server<\/text>/, 'x axis label')
})

t.test('names are escaped and the document stays well-formed', async t => {
  const evil = 'a<b&c"d\'e>'
  const rows = [
    summary('fanout', 'ws', { cpuUsPerOp: 4, p50Ms: 2, p99Ms: 3 }),
    summary('fanout', evil, { cpuUsPerOp: 2, p50Ms: 1, p99Ms: 6, complete: false, problems: ['1 dropped & <gone>'] })
  ]
  const svg = chartSvg(rows, 'fanout', { title: 'Fan-out <1 & 2>', run: { ...RUN, source: 'a "file" & <table>' }, servers: ['ws', evil] }) ?? ''
  t.same(xmlProblems(svg), [], 'well-formed')
  t.notMatch(svg, evil, 'the raw name is nowhere')
  t.notMatch(svg, '<1 & 2>')
  t.match(svg, 'data-server="a&lt;b&amp;c&quot;d&apos;e&gt;"', 'escaped in attributes')
  t.match(svg, '>Fan-out &lt;1 &amp; 2&gt;</title>', 'escaped in the title')
  t.match(svg, 'a &quot;file&quot; &amp; &lt;table&gt;', 'escaped in the notes')
  t.match(svg, '1 dropped &amp; &lt;gone&gt;', 'an incomplete row says why')
  t.match(svg, '>2.00 µs *</text>', 'and is marked on its bar')
  t.equal(escapeXml('<&>"\''), '&lt;&amp;&gt;&quot;&apos;')
  t.same(xmlProblems('<svg><g></svg>'), ['</svg> closes <g>', 'unclosed: svg'], 'the checker itself catches imbalance')
  t.same(xmlProblems('<svg>a & b</svg>'), ['unescaped & in "a & b"'], 'and a bare &')
})

t.test('the same input gives the same bytes, whatever the order of the summaries', async t => {
  const a = chartSvg(ROOMS, 'rooms', { title: 'Rooms', run: RUN })
  const b = chartSvg([...ROOMS].reverse(), 'rooms', { title: 'Rooms', run: RUN })
  t.ok(a !== null && a.length > 1000)
  t.equal(a, b)
  const d1 = t.testdir()
  const d2 = t.testdir()
  const f1 = writeCharts(join(d1, 'one'), ROOMS, { titles: { rooms: 'Rooms', idle: 'Idle' }, run: RUN })
  const f2 = writeCharts(join(d2, 'two'), [...ROOMS].reverse(), { titles: { rooms: 'Rooms', idle: 'Idle' }, run: RUN })
  t.same(f1.map(f => f.slice(d1.length)), ['/one/rooms.svg', '/one/idle.svg'], 'one file per scenario that ran, in the report\'s order')
  for (const [i, f] of f1.entries()) t.equal(readFileSync(f, 'utf8'), readFileSync(f2[i], 'utf8'), f.slice(d1.length))
})

t.test('printed ratios win over ratios recomputed from rounded values; missing values and baselines', async t => {
  const rows = [
    summary('idle', 'gatecast', { rssKbPerConn: 5.02, marginalRssKbPerConn: null, ratiosToWs: { rssKbPerConn: 0.45 } }),
    summary('idle', 'ws', { rssKbPerConn: 11.2, marginalRssKbPerConn: 11.3 })
  ]
  const svg = chartSvg(rows, 'idle') ?? ''
  t.match(panel(svg, 'rssKbPerConn'), '>0.45×</text>', 'as printed (5.02 / 11.2 would be 0.448)')
  t.match(panel(svg, 'marginalRssKbPerConn'), '>n/a</text>', 'no value, no bar')
  t.equal(bars(panel(svg, 'marginalRssKbPerConn')).length, 1)
  t.same(xmlProblems(svg), [])
  const alone = chartSvg([summary('rooms', 'gatecast', { cpuUsPerOp: 3 })], 'rooms') ?? ''
  t.notMatch(alone, 'class="ratio"', 'no ws in the run: values only')
  t.match(alone, '>3.00 µs</text>')
  t.equal(chartSvg(ROOMS, 'multi'), null, 'nothing to chart')
  t.equal(chartSvg([summary('rooms', 'fastify', { cpuUsPerOp: 3 })], 'rooms'), null, 'no charted server')
})

t.test('the cluster chart puts the Redis nodes beside bare ws\'s 1-node fan-out', async t => {
  const rows = [
    summary('fanout', 'ws', { cpuUsPerOp: 10, p50Ms: 70, p99Ms: 110 }),
    summary('fanout', 'gatecast', { cpuUsPerOp: 2.6, p50Ms: 23, p99Ms: 51 }),
    { ...summary('cluster', 'gatecast+redis ×1', { cpuUsPerOp: 1.8, p50Ms: 22, p99Ms: 56 }), kind: 'gatecast' },
    { ...summary('cluster', 'gatecast+redis ×2', { cpuUsPerOp: 3.1, p50Ms: 24, p99Ms: 52 }), kind: 'gatecast', nodes: 2 }
  ]
  const svg = chartSvg(rows, 'cluster') ?? ''
  t.same(xmlProblems(svg), [])
  const p = panel(svg, 'cpuUsPerOp')
  t.same(bars(p).map(b => b.server), ['ws (fan-out)', 'gatecast+redis ×1', 'gatecast+redis ×2'])
  t.match(p, '>0.31×</text>')
  t.match(svg, 'Redis server')
})

t.test('chartRun reads a --json file\'s meta', async t => {
  t.same(chartRun({ date: '2025-01-02T03:04:05.000Z', machine: { cpus: 2, cpuModel: 'X', node: 'v20', commit: 'abc', dirty: true } }),
    { commit: 'abc', dirty: true, date: '2025-01-02T03:04:05.000Z', cpus: 2, cpuModel: 'X', node: 'v20' })
  t.same(chartRun(undefined), {})
  const svg = chartSvg(ROOMS, 'rooms', { run: chartRun({ date: '2025-01-02T03:04:05.000Z', machine: { commit: 'abc', dirty: true } }) }) ?? ''
  t.match(svg, 'commit abc + uncommitted changes · 2025-01-02')
})

t.test('where the bench writes its charts', async t => {
  t.equal(DOCS_CHARTS_DIR, join(ROOT, 'docs', 'bench'))
  t.equal(parseCli([])?.charts, DOCS_CHARTS_DIR, 'a full run of gatecast, ws and socketio: docs/bench')
  t.equal(parseCli(['--only', 'gatecast,ws,socketio,wscork', '--scenarios', 'rooms'])?.charts, DOCS_CHARTS_DIR)
  t.equal(parseCli(['--quick'])?.charts, undefined, 'not --quick')
  t.equal(parseCli(['--tiny'])?.charts, undefined, 'not --tiny (the smoke test)')
  t.equal(parseCli(['--only', 'gatecast,ws'])?.charts, undefined, 'not without socketio')
  t.equal(parseCli(['--no-charts'])?.charts, undefined)
  t.equal(parseCli(['--tiny', '--charts', 'out'])?.charts, 'out', 'anywhere, when asked')
  t.equal(parseCli(['--charts-from', 'r.json'])?.chartsFrom, 'r.json')
  t.equal(parseCli(['--charts-from', 'r.json', '--quick'])?.charts, DOCS_CHARTS_DIR)
  t.throws(() => parseCli(['--no-charts', '--charts', 'out']), /--no-charts/)
  t.same(CHART_SERVERS, ['gatecast', 'ws', 'wscork', 'socketio'])
})

t.test('--charts-from draws a results file: the committed run of docs/bench', async t => {
  const dir = t.testdir()
  const files = await chartsFrom(join(ROOT, 'docs/bench/run-7ce17aa.json'), dir)
  t.same(files.map(f => f.slice(dir.length + 1)), ['handshake.svg', 'fanout.svg', 'rooms.svg', 'bursts.svg', 'idle.svg', 'cluster.svg'])
  for (const f of files) {
    const svg = readFileSync(f, 'utf8')
    t.same(xmlProblems(svg), [], `${f.slice(dir.length + 1)} well-formed`)
    t.match(svg, 'commit 7ce17aa', 'says which run')
  }
  const json = join(dir, 'bench.json')
  writeFileSync(json, JSON.stringify({ meta: { sizes: { rooms: { r: 7, p: 3, rate: 2, seconds: 1, together: 1 } }, machine: { commit: 'def5678' } }, summaries: ROOMS }))
  const [rooms] = await chartsFrom(json, join(dir, 'own'))
  t.match(readFileSync(rooms, 'utf8'), 'Rooms — 7 channels × 3 members, each publishing 2/s for 1 s', 'titles from the run\'s sizes')
  await t.rejects(chartsFrom(join(ROOT, 'package.json'), dir), /no "summaries"/)
})
