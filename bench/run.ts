// Benchmark orchestrator and load generator: Gatecast against a bare `ws`
// server (the Node floor) and Socket.IO 4, the same scenarios, each server in
// its own child process, alternating A B C A B C over the rounds; medians and
// ratios to bare ws as markdown on stdout, optionally everything as JSON.
//
//   npm run bench                       full run (≈ 10 min on 2 cores)
//   npm run bench -- --quick            under a minute
//   npm run bench -- --scenarios multi,rooms-spread   issue 15's two (opt-in)
//   npm run bench -- --charts-from bench.json         the SVG charts of a --json file, nothing run
//   npm run bench -- --only gatecast --scenarios cluster-fanout,cluster-rooms --redis-start --redis-cluster
//                                       issue 18: 2 Gatecast nodes against the Node cluster floor, one Redis and a Redis Cluster
//   npm run bench -- --help             every flag
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, release, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import type { ChartSummary } from './charts.ts'
import { DEFAULT_SERVERS, SECRET, SERVER_KINDS, type ServerKind, type ServerOptions } from './common.ts'
import {
  fanout, handshake, idle, multi, rooms, roomsSpread,
  type FanoutParams, type HandshakeParams, type IdleParams, type MultiParams, type Result, type RoomsParams, type ScenarioName,
  type SpreadParams, type Target
} from './load.ts'
import { profileMarkdown, summarizeProfiles, type CpuProfile } from './profile.ts'
import { FLOOR_SCENARIOS, markdown, summarize, type ScenarioTitles, type Summary } from './report.ts'
import { readMachineBusyUs } from './proc.ts'
import { redisProcesses, startCluster, startRedis, type LocalRedis, type RedisProcess } from './redis-local.ts'
import { killAll, spawnServer, type ServerNode } from './spawn.ts'
import { sleep } from './stats.ts'

export interface Sizes {
  handshake: HandshakeParams
  fanout: FanoutParams
  rooms: RoomsParams
  idle: IdleParams
  multi: MultiParams
  'rooms-spread': SpreadParams
  rounds: number
}

// full: ≈ 5 minutes on a quiet 2-core machine (more on a busy one); quick: < 1 minute; tiny: the smoke test (≈ 35 s with all six servers)
export const PRESETS: Record<'full' | 'quick' | 'tiny', Sizes> = {
  full: {
    handshake: { n: 1500, k: 50 },
    fanout: { s: 500, m: 600, w: 16 },
    rooms: { r: 50, p: 10, rate: 4, seconds: 6, together: 1 },
    idle: { n: 4000, settleMs: 400 },
    multi: { n: 1000, k: 10, c: 100, rate: 300, seconds: 5, settleMs: 400 },
    'rooms-spread': { r: 100, p: 10, msgs: 5, rate: 2000, bytes: 100 },
    rounds: 3
  },
  quick: {
    handshake: { n: 400, k: 25 },
    fanout: { s: 100, m: 400, w: 16 },
    rooms: { r: 20, p: 5, rate: 10, seconds: 2, together: 1 },
    idle: { n: 1000, settleMs: 300 },
    multi: { n: 300, k: 5, c: 30, rate: 150, seconds: 2, settleMs: 300 },
    'rooms-spread': { r: 30, p: 5, msgs: 4, rate: 600, bytes: 100 },
    rounds: 1
  },
  tiny: {
    handshake: { n: 20, k: 5 },
    fanout: { s: 10, m: 30, w: 4 },
    rooms: { r: 3, p: 3, rate: 10, seconds: 0.5, together: 1 },
    idle: { n: 700, settleMs: 100 },
    multi: { n: 12, k: 3, c: 6, rate: 60, seconds: 0.25, settleMs: 50 },
    'rooms-spread': { r: 3, p: 3, msgs: 2, rate: 80, bytes: 100 },
    rounds: 1
  }
}

const SCENARIOS: ScenarioName[] = ['handshake', 'fanout', 'rooms', 'bursts', 'idle', 'cluster', 'multi', 'rooms-spread', 'cluster-fanout', 'cluster-rooms']
/** Gatecast nodes per run in the cluster-* scenarios, and the floor's */
const FLOOR_NODES = 2
/** what runs without --scenarios; issue 15's multi and rooms-spread are opt-in */
const DEFAULT_SCENARIOS: ScenarioName[] = ['handshake', 'fanout', 'rooms', 'bursts', 'idle', 'cluster']
/** servers a scenario cannot run against: the multi scenario needs a `/ws` route without a channel */
const UNSUPPORTED: Partial<Record<ScenarioName, readonly ServerKind[]>> = { multi: ['fastify', 'direct'] }
/** the servers that run in the cluster-* scenarios (the floor, ws-redis, always) and only there */
const ON_REDIS: readonly ServerKind[] = ['gatecast', 'ws-redis']
/** V8's sampling interval for --profile-window, µs */
const PROFILE_INTERVAL_US = 100

