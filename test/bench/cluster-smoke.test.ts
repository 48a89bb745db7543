// Issue 18's scenarios end to end on tiny sizes: two Gatecast nodes and two
// nodes of the Node cluster floor (ws-redis) on a private redis-server and on
// a private 3-master Redis Cluster, each with every number, Redis's CPU in it
// and the masters' shares of the pub/sub commands. Apart from smoke.test.ts:
// starting the cluster alone takes seconds. Timings are not judged.
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { test } from 'tap'
import { parseCommandStats, statsDelta } from '../../bench/redis-local.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN = join(ROOT, 'dist/bench/run.js')
const run = promisify(execFile)

const hasRedis = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    execFileSync('redis-cli', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

t.setTimeout(150_000)

test('INFO commandstats: calls and µs per command, and their change over a window', async (t) => {
  const before = parseCommandStats('# Commandstats\r\ncmdstat_evalsha:calls=3,usec=120,usec_per_call=40.00,rejected_calls=0,failed_calls=0\r\ncmdstat_cluster|info:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n')
  t.same(before, { evalsha: { calls: 3, usec: 120 }, 'cluster|info': { calls: 2, usec: 10 } })
  const after = parseCommandStats('cmdstat_evalsha:calls=13,usec=620,usec_per_call=47.69\ncmdstat_cluster|info:calls=2,usec=10,usec_per_call=5.00\ncmdstat_spublish:calls=10,usec=30,usec_per_call=3.00\n')
  t.same(statsDelta(before, after), { evalsha: { calls: 10, usec: 500 }, spublish: { calls: 10, usec: 30 } }, 'commands that did not run are left out')
})

interface RedisNode { port: number, role: string, shard: number, cpuUsPerMessage: number | null, pubsubShare: number | null }
interface Summary {
  scenario: string
  server: string
  kind: string
  redisSetup: string | null
  cpuUsPerOp: number | null
  redisCpuUsPerOp: number | null
  writesPerOp: number | null
  p50Ms: number | null
  p99Ms: number | null
  throughput: number | null
  complete: boolean
  problems: string[]
  redis: { callsPerMessage: Record<string, number>, cpuUsPerMessage: number | null, nodes: RedisNode[] } | null
}

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0

test('--tiny --scenarios cluster-fanout,cluster-rooms on a private Redis and a private Redis Cluster: gatecast and the floor produce every number', { skip: hasRedis ? false : 'redis-server and redis-cli are not installed' }, async (t) => {
  t.ok(existsSync(RUN), 'dist/bench/run.js is built (npm run build)')
  const json = join(t.testdir(), 'bench18.json')
  const { stdout } = await run(process.execPath, [RUN, '--tiny', '--only', 'gatecast', '--scenarios', 'cluster-fanout,cluster-rooms', '--redis-start', '--redis-cluster', '--json', json], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    timeout: 140_000,
    killSignal: 'SIGTERM'
  })
  const out = JSON.parse(readFileSync(json, 'utf8')) as { summaries: Summary[], results: unknown[] }
  for (const scenario of ['cluster-fanout', 'cluster-rooms']) {
    for (const setup of ['redis', 'cluster']) {
      for (const kind of ['gatecast', 'ws-redis']) {
        const s = out.summaries.find(x => x.scenario === scenario && x.kind === kind && x.redisSetup === setup)
        if (s === undefined) {
          t.fail(`${kind} ${scenario} on ${setup}: no result`)
          continue
        }
        const name = `${s.server} ${scenario}`
        t.ok(s.complete, `${name} complete ${s.problems.join('; ')}`)
        for (const key of ['cpuUsPerOp', 'redisCpuUsPerOp', 'writesPerOp', 'p50Ms', 'p99Ms', 'throughput'] as const) {
          t.ok(positive(s[key]), `${name} ${key} = ${s[key]}`)
        }
        t.ok((s.cpuUsPerOp ?? 0) > (s.redisCpuUsPerOp ?? Infinity), `${name}: Redis's CPU is part of the CPU per delivery`)
        const redis = s.redis
        t.ok(redis !== null, `${name}: Redis's commands were read`)
        if (redis === null) continue
        const pubsub = (redis.callsPerMessage.publish ?? 0) + (redis.callsPerMessage.spublish ?? 0)
        t.ok(pubsub >= 0.99 && pubsub <= 1.01, `${name}: one publish per message (${pubsub})`)
        // ioredis sends EVAL where a node's EVALSHA found no script yet
        const scripts = (redis.callsPerMessage.evalsha ?? 0) + (redis.callsPerMessage.eval ?? 0)
        // on a cluster the history byte indexes are kept up by a batched script too (one per node
        // every 250 ms at most, not per message): a few more in a tiny window
        if (kind === 'gatecast') {
          t.ok(setup === 'cluster' ? scripts >= 0.99 && scripts < 1.3 : Math.abs(scripts - 1) < 0.01, `${name}: one script per message (${scripts})`)
        }
        const masters = redis.nodes.filter(n => n.role === 'master')
        t.equal(masters.length, setup === 'cluster' ? 3 : 1, `${name}: masters`)
        t.equal(redis.nodes.length, setup === 'cluster' ? 6 : 1, `${name}: every redis-server`)
        const shares = masters.reduce((sum, n) => sum + (n.pubsubShare ?? 0), 0)
        t.ok(Math.abs(shares - 1) < 0.01, `${name}: the masters' shares of the pub/sub commands add up to 1 (${shares})`)
      }
    }
  }
  t.equal(out.results.length, 8, 'one measurement per server, scenario and Redis')
  t.match(stdout, /Gatecast nodes on Redis ÷ the Node cluster floor/)
  t.match(stdout, /### Rooms over Redis, 2 nodes against the Node cluster floor/)
  t.match(stdout, /Each shard's part/)
})

test('the cluster-* scenarios need a Redis', async (t) => {
  t.ok(existsSync(RUN), 'dist/bench/run.js is built (npm run build)')
  const err = await run(process.execPath, [RUN, '--scenarios', 'cluster-rooms'], { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 })
    .then(() => null, (e: { code?: number, stderr?: string }) => e)
  t.equal(err?.code, 2)
  t.match(err?.stderr ?? '', /cluster-\* scenarios need a Redis/)
})
