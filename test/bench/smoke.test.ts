// The benchmark suite runs end to end on tiny sizes: every server answers
// every scenario with numbers (issue 15's opt-in multi and rooms-spread in a
// run of their own). Timings themselves are not checked here.
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { test } from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN = join(ROOT, 'dist/bench/run.js')
const run = promisify(execFile)

interface Summary {
  scenario: string
  server: string
  cpuUsPerOp: number | null
  writesPerOp: number | null
  p50Ms: number | null
  p99Ms: number | null
  throughput: number | null
  rssKbPerConn: number | null
  complete: boolean
  problems: string[]
}

// six servers × five scenarios: ≈ 35 s alone, about twice that beside other test files
t.setTimeout(150_000)

const SERVERS = ['gatecast', 'ws', 'socketio', 'fastify', 'wscork', 'direct']

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0

test('npm run bench -- --tiny with every server (the opt-in Fastify floor, corked bare ws and Gatecast outside the router too): every server produces every number', async (t) => {
  t.ok(existsSync(RUN), 'dist/bench/run.js is built (npm run build)')
  const json = join(t.testdir(), 'bench.json')
  // only PATH and HOME: no NODE_OPTIONS of the runner changes the benchmark (tap still follows the children for coverage)
  const { stdout } = await run(process.execPath, [RUN, '--tiny', '--only', SERVERS.join(','), '--json', json], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    timeout: 140_000,
    killSignal: 'SIGTERM'
  })
  const out = JSON.parse(readFileSync(json, 'utf8')) as { summaries: Summary[], results: unknown[] }

  for (const server of SERVERS) {
    for (const scenario of ['handshake', 'fanout', 'rooms', 'bursts']) {
      const s = out.summaries.find(x => x.server === server && x.scenario === scenario)
      if (s === undefined) {
        t.fail(`${server} ${scenario}: no result`)
        continue
      }
      t.ok(s.complete, `${server} ${scenario} complete ${s.problems.join('; ')}`)
      for (const key of ['cpuUsPerOp', 'p50Ms', 'p99Ms', 'throughput'] as const) {
        t.ok(positive(s[key]), `${server} ${scenario} ${key} = ${s[key]}`)
      }
      // read from /proc/<pid>/io: every delivery needs a write, unless the server batched them
      if (scenario !== 'handshake') t.ok(positive(s.writesPerOp), `${server} ${scenario} writesPerOp = ${s.writesPerOp}`)
    }
    const idle = out.summaries.find(x => x.server === server && x.scenario === 'idle')
    t.ok(idle?.complete, `${server} idle complete`)
    // a number, not a judgement: at 700 sockets of ≈ 4 KB, RSS noise (heap shrinking after
    // the GCs) can outweigh the sockets, so the difference may come out at or below zero
    t.ok(typeof idle?.rssKbPerConn === 'number' && Number.isFinite(idle.rssKbPerConn), `${server} idle rssKbPerConn = ${idle?.rssKbPerConn}`)
  }
  t.equal(out.results.length, SERVERS.length * 5, 'one measurement per server and scenario')
  t.match(stdout, /### Ratios to bare ws/)
  t.match(stdout, /### Fan-out/)
})

interface MultiSummary extends Summary {
  heapKbPerSub: number | null
  rssKbPerSub: number | null
}

test('--tiny --scenarios multi,rooms-spread (issue 15, opt-in): gatecast, ws and socketio produce every number', async (t) => {
  t.ok(existsSync(RUN), 'dist/bench/run.js is built (npm run build)')
  const json = join(t.testdir(), 'bench15.json')
  const servers = ['gatecast', 'ws', 'socketio']
  const { stdout } = await run(process.execPath, [RUN, '--tiny', '--only', servers.join(','), '--scenarios', 'multi,rooms-spread', '--json', json], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    timeout: 60_000,
    killSignal: 'SIGTERM'
  })
  const out = JSON.parse(readFileSync(json, 'utf8')) as { summaries: MultiSummary[], results: unknown[] }
  for (const server of servers) {
    for (const scenario of ['multi', 'rooms-spread']) {
      const s = out.summaries.find(x => x.server === server && x.scenario === scenario)
      if (s === undefined) {
        t.fail(`${server} ${scenario}: no result`)
        continue
      }
      t.ok(s.complete, `${server} ${scenario} complete ${s.problems.join('; ')}`)
      for (const key of ['cpuUsPerOp', 'writesPerOp', 'p50Ms', 'p99Ms', 'throughput'] as const) {
        t.ok(positive(s[key]), `${server} ${scenario} ${key} = ${s[key]}`)
      }
    }
    // 24 extra subscriptions at tiny sizes: a heap difference, not yet a judgement (it may even be ≤ 0)
    const m = out.summaries.find(x => x.server === server && x.scenario === 'multi')
    t.ok(typeof m?.heapKbPerSub === 'number' && Number.isFinite(m.heapKbPerSub), `${server} multi heapKbPerSub = ${m?.heapKbPerSub}`)
    t.ok(typeof m?.rssKbPerSub === 'number' && Number.isFinite(m.rssKbPerSub), `${server} multi rssKbPerSub = ${m?.rssKbPerSub}`)
  }
  t.equal(out.results.length, servers.length * 2, 'one measurement per server and scenario')
  t.match(stdout, /multi: CPU per delivery/)
  t.match(stdout, /### One socket, many channels/)
  t.match(stdout, /### Rooms, spread-out publishes/)
})

test('unknown flags are refused with the usage', async (t) => {
  t.ok(existsSync(RUN), 'dist/bench/run.js is built (npm run build)')
  const err = await run(process.execPath, [RUN, '--only', 'nginx'], { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 })
    .then(() => null, (e: { code?: number, stderr?: string }) => e)
  t.equal(err?.code, 2)
  t.match(err?.stderr ?? '', /unknown server "nginx"/)
})