const HELP = `Usage: npm run bench -- [flags]   (or: node dist/bench/run.js [flags])

  --quick                 small sizes, 1 round (under a minute)
  --tiny                  minimal sizes (the smoke test)
  --rounds N              rounds of A B C (default 3; 1 with --quick/--tiny)
  --only LIST             servers: gatecast,ws,socketio,fastify,wscork,direct (default gatecast,ws,socketio;
                          fastify is the Fastify floor: @fastify/websocket and a JWT hook, nothing else;
                          wscork is bare ws with each frame built once and sockets corked per turn;
                          direct is Gatecast with its upgrades answered outside Fastify's router)
  --scenarios LIST        handshake,fanout,rooms,bursts,idle,cluster,multi,rooms-spread,cluster-fanout,cluster-rooms
                          (default all but multi, rooms-spread and cluster-*; cluster needs --redis;
                          bursts is rooms with each room's P members publishing back to back;
                          multi: N sockets each subscribed with frames to K of C channels (not fastify, direct);
                          rooms-spread: R rooms × P members, each publishing MSGS messages of ≈ BYTES bytes,
                          RATE publishes/s in all, spread over the rooms;
                          cluster-fanout, cluster-rooms (issue 18): fan-out and rooms against ${FLOOR_NODES} Gatecast nodes
                          and ${FLOOR_NODES} nodes of the Node cluster floor (ws-redis: bare ws + ioredis pub/sub) on each
                          Redis given (--redis…, --redis-cluster…), CPU summed over the nodes and the redis-servers)
  --set KEY=VALUE         override a size, e.g. --set fanout.s=1000 --set rooms.rate=8 --set multi.k=20 (repeatable)
  --redis                 also run the 2-node Gatecast fan-out over Redis (REDIS_URL or redis://127.0.0.1:6379)
  --redis-url URL         the same with this URL
  --redis-start           the same on a redis-server started for the run (nothing else on it: its CPU and
                          command counts are the run's own)
  --redis-cluster         run the cluster-* scenarios on a Redis Cluster (3 masters, 3 replicas) started for the run
  --redis-cluster-url URL the same on this cluster (a comma list of its nodes)
  --json FILE             write every measurement and the summary as JSON
  --quiet-wait S          before each server starts, wait up to S s for other processes to go quiet
                          (default 10; 0 with --quick and --tiny)
  --reuse-servers         one server process per server and round for all scenarios (default with --tiny)
  --cpu-prof DIR          write a V8 CPU profile of each server process into DIR/<server>/
  --profile-window DIR    profile each server during each measured window only (fanout, rooms, bursts, multi,
                          rooms-spread; ${PROFILE_INTERVAL_US} µs sampling) into DIR/<server>-<scenario>-r<round>.cpuprofile, and
                          append a summary per server and scenario (self time by step and by function) to the report;
                          the sampling costs CPU: do not take ratios from a profiled run
  --gatecast-log LEVEL    Gatecast's pino level (default warn)
  --charts DIR            write an SVG chart per scenario, DIR/<scenario>.svg: a panel per metric, gatecast, ws,
                          wscork (when run) and socketio side by side, each bar with its ratio to bare ws and its
                          value. Default: docs/bench/ of this repository for a run at full sizes (no --quick or
                          --tiny) that includes gatecast, ws and socketio (the charts docs/benchmarks.md shows;
                          a run of some scenarios replaces their charts only); no charts otherwise
  --no-charts             no charts, whatever the run
  --charts-from FILE      run nothing: draw the charts of FILE (a --json file, or a results file of the same shape)
                          into --charts DIR (default docs/bench/)
  --help
`

export interface RunOptions {
  sizes: Sizes
  servers: ServerKind[]
  scenarios: ScenarioName[]
  redisUrl?: string
  /** start a private redis-server for the run (instead of redisUrl) */
  startRedis?: boolean
  /** a Redis Cluster for the cluster-* scenarios (comma list of nodes) */
  redisClusterUrl?: string
  /** start a private Redis Cluster for the run (instead of redisClusterUrl) */
  startCluster?: boolean
  cpuProfDir?: string
  /** profile every measured window of every server into this directory */
  profileDir?: string
  gatecastLog?: string
  /** before each server starts, wait up to this many seconds for other processes to leave the CPUs */
  quietWaitS?: number
  /** one server process per server and round for all its scenarios (idle first), instead of one per scenario */
  reuseServers?: boolean
  log?: (line: string) => void
}

export interface RunOutput {
  meta: Record<string, unknown>
  results: Result[]
  summaries: Summary[]
  markdown: string
}

