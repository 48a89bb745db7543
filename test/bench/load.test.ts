// The rooms ticker's schedule: the bursts scenario is only bursts if a room's
// group of publishes never straddles two ticks.
import t from 'tap'
import { channelsOf, fillerFor, publishesDue } from '../../bench/load.ts'

t.test('publishesDue sends whole groups, on schedule, and stops at the total', async t => {
  const rate = 2000
  const total = 12_000
  for (const together of [1, 3, 10]) {
    const wrong: string[] = []
    let last = 0
    // the ticks of a 5 ms interval with jitter, as setInterval delivers them
    for (let ms = 0; ms <= 6500; ms += 4 + (ms % 7)) {
      const due = publishesDue(ms, rate, total, together)
      const onRate = Math.min(total, Math.floor(ms * rate / 1000) + 1)
      if (due < last) wrong.push(`${ms} ms: went back to ${due}`)
      if (due < total && due % together !== 0) wrong.push(`${ms} ms: ${due} splits a group`)
      if (due < onRate || due >= onRate + together) wrong.push(`${ms} ms: ${due} for ${onRate} on the rate`)
      last = due
    }
    t.same(wrong, [], `groups of ${together}: whole, in order, on the rate, never more than one group ahead`)
    t.equal(last, total, `all ${total} sent by the end`)
  }
  t.equal(publishesDue(0, rate, total, 1), 1, 'the first publish leaves at once')
  t.equal(publishesDue(0, rate, total, 10), 10, 'with its whole group')
  t.equal(publishesDue(10_000, rate, 25, 10), 25, 'a last group shorter than the others')
})

t.test('channelsOf gives each socket K distinct channels and every channel the same number of sockets', async t => {
  for (const [n, k, c] of [[1000, 10, 100], [300, 5, 30], [12, 3, 6], [50, 7, 20]]) {
    const counts = new Array<number>(c).fill(0)
    let distinct = true
    for (let i = 0; i < n; i++) {
      const chs = channelsOf(i, k, c)
      if (new Set(chs).size !== k || chs.some(ch => ch < 0 || ch >= c)) distinct = false
      for (const ch of chs) counts[ch]++
    }
    t.ok(distinct, `${n} sockets × ${k} of ${c}: K distinct channels each`)
    t.ok(Math.max(...counts) - Math.min(...counts) <= Math.ceil(n / c), `${n} sockets × ${k} of ${c}: balanced (${Math.min(...counts)}–${Math.max(...counts)})`)
  }
})

t.test('fillerFor brings a timestamped payload to about the size asked for', async t => {
  for (const bytes of [60, 100, 500]) {
    const size = JSON.stringify({ t: 98765.43210987654, s: fillerFor(bytes) }).length
    t.ok(Math.abs(size - bytes) <= 3, `${bytes} asked, ${size} made`)
  }
  t.equal(fillerFor(undefined), undefined)
  t.equal(fillerFor(0), undefined)
})
