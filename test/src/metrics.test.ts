// The hot-path histogram must read exactly like prom-client's own: same
// buckets, cumulative counts, +Inf, sum and count, in the text format and JSON.
import t from 'tap'
import { Histogram, Registry, type Metric } from 'prom-client'
import { HotHistogram } from '../../src/core/stats.ts'
import { GatecastMetrics, PromHistogram } from '../../plugins/metrics.ts'

const BUCKETS = [0.001, 0.01, 0.5, 1]
// on a bound, between, below the first, above the last, zero, negative
const VALUES = [0.001, 0.0005, 0.3, 0.5, 1, 7, 0, -2, 0.01, 0.0100001, 1e9]

t.test('HotHistogram gives the bytes a prom-client Histogram gives for the same observations', async t => {
  const ours = new Registry()
  const theirs = new Registry()
  const hot = new HotHistogram({ name: 'x_seconds', help: 'help text', buckets: BUCKETS })
  ours.registerMetric(new PromHistogram(hot) as unknown as Metric)
  const ref = new Histogram({ name: 'x_seconds', help: 'help text', buckets: BUCKETS, registers: [theirs] })
  t.equal(await ours.metrics(), await theirs.metrics(), 'empty: every bucket at 0')
  for (const v of VALUES) {
    hot.observe(v)
    ref.observe(v)
  }
  const text = await ours.metrics()
  t.equal(text, await theirs.metrics())
  t.match(text, /x_seconds_bucket\{le="\+Inf"\} 11/)
  t.match(text, /x_seconds_count 11/)
  const values = async (r: Registry) => (await r.getMetricsAsJSON()).flatMap(m => m.values.map(v => ({ ...v, exemplar: undefined })))
  t.same(await values(ours), await values(theirs), 'JSON values too')
  ours.resetMetrics()
  theirs.resetMetrics()
  ref.zero({})
  t.equal(await ours.metrics(), await theirs.metrics(), 'reset to zero')
})

t.test('hot counters are read at scrape time, under their labels', async t => {
  const m = new GatecastMetrics()
  let text = await m.registry.metrics()
  t.notMatch(text, /gatecast_upgrades_total\{status="101"/, 'no accepted upgrade line before the first')
  t.match(text, /gatecast_messages_published_total\{source="client"\} 0/)
  m.stats.refused(401, 'token_missing')
  m.stats.upgradesAccepted += 2
  m.stats.publishedByClient += 3
  m.stats.publishedByApi++
  text = await m.registry.metrics()
  t.match(text, /gatecast_upgrades_total\{status="101",code="ok"\} 2/)
  t.match(text, /gatecast_upgrades_total\{status="401",code="token_missing"\} 1/, 'refusals stay beside it')
  t.match(text, /gatecast_messages_published_total\{source="client"\} 3/)
  t.match(text, /gatecast_messages_published_total\{source="api"\} 1/)
  m.stats.upgradesAccepted++
  text = await m.registry.metrics()
  t.match(text, /gatecast_upgrades_total\{status="101",code="ok"\} 3/, 'a second scrape replaces the count, it does not add it twice')
})