function titles (z: Sizes): ScenarioTitles {
  return {
    handshake: `Handshake — ${z.handshake.n} connects with a token, ${z.handshake.k} in flight`,
    fanout: `Fan-out — 1 channel, ${z.fanout.s} subscribers, ${z.fanout.m} messages from one of them, ≤ ${z.fanout.w} in flight`,
    rooms: `Rooms — ${z.rooms.r} channels × ${z.rooms.p} members, each publishing ${z.rooms.rate}/s for ${z.rooms.seconds} s${z.rooms.together > 1 ? `, ${z.rooms.together} publishes of one room back to back` : ''}`,
    bursts: `Rooms in bursts — the same, each room's ${z.rooms.p} members publishing back to back`,
    idle: `Idle memory — ${z.idle.n} idle sockets`,
    cluster: 'Cluster fan-out over Redis — same sizes as fan-out, subscribers spread over the nodes',
    'cluster-fanout': `Fan-out over Redis, ${FLOOR_NODES} nodes against the Node cluster floor — 1 channel, ${z.fanout.s} subscribers spread over the nodes, ${z.fanout.m} messages from one of them (on the first node), ≤ ${z.fanout.w} in flight`,
    'cluster-rooms': `Rooms over Redis, ${FLOOR_NODES} nodes against the Node cluster floor — ${z.rooms.r} channels × ${z.rooms.p} members, each room's members on every node in turn, each publishing ${z.rooms.rate}/s for ${z.rooms.seconds} s${z.rooms.together > 1 ? `, ${z.rooms.together} publishes of one room back to back` : ''}`,
    multi: `One socket, many channels — ${z.multi.n} sockets, each subscribed with frames to ${z.multi.k} of ${z.multi.c} channels; ${z.multi.rate} publishes/s over the channels for ${z.multi.seconds} s`,
    'rooms-spread': `Rooms, spread-out publishes — ${z['rooms-spread'].r} rooms × ${z['rooms-spread'].p} members, each publishing ${z['rooms-spread'].msgs} messages of ≈ ${z['rooms-spread'].bytes} B, ${z['rooms-spread'].rate} publishes/s in all`
  }
}

/** The repository: the nearest directory above this module with a package.json (bench/ or dist/bench/). */
function repoRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}

/** Where a full run's charts go, and where docs/benchmarks.md finds them. */
export const DOCS_CHARTS_DIR = join(repoRoot(), 'docs', 'bench')

function git (args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

function machine (): Record<string, unknown> {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    kernel: release(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    dirty: (git(['status', '--porcelain', '--', 'src', 'plugins', 'routes']) ?? '') !== ''
  }
}

/** Deletes a run's keys: on a cluster from each master, one key at a time (keys of many slots). */
async function deleteKeys (url: string, pattern: string, cluster = false): Promise<number> {
  let n = 0
  const sweep = async (r: Redis, del: (keys: string[]) => Promise<number>) => {
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) n += await del(keys)
    } while (cursor !== '0')
  }
  if (cluster) {
    const c = new Cluster(url.split(',').map(u => new URL(u.trim())).map(u => ({ host: u.hostname, port: Number(u.port === '' ? 6379 : u.port) })), { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000 } })
    c.on('error', () => {})
    try {
      await c.connect()
      for (const master of c.nodes('master')) {
        await sweep(master, async keys => (await Promise.all(keys.map(k => master.unlink(k)))).reduce((a, b) => a + b, 0))
      }
    } finally {
      c.disconnect()
    }
    return n
  }
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 })
  try {
    await r.connect()
    await sweep(r, keys => r.unlink(...keys))
  } finally {
    r.disconnect()
  }
  return n
}

async function checkRedis (url: string, flag = '--redis'): Promise<void> {
  // a cluster's first node is enough to know the URL is right; the processes are read from it next
  const r = new Redis(url.split(',')[0].trim(), { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null })
  try {
    await r.connect()
    await r.ping()
  } catch (err) {
    throw new Error(`${flag}: ${url} does not answer: ${(err as Error).message}`)
  } finally {
    r.disconnect()
  }
}

/** One Redis (or Redis Cluster) the nodes of a job run on. */
interface RedisSetup {
  /** `redis` or `cluster` */
  name: string
  url: string
  cluster: boolean
  processes: RedisProcess[]
}

/** Waits (bounded) until the rest of the machine uses less than a quarter of a core; returns that load. */
async function waitQuiet (maxS: number, log: (line: string) => void): Promise<number> {
  const deadline = Date.now() + maxS * 1000
  let warned = false
  for (;;) {
    const a = readMachineBusyUs()
    await sleep(500)
    const cores = (readMachineBusyUs() - a) / 500_000
    if (cores < 0.25 || Date.now() >= deadline) {
      if (warned) log(`  other load now ${cores.toFixed(2)} core${cores >= 0.25 ? '; going on anyway' : ''}`)
      return cores
    }
    if (!warned) log(`  other processes use ${cores.toFixed(2)} core; waiting up to ${maxS} s for them`)
    warned = true
  }
}

