// The rooms ticker's schedule: the bursts scenario is only bursts if a room's
// group of publishes never straddles two ticks.
import t from 'tap'
import { publishesDue } from '../../bench/load.ts'

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