type Runner = (target: Target) => Promise<Result>

interface Job {
  label: string
  kind: ServerKind
  nodes: number
  redis: RedisSetup | null
  /** the redis-servers' CPU is part of the job's CPU per operation (cluster-*), not only reported beside it */
  redisInCpu?: boolean
}

function startNodes (job: Job, o: RunOptions, redisPrefix: string | undefined): Promise<ServerNode[]> {
  const opts: ServerOptions = { secret: SECRET, logLevel: o.gatecastLog }
  if (job.redis !== null) {
    opts.redisUrl = job.redis.url
    opts.redisCluster = job.redis.cluster
    opts.redisPrefix = redisPrefix
  }
  return Promise.all(Array.from({ length: job.nodes }, () => spawnServer(job.kind, opts, { cpuProfDir: o.cpuProfDir })))
}

/** Starts the nodes of one job (or takes them started), runs its scenarios one after the other, stops them (always). */
async function runJob (job: Job, runs: Runner[], o: RunOptions, redisPrefix: string | undefined, done: (r: Result, ms: number) => void, started: Promise<ServerNode[]> | undefined, round: number, profiled: (label: string, scenario: ScenarioName, file: string) => void): Promise<Result[]> {
  let nodes: ServerNode[] = []
  try {
    nodes = await (started ?? startNodes(job, o, redisPrefix))
    if (started === undefined) await sleep(300)
    const profileDir = o.profileDir
    const target: Target = {
      kind: job.kind,
      label: job.label,
      nodes: nodes.map(n => ({ pid: n.pid, port: n.port })),
      redis: job.redis === null ? undefined : { setup: job.redis.name, processes: job.redis.processes, inCpu: job.redisInCpu === true },
      gc: async () => { await Promise.all(nodes.map(n => n.gc())) },
      mem: () => nodes[0].mem(),
      profile: profileDir === undefined
        ? undefined
        : {
            start: () => nodes[0].profileStart(PROFILE_INTERVAL_US),
            stop: async (scenario) => {
              const file = profileFile(profileDir, job.label, scenario, round)
              await nodes[0].profileStop(file)
              profiled(job.label, scenario, file)
            }
          }
    }
    const results: Result[] = []
    let t0 = Date.now()
    for (const run of runs) {
      const r = await run(target)
      done(r, Date.now() - t0)
      results.push(r)
      t0 = Date.now()
    }
    return results
  } finally {
    await Promise.all(nodes.map(n => n.stop()))
    if (job.redis !== null && redisPrefix !== undefined) await deleteKeys(job.redis.url, `${redisPrefix}:*`, job.redis.cluster)
  }
}

function profileFile (dir: string, label: string, scenario: ScenarioName, round: number): string {
  return `${dir}/${label.replace(/[^\w.-]+/g, '_')}-${scenario}-r${round}.cpuprofile`
}

function describe (r: Result): string {
  const parts: string[] = []
  if (r.cpuUsPerOp !== null) parts.push(`${r.cpuUsPerOp.toFixed(2)} µs/${r.opUnit}`)
  if (r.writesPerOp !== null && r.opUnit === 'delivery') parts.push(`${r.writesPerOp.toFixed(2)} writes/delivery`)
  if (r.rssKbPerConn !== null) parts.push(`${r.rssKbPerConn.toFixed(2)} KB/conn`)
  if (r.heapKbPerSub !== null) parts.push(`heap ${r.heapKbPerSub.toFixed(3)} KB/extra sub`)
  if (r.p50Ms !== null && r.p99Ms !== null) parts.push(`p50 ${r.p50Ms.toFixed(2)} ms p99 ${r.p99Ms.toFixed(2)} ms`)
  if (!r.complete) parts.push(`INCOMPLETE ${r.ops}/${r.expectedOps}${r.health.firstError !== undefined ? ` (${r.health.firstError})` : ''}`)
  return parts.join(', ')
}

export async function runBench (o: RunOptions): Promise<RunOutput> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'))
  // Redis started for the run is stopped whatever happens (and killed with the orchestrator)
  const local: LocalRedis[] = []
  try {
    const setups: RedisSetup[] = []
    const oneUrl = o.startRedis === true ? await startLocal(local, startRedis, log, 'a redis-server') : o.redisUrl
    if (oneUrl !== undefined) {
      await checkRedis(oneUrl)
      setups.push({ name: 'redis', url: oneUrl, cluster: false, processes: await redisProcesses(oneUrl, false) })
    }
    const clusterUrl = o.startCluster === true ? await startLocal(local, startCluster, log, 'a Redis Cluster (3 masters, 3 replicas)') : o.redisClusterUrl
    if (clusterUrl !== undefined) {
      await checkRedis(clusterUrl, '--redis-cluster-url')
      setups.push({ name: 'cluster', url: clusterUrl, cluster: true, processes: await redisProcesses(clusterUrl, true) })
    }
    for (const s of setups) {
      const missing = s.processes.filter(p => p.pid === null)
      if (missing.length > 0) log(`  ${s.name}: ${missing.map(p => `${p.host}:${p.port}`).join(', ')} not on this machine: their CPU is not counted`)
    }
    return await runWith(o, setups, log)
  } finally {
    for (const r of local) await r.stop()
  }
}

async function startLocal (local: LocalRedis[], start: () => Promise<LocalRedis>, log: (line: string) => void, what: string): Promise<string> {
  const t0 = Date.now()
  const r = await start()
  local.push(r)
  log(`  started ${what} for the run in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${r.url}`)
  return r.url
}

async function runWith (o: RunOptions, setups: RedisSetup[], log: (line: string) => void): Promise<RunOutput> {
  const z = o.sizes
  const one = setups.find(s => s.name === 'redis')
  const redisBase = `gcbench-${process.pid}-${randomBytes(3).toString('hex')}`
  let redisRuns = 0
  // waiting for a quiet machine stops after two waits in vain in a row
  let quietWaitS = o.quietWaitS ?? 0
  let busyWaits = 0
  const results: Result[] = []
  const started = Date.now()

  const runners: Record<Exclude<ScenarioName, 'cluster' | 'cluster-fanout' | 'cluster-rooms'>, Runner> = {
    handshake: t => handshake(t, z.handshake),
    fanout: t => fanout(t, z.fanout),
    rooms: t => rooms(t, z.rooms),
    bursts: t => rooms(t, { ...z.rooms, together: z.rooms.p }, 'bursts'),
    idle: t => idle(t, z.idle),
    multi: t => multi(t, z.multi),
    'rooms-spread': t => roomsSpread(t, z['rooms-spread'])
  }
  // ws-redis needs Redis: it runs in the cluster-* scenarios only
  const supports = (kind: ServerKind, s: ScenarioName) => kind !== 'ws-redis' && !(UNSUPPORTED[s]?.includes(kind) ?? false)
  for (const s of o.scenarios) {
    const skipped = o.servers.filter(kind => kind !== 'ws-redis' && !supports(kind, s))
    if (skipped.length > 0) log(`  ${s}: not run against ${skipped.join(', ')} (no /ws route without a channel)`)
  }
  const floorScenarios = o.scenarios.filter(s => FLOOR_SCENARIOS.includes(s))
  if (floorScenarios.length > 0) {
    const skipped = o.servers.filter(kind => !ON_REDIS.includes(kind))
    if (skipped.length > 0 && skipped.length < o.servers.length) log(`  ${floorScenarios.join(', ')}: only gatecast and the floor ws-redis run there (not ${skipped.join(', ')})`)
  }
  if (o.profileDir !== undefined) mkdirSync(o.profileDir, { recursive: true })
  const profiles = new Map<string, { label: string, scenario: ScenarioName, files: string[] }>()
  const profiled = (label: string, scenario: ScenarioName, file: string) => {
    const key = `${scenario}\0${label}`
    const p = profiles.get(key)
    if (p === undefined) profiles.set(key, { label, scenario, files: [file] })
    else p.files.push(file)
  }
  const labels: Record<ServerKind, string> = { gatecast: 'gatecast', ws: 'ws', socketio: 'socketio', fastify: 'fastify', wscork: 'wscork', direct: 'direct', backend: 'backend', 'ws-redis': 'ws-redis' }
  // the floor always runs with gatecast there: the ratios are to it
  const onRedis = ON_REDIS.filter(kind => kind === 'ws-redis' || o.servers.includes(kind))

  try {
    for (let round = 1; round <= z.rounds; round++) {
      // (job, its scenarios) in the order they run: servers alternate A B C within each scenario
      const plan: Array<{ job: Job, runs: Runner[] }> = []
      const single = o.scenarios.filter((s): s is Exclude<ScenarioName, 'cluster' | 'cluster-fanout' | 'cluster-rooms'> => s !== 'cluster' && !FLOOR_SCENARIOS.includes(s))
      if (o.reuseServers === true) {
        const ordered = [...single.filter(s => s === 'idle'), ...single.filter(s => s !== 'idle')]
        for (const kind of o.servers) {
          const runs = ordered.filter(s => supports(kind, s)).map(s => runners[s])
          if (runs.length > 0) plan.push({ job: { label: labels[kind], kind, nodes: 1, redis: null }, runs })
        }
      } else {
        for (const scenario of single) {
          for (const kind of o.servers.filter(k => supports(k, scenario))) plan.push({ job: { label: labels[kind], kind, nodes: 1, redis: null }, runs: [runners[scenario]] })
        }
      }
      if (o.scenarios.includes('cluster') && one !== undefined && o.servers.includes('gatecast')) {
        for (const n of [1, 2]) {
          plan.push({ job: { label: `gatecast+redis ×${n}`, kind: 'gatecast', nodes: n, redis: one }, runs: [(t: Target) => fanout(t, z.fanout, 'cluster')] })
        }
      }
      // issue 18: on each Redis, Gatecast and the floor alternating, CPU of the redis-servers included
      for (const scenario of floorScenarios) {
        const run: Runner = scenario === 'cluster-fanout' ? t => fanout(t, z.fanout, scenario) : t => rooms(t, z.rooms, 'cluster-rooms')
        for (const setup of setups) {
          for (const kind of onRedis) {
            plan.push({ job: { label: `${kind} ×${FLOOR_NODES} ${setup.name}`, kind, nodes: FLOOR_NODES, redis: setup, redisInCpu: true }, runs: [run] })
          }
        }
      }
      const withPrefix = plan.map(p => ({ ...p, prefix: p.job.redis !== null ? `${redisBase}-${++redisRuns}` : undefined }))
      // with reused servers (the smoke test) the servers of a round start together, to save time;
      // the nodes on Redis (two per job) start when their turn comes
      const started = o.reuseServers === true
        ? withPrefix.map(p => {
          if (p.job.redis !== null) return undefined
          const nodes = startNodes(p.job, o, p.prefix)
          nodes.catch(() => {})
          return nodes
        })
        : []
      for (const [i, { job, runs, prefix }] of withPrefix.entries()) {
        if (quietWaitS > 0) {
          busyWaits = await waitQuiet(quietWaitS, log) >= 0.25 ? busyWaits + 1 : 0
          if (busyWaits >= 2) {
            log('  the machine stays busy: no more waiting (results carry the other load of each window)')
            quietWaitS = 0
          }
        }
        results.push(...await runJob(job, runs, o, prefix, (r, ms) => {
          log(`[round ${round}/${z.rounds}] ${r.scenario.padEnd(9)} ${job.label.padEnd(18)} ${describe(r)}  (${(ms / 1000).toFixed(1)} s)`)
        }, started[i], round, profiled))
        await sleep(200)
      }
    }
  } finally {
    for (const s of setups) await deleteKeys(s.url, `${redisBase}-*`, s.cluster).catch(() => 0)
  }

  const summaries = summarize(results)
  let profileText = ''
  if (o.profileDir !== undefined) {
    const parts: string[] = [`### CPU profiles of the measured windows (${PROFILE_INTERVAL_US} µs sampling, the main thread of the server, or of its first node; files in ${o.profileDir})`, '']
    for (const scenario of o.scenarios) {
      for (const { label, files } of [...profiles.values()].filter(p => p.scenario === scenario)) {
        const loaded: CpuProfile[] = []
        for (const f of files) {
          try {
            loaded.push(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)
          } catch {}
        }
        if (loaded.length > 0) parts.push(profileMarkdown(`${label} — ${scenario}`, summarizeProfiles(loaded, 20)))
      }
    }
    profileText = parts.join('\n')
  }
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    sizes: z,
    servers: o.servers,
    scenarios: o.scenarios,
    redis: one !== undefined,
    redisSetups: setups.map(s => ({ name: s.name, url: s.url, nodes: s.processes.map(p => ({ port: p.port, role: p.role })) })),
    durationS: Math.round((Date.now() - started) / 1000)
  }
  return { meta, results, summaries, markdown: markdown(summaries, titles(z)) + (profileText === '' ? '' : `\n${profileText}`) }
}

function list<T extends string> (value: string | undefined, allowed: readonly T[], what: string): T[] | undefined {
  if (value === undefined) return undefined
  const items = value.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) throw new Error(`unknown ${what} "${item}" (one of ${allowed.join(', ')})`)
  }
  return items as T[]
}

export function parseCli (argv: string[]): (RunOptions & { json?: string, charts?: string, chartsFrom?: string, preset: keyof typeof PRESETS }) | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      tiny: { type: 'boolean' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      set: { type: 'string', multiple: true },
      redis: { type: 'boolean' },
      'redis-url': { type: 'string' },
      'redis-start': { type: 'boolean' },
      'redis-cluster': { type: 'boolean' },
      'redis-cluster-url': { type: 'string' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'profile-window': { type: 'string' },
      'gatecast-log': { type: 'string' },
      'reuse-servers': { type: 'boolean' },
      'quiet-wait': { type: 'string' },
      charts: { type: 'string' },
      'no-charts': { type: 'boolean' },
      'charts-from': { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return null
  const presetName = values.tiny === true ? 'tiny' : values.quick === true ? 'quick' : 'full'
  const preset = PRESETS[presetName]
  const sizes = structuredClone(preset)
  if (values.rounds !== undefined) {
    const n = Number(values.rounds)
    if (!Number.isInteger(n) || n < 1 || n > 50) throw new Error('--rounds takes an integer from 1 to 50')
    sizes.rounds = n
  }
  for (const s of values.set ?? []) {
    const m = /^(handshake|fanout|rooms|idle|multi|rooms-spread)\.(\w+)=([\d.]+)$/.exec(s)
    const group = m === null ? undefined : sizes[m[1] as 'handshake'] as unknown as Record<string, number>
    if (m === null || group === undefined || !(m[2] in group) || !(Number(m[3]) > 0)) {
      throw new Error(`--set ${s}: expected SCENARIO.KEY=NUMBER with a key of ${JSON.stringify(preset)}`)
    }
    group[m[2]] = Number(m[3])
  }
  if (values['quiet-wait'] !== undefined && !(Number(values['quiet-wait']) >= 0)) throw new Error('--quiet-wait takes a number of seconds')
  const redisUrl = values['redis-url'] ?? (values.redis === true ? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' : undefined)
  const scenarios = list(values.scenarios, SCENARIOS, 'scenario') ?? DEFAULT_SCENARIOS
  const startRedisFlag = values['redis-start'] === true
  if (startRedisFlag && values['redis-url'] !== undefined) throw new Error('--redis-start with --redis-url: one or the other')
  if (values['redis-cluster'] === true && values['redis-cluster-url'] !== undefined) throw new Error('--redis-cluster with --redis-cluster-url: one or the other')
  const anyRedis = redisUrl !== undefined || startRedisFlag
  const anyCluster = values['redis-cluster'] === true || values['redis-cluster-url'] !== undefined
  if (scenarios.includes('cluster') && values.scenarios !== undefined && !anyRedis) throw new Error('the cluster scenario needs --redis (or --redis-url, --redis-start)')
  if (scenarios.some(s => FLOOR_SCENARIOS.includes(s)) && !anyRedis && !anyCluster) throw new Error('the cluster-* scenarios need a Redis: --redis, --redis-url, --redis-start, --redis-cluster or --redis-cluster-url')
  if ((startRedisFlag || anyCluster) && !scenarios.some(s => s === 'cluster' || FLOOR_SCENARIOS.includes(s))) throw new Error('--redis-start and --redis-cluster… serve the cluster scenarios: add --scenarios cluster-fanout,cluster-rooms (or cluster)')
  const servers = list(values.only, SERVER_KINDS, 'server') ?? [...DEFAULT_SERVERS]
  if (values['no-charts'] === true && (values.charts !== undefined || values['charts-from'] !== undefined)) throw new Error('--no-charts with --charts or --charts-from')
  if (values.charts === '') throw new Error('--charts takes a directory')
  // the documented charts come from full-size runs of the three servers the docs compare
  const docsRun = presetName === 'full' && (['gatecast', 'ws', 'socketio'] as const).every(k => servers.includes(k))
  const charts = values['no-charts'] === true ? undefined : values.charts ?? (docsRun || values['charts-from'] !== undefined ? DOCS_CHARTS_DIR : undefined)
  return {
    sizes,
    servers,
    scenarios,
    redisUrl: startRedisFlag ? undefined : redisUrl,
    startRedis: startRedisFlag,
    redisClusterUrl: values['redis-cluster-url'],
    startCluster: values['redis-cluster'] === true,
    cpuProfDir: values['cpu-prof'],
    profileDir: values['profile-window'],
    gatecastLog: values['gatecast-log'],
    reuseServers: values['reuse-servers'] ?? presetName === 'tiny',
    quietWaitS: values['quiet-wait'] !== undefined ? Number(values['quiet-wait']) : { full: 10, quick: 0, tiny: 0 }[presetName],
    json: values.json,
    charts,
    chartsFrom: values['charts-from'],
    preset: presetName
  }
}

/**
 * --charts-from: the charts of a results file. Titles come from its
 * `meta.titles` when it has them (a file extracted from the markdown report),
 * else from its sizes as the report words them.
 */
export async function chartsFrom (file: string, dir: string): Promise<string[]> {
  const { chartRun, writeCharts } = await import('./charts.ts')
  const data = JSON.parse(readFileSync(file, 'utf8')) as { meta?: Record<string, unknown>, summaries?: ChartSummary[] }
  if (!Array.isArray(data.summaries)) throw new Error(`${file}: no "summaries" (write it with --json)`)
  const meta = data.meta ?? {}
  const named = (meta.titles ?? {}) as Partial<ScenarioTitles>
  const sized = meta.sizes === undefined ? {} : titles({ ...PRESETS.full, ...(meta.sizes as Partial<Sizes>) })
  const files = writeCharts(dir, data.summaries, { titles: { ...sized, ...named }, run: chartRun(meta) })
  process.stderr.write(`bench: ${files.length} chart${files.length === 1 ? '' : 's'} of ${file} written: ${files.map(f => relative(process.cwd(), f)).join(', ')}\n`)
  return files
}

async function main (): Promise<void> {
  let cli: ReturnType<typeof parseCli>
  try {
    cli = parseCli(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`)
    process.exit(2)
  }
  if (cli === null) {
    process.stdout.write(HELP)
    return
  }
  if (cli.chartsFrom !== undefined) {
    await chartsFrom(cli.chartsFrom, cli.charts ?? DOCS_CHARTS_DIR)
    return
  }
  // every child dies with the orchestrator, whatever ends it
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping the servers\n`)
      killAll()
      process.exit(130)
    })
  }
  // bounded in time whatever happens: a stuck scenario cannot keep the machine busy
  const z = cli.sizes
  const roundBudgetS = { tiny: 60, quick: 120, full: 400 }[cli.preset]
  const servers = cli.servers.length
  // issue 15's scenarios come on top: connects, subscribes and memory reads, then the window
  const multiS = cli.scenarios.includes('multi') ? servers * (30 + z.multi.seconds + z.multi.n * z.multi.k / 500 + z.multi.settleMs / 250) : 0
  const sp = z['rooms-spread']
  const spreadS = cli.scenarios.includes('rooms-spread') ? servers * (30 + sp.r * sp.p / 100 + sp.r * sp.p * sp.msgs / sp.rate) : 0
  // issue 18's: per Redis, two servers of two nodes each, connects and a window each; a cluster to start first
  const redisCount = (cli.redisUrl !== undefined || cli.startRedis === true ? 1 : 0) + (cli.redisClusterUrl !== undefined || cli.startCluster === true ? 1 : 0)
  const floorS = cli.scenarios.filter(s => FLOOR_SCENARIOS.includes(s)).length * redisCount * 2 * (30 + z.rooms.seconds + z.fanout.s * z.fanout.m / 20_000 + z.rooms.r * z.rooms.p / 100)
  const limitS = 60 + (cli.startCluster === true ? 40 : 0) + z.rounds * (roundBudgetS * Math.max(1, (z.fanout.s * z.fanout.m) / 500_000, z.idle.n / 5000) + multiS + spreadS + floorS)
  setTimeout(() => {
    process.stderr.write(`bench: still running after ${Math.round(limitS)} s; giving up\n`)
    killAll()
    process.exit(1)
  }, limitS * 1000).unref()

  const out = await runBench(cli)
  const m = out.meta.machine as Record<string, unknown>
  process.stdout.write(`## Gatecast benchmark — ${String(out.meta.date)}\n\n` +
    `${String(m.cpus)} CPUs (${String(m.cpuModel)}), ${String(m.memGiB)} GiB, Node ${String(m.node)}, ` +
    `commit ${String(m.commit)}${m.dirty === true ? ' + uncommitted changes in src/plugins/routes' : ''}; ` +
    `${z.rounds} round${z.rounds === 1 ? '' : 's'}, ${String(out.meta.durationS)} s\n\n${out.markdown}\n`)
  if (cli.json !== undefined) {
    writeFileSync(cli.json, JSON.stringify({ meta: out.meta, summaries: out.summaries, results: out.results }, null, 2) + '\n')
    process.stderr.write(`bench: JSON written to ${cli.json}\n`)
  }
  if (cli.charts !== undefined) {
    // loaded only when charts are wanted
    const { chartRun, writeCharts } = await import('./charts.ts')
    const files = writeCharts(cli.charts, out.summaries, { titles: titles(z), run: chartRun(out.meta) })
    process.stderr.write(`bench: ${files.length} chart${files.length === 1 ? '' : 's'} written: ${files.map(f => relative(process.cwd(), f)).join(', ')}\n`)
  }
  if (cli.cpuProfDir !== undefined) process.stderr.write(`bench: CPU profiles in ${cli.cpuProfDir}/<server>/\n`)
  // client sockets may still be closing; nothing else is left to wait for
  process.exit(0)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
    killAll()
    process.exit(1)
  })
}
