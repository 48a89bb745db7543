// The load generator: one process (the orchestrator's own), clients on
// 127.0.0.1 only, every scenario bounded in connections, messages and time.
// A scenario measures a window: CPU of the server process(es) from /proc
// around it, latencies from a timestamp the publisher puts into `data`
// (performance.now() of this process, so publisher and receivers share a clock).
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import { io } from 'socket.io-client'
import { SECRET, type BenchData, type ServerKind } from './common.ts'
import { cpuDelta, readCpu, readMachineBusyUs, readRssKb, readSoftirqUs, readWriteCalls, type CpuSample } from './proc.ts'
import { commandStats, statsDelta, type CommandStats, type RedisProcess } from './redis-local.ts'
import { percentiles, sleep } from './stats.ts'

export interface NodeRef {
  pid: number
  port: number
}

/** The Redis a multi-node target runs on, read around each window. */
export interface RedisRef {
  /** `redis` (one Redis) or `cluster` (a Redis Cluster): which floor the target is compared with */
  setup: string
  /** every redis-server of it: the CPU of those with a pid counts in the window, INFO commandstats is read from each */
  processes: RedisProcess[]
  /** their CPU is part of cpuUsPerOp (the cluster-* scenarios), not only reported beside it */
  inCpu: boolean
}

/** One server under test: one node, or several (cluster fan-out). */
export interface Target {
  kind: ServerKind
  label: string
  nodes: NodeRef[]
  redis?: RedisRef
  /** full GC in every node */
  gc: () => Promise<void>
  /** heap in use and RSS of the first node after two full GCs, bytes */
  mem: () => Promise<{ heapUsed: number, rss: number }>
  /** profile the first node's CPU during each measured window (--profile-window) */
  profile?: {
    start: () => Promise<void>
    stop: (scenario: ScenarioName) => Promise<void>
  }
}

export interface Client {
  /** without `channel`: the socket's path channel; with it, one the socket subscribed to */
  publish: (data: BenchData, channel?: string) => void
  /** resolves on the server's `subscribed` answer, rejects on an `error` answer or after a timeout */
  subscribe: (channel: string) => Promise<void>
  close: () => void
}

type OnData = (data: BenchData) => void

/** Counters a scenario reports: anything here means the numbers are suspect. */
export interface Health {
  /** connects that failed (HTTP refusal, connect_error, timeout) */
  failed: number
  /** sockets closed by the server during the run */
  dropped: number
  /** `error` frames received */
  errorFrames: number
  firstError?: string
}

const sign = createSigner({ key: SECRET, algorithm: 'HS256', expiresIn: 3_600_000 })

/** A token like Gatecast's own: distinct user per socket (no per-user limits involved), a jti. */
export function token (i: number): string {
  return sign({ sub: `u${i}`, name: `user ${i}`, jti: randomBytes(8).toString('hex') })
}

const CONNECT_TIMEOUT_MS = 20_000

interface Pending {
  resolve: () => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

function connectWs (port: number, channel: string | null, jwt: string, onData: OnData, health: Health): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${channel === null ? '' : `/${encodeURIComponent(channel)}`}`, {
      headers: { authorization: `Bearer ${jwt}` },
      perMessageDeflate: false
    })
    let ready = false
    let closing = false
    let nextRef = 0
    // subscribes waiting for their answer, by ref
    const pending = new Map<number, Pending>()
    const client: Client = {
      publish: (data, ch) => ws.send(JSON.stringify(ch === undefined ? { type: 'publish', data } : { type: 'publish', channel: ch, data })),
      subscribe: (ch) => new Promise<void>((resolve, reject) => {
        const ref = ++nextRef
        const timer = setTimeout(() => { pending.delete(ref); reject(new Error(`subscribe ${ch} timed out`)) }, CONNECT_TIMEOUT_MS)
        pending.set(ref, { resolve, reject, timer })
        ws.send(JSON.stringify({ type: 'subscribe', channel: ch, ref }))
      }),
      close: () => { closing = true; ws.terminate() }
    }
    const answer = (ref: unknown, err?: Error): boolean => {
      const p = typeof ref === 'number' ? pending.get(ref) : undefined
      if (p === undefined) return false
      pending.delete(ref as number)
      clearTimeout(p.timer)
      if (err === undefined) p.resolve()
      else p.reject(err)
      return true
    }
    const fail = (err: Error) => {
      if (ready) return
      ready = true
      clearTimeout(timer)
      closing = true
      ws.terminate()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error('connect timed out')), CONNECT_TIMEOUT_MS)
    ws.on('message', (buf: Buffer) => {
      const frame = JSON.parse(buf.toString()) as { type: string, data?: BenchData, message?: string, code?: string, ref?: unknown }
      if (frame.type === 'message') {
        onData(frame.data as BenchData)
      } else if (!ready) {
        if (frame.type !== 'ready') return fail(new Error(`first frame was ${frame.type}, not ready`))
        ready = true
        clearTimeout(timer)
        resolve(client)
      } else if (frame.type === 'subscribed') {
        answer(frame.ref)
      } else if (frame.type === 'error') {
        health.errorFrames++
        health.firstError ??= `error frame: ${frame.code ?? ''} ${frame.message ?? ''}`
        answer(frame.ref, new Error(`subscribe refused: ${frame.code ?? ''} ${frame.message ?? ''}`))
      }
    })
    ws.on('unexpected-response', (req, res) => {
      req.destroy()
      fail(new Error(`upgrade refused: HTTP ${res.statusCode ?? '?'}`))
    })
    ws.on('error', (err) => fail(err))
    ws.on('close', (code) => {
      for (const ref of [...pending.keys()]) answer(ref, new Error(`socket closed ${code}`))
      if (!ready) return fail(new Error(`closed ${code} before ready`))
      if (!closing) {
        health.dropped++
        health.firstError ??= `socket closed by the server with ${code}`
      }
    })
  })
}

function connectSocketIo (port: number, channel: string | null, jwt: string, onData: OnData, health: Health): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = io(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
      auth: { token: jwt },
      query: channel === null ? {} : { channel }
    })
    let ready = false
    let closing = false
    const client: Client = {
      publish: (data, ch) => {
        if (ch === undefined) socket.emit('publish', data)
        else socket.emit('publish', data, ch)
      },
      // the acknowledgement callback is Socket.IO's own request/answer
      subscribe: (ch) => new Promise<void>((resolve, reject) => {
        socket.timeout(CONNECT_TIMEOUT_MS).emit('subscribe', ch, (err: Error | null, answer?: { ok: boolean }) => {
          if (err !== null) reject(new Error(`subscribe ${ch}: ${err.message}`))
          else if (answer?.ok !== true) reject(new Error(`subscribe ${ch} refused`))
          else resolve()
        })
      }),
      close: () => { closing = true; socket.disconnect() }
    }
    const fail = (err: Error) => {
      if (ready) return
      ready = true
      clearTimeout(timer)
      closing = true
      socket.disconnect()
      reject(err)
    }
    const timer = setTimeout(() => fail(new Error('connect timed out')), CONNECT_TIMEOUT_MS)
    socket.on('message', (m: { data: BenchData }) => onData(m.data))
    socket.once('ready', () => {
      if (ready) return
      ready = true
      clearTimeout(timer)
      resolve(client)
    })
    socket.once('connect_error', (err: Error) => fail(err))
    socket.on('disconnect', (reason: string) => {
      if (!ready) return fail(new Error(`disconnected before ready: ${reason}`))
      if (!closing) {
        health.dropped++
        health.firstError ??= `socket closed: ${reason}`
      }
    })
  })
}

/** `channel` null: a socket on `/ws` (Socket.IO: no room) that joins channels with `subscribe`. */
export function connect (kind: ServerKind, port: number, channel: string | null, jwt: string, onData: OnData, health: Health): Promise<Client> {
  return kind === 'socketio'
    ? connectSocketIo(port, channel, jwt, onData, health)
    : connectWs(port, channel, jwt, onData, health)
}

/** Opens `n` clients, at most `concurrency` handshakes in flight; failures are counted, not thrown. */
export async function connectMany (n: number, concurrency: number, open: (i: number) => Promise<Client>, health: Health, onOpen?: (i: number, ms: number) => void): Promise<Client[]> {
  const clients: Array<Client | undefined> = new Array(n)
  let next = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      const t0 = performance.now()
      try {
        clients[i] = await open(i)
        onOpen?.(i, performance.now() - t0)
      } catch (err) {
        health.failed++
        health.firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
  return clients.filter((c): c is Client => c !== undefined)
}

function closeAll (clients: Iterable<Client>): void {
  for (const c of clients) c.close()
}

// --- windows ------------------------------------------------------------------------

interface WindowStats {
  wallMs: number
  /** CPU of every server node together, µs */
  serverUs: number
  /** cores used by the busiest node's main thread */
  serverMainCores: number
  serverCores: number
  clientCores: number
  clientMainCores: number
  /** cores used by every other process of the machine (other work competing with the benchmark) */
  otherCores: number
  /** cores of softirq (network stack work charged to no process) */
  softirqCores: number
  cpuSource: 'schedstat' | 'stat'
  /** write system calls of every server node together, null where unreadable */
  serverWrites: number | null
  /** CPU of each redis-server with a pid (the target's RedisRef.processes order; null without a pid), µs */
  redisUs: Array<number | null>
}

class Window {
  readonly #nodes: NodeRef[]
  readonly #redisPids: Array<number | null>
  readonly #redis: Array<CpuSample | null>
  readonly #t0: number
  readonly #server: CpuSample[]
  readonly #client: CpuSample
  readonly #machine: number
  readonly #softirq: number
  readonly #writes: Array<number | null>

  constructor (target: Target) {
    const nodes = target.nodes
    this.#nodes = nodes
    this.#redisPids = target.redis?.processes.map(p => p.pid) ?? []
    this.#redis = this.#redisPids.map(pid => pid === null ? null : readCpu(pid))
    this.#machine = readMachineBusyUs()
    this.#softirq = readSoftirqUs()
    this.#server = nodes.map(n => readCpu(n.pid))
    this.#writes = nodes.map(n => readWriteCalls(n.pid))
    this.#client = readCpu(process.pid)
    this.#t0 = performance.now()
  }

  stop (): WindowStats {
    const wallMs = performance.now() - this.#t0
    const server = this.#nodes.map((n, i) => cpuDelta(this.#server[i], readCpu(n.pid)))
    const client = cpuDelta(this.#client, readCpu(process.pid))
    const redisUs = this.#redisPids.map((pid, i) => {
      const a = this.#redis[i]
      return pid === null || a === null ? null : cpuDelta(a, readCpu(pid)).us
    })
    const machineUs = readMachineBusyUs() - this.#machine
    const wallUs = Math.max(1, wallMs * 1000)
    const serverUs = server.reduce((s, d) => s + d.us, 0)
    let serverWrites: number | null = 0
    for (let i = 0; i < this.#nodes.length; i++) {
      const a = this.#writes[i]
      const b = readWriteCalls(this.#nodes[i].pid)
      serverWrites = a === null || b === null || serverWrites === null ? null : serverWrites + b - a
    }
    return {
      wallMs,
      serverUs,
      serverCores: serverUs / wallUs,
      serverMainCores: Math.max(...server.map(d => d.mainUs / wallUs)),
      clientCores: client.us / wallUs,
      clientMainCores: client.mainUs / wallUs,
      // /proc/stat counts in 10 ms ticks: only a rough figure for short windows
      otherCores: Math.max(0, (machineUs - serverUs - client.us - redisUs.reduce<number>((sum, us) => sum + (us ?? 0), 0)) / wallUs),
      softirqCores: (readSoftirqUs() - this.#softirq) / wallUs,
      cpuSource: server.every(d => d.source === 'schedstat') ? 'schedstat' : 'stat',
      serverWrites,
      redisUs
    }
  }
}

/** What each redis-server of a target did in one window. */
export interface RedisNodeWindow {
  port: number
  role: 'master' | 'replica'
  /** the shard's master port */
  shard: number
  /** CPU of the process, µs (null: not on this machine) */
  cpuUs: number | null
  /** INFO commandstats over the window: calls and µs per command (a script's own commands included) */
  commands: CommandStats
}

export interface RedisWindow {
  setup: string
  /** messages published in the window */
  messages: number
  nodes: RedisNodeWindow[]
}

/** INFO commandstats of every redis-server of the target, just before a window (nothing else is sent then). */
async function redisBefore (target: Target): Promise<CommandStats[] | null> {
  const r = target.redis
  if (r === undefined) return null
  return Promise.all(r.processes.map(commandStats))
}

async function redisAfter (target: Target, before: CommandStats[] | null, w: WindowStats, messages: number): Promise<RedisWindow | null> {
  const r = target.redis
  if (r === undefined || before === null) return null
  const after = await Promise.all(r.processes.map(commandStats))
  return {
    setup: r.setup,
    messages,
    nodes: r.processes.map((p, i) => ({ port: p.port, role: p.role, shard: p.shard, cpuUs: w.redisUs[i] ?? null, commands: statsDelta(before[i], after[i]) }))
  }
}

// --- results ----------------------------------------------------------------------

export type ScenarioName = 'handshake' | 'fanout' | 'rooms' | 'bursts' | 'idle' | 'cluster' | 'multi' | 'rooms-spread' | 'cluster-fanout' | 'cluster-rooms'

export interface Result {
  scenario: ScenarioName
  server: string
  kind: ServerKind
  nodes: number
  /** operations in the measured window: accepted connections, deliveries, or idle sockets */
  ops: number
  expectedOps: number
  opUnit: 'connection' | 'delivery' | 'idle socket'
  /** server CPU (all nodes, all threads) per operation, µs; in the cluster-* scenarios Redis's CPU too */
  cpuUsPerOp: number | null
  /** CPU of the redis-server process(es) per operation, µs (null: no Redis, or not on this machine) */
  redisCpuUsPerOp: number | null
  /** `redis` or `cluster`: the Redis the nodes ran on (null: none) */
  redisSetup: string | null
  /** per redis-server: its CPU and INFO commandstats over the window */
  redis: RedisWindow | null
  /** write system calls of the server (all nodes) per operation */
  writesPerOp: number | null
  /** ops per second of wall time in the window */
  throughput: number | null
  p50Ms: number | null
  p99Ms: number | null
  rssKbPerConn: number | null
  /** RSS added by the second half of the idle sockets, per socket: free heap left at the baseline cannot hide it */
  marginalRssKbPerConn: number | null
  baselineRssKb: number | null
  /** multi: heap (after full GCs) added per extra subscription, KB */
  heapKbPerSub: number | null
  /** multi: RSS added per extra subscription, KB */
  rssKbPerSub: number | null
  wallMs: number
  serverCores: number | null
  serverMainCores: number | null
  clientCores: number | null
  clientMainCores: number | null
  /** cores used by other processes of the machine during the window */
  otherCores: number | null
  /** cores of softirq in the window: kernel network work not charged to the server (nor the client) */
  softirqCores: number | null
  /** what bounded the throughput */
  limitedBy: string
  cpuSource: string | null
  complete: boolean
  health: Health
}

function limiter (w: WindowStats, fallback: string, offered?: { rate: number, achieved: number }): string {
  const cores = (x: number) => `${x.toFixed(2)} core`
  if (w.serverMainCores >= 0.85) return `server CPU (event loop ${cores(w.serverMainCores)})`
  if (w.clientMainCores >= 0.85) return `load generator CPU (${cores(w.clientMainCores)})`
  if (w.serverCores + w.clientCores + w.otherCores >= 0.85 * availableParallelism()) return `every core busy (server ${cores(w.serverCores)}, client ${cores(w.clientCores)}, other ${cores(w.otherCores)})`
  if (offered !== undefined && offered.achieved >= 0.9 * offered.rate) return `offered load (publish rate cap; server ${cores(w.serverCores)})`
  return `${fallback} (server ${cores(w.serverCores)}, client ${cores(w.clientCores)})`
}

function newHealth (): Health {
  return { failed: 0, dropped: 0, errorFrames: 0 }
}

function windowResult (target: Target, scenario: ScenarioName, w: WindowStats, ops: number, expectedOps: number, opUnit: Result['opUnit'], health: Health, extra: Partial<Result>): Result {
  const withPid = w.redisUs.filter((us): us is number => us !== null)
  const redisUs = withPid.length > 0 ? withPid.reduce((a, b) => a + b, 0) : null
  const serverUs = w.serverUs + (target.redis?.inCpu === true ? redisUs ?? 0 : 0)
  return {
    scenario,
    server: target.label,
    kind: target.kind,
    nodes: target.nodes.length,
    ops,
    expectedOps,
    opUnit,
    cpuUsPerOp: ops > 0 ? serverUs / ops : null,
    redisCpuUsPerOp: ops > 0 && redisUs !== null ? redisUs / ops : null,
    redisSetup: target.redis?.setup ?? null,
    redis: null,
    writesPerOp: ops > 0 && w.serverWrites !== null ? w.serverWrites / ops : null,
    throughput: ops / (w.wallMs / 1000),
    p50Ms: null,
    p99Ms: null,
    rssKbPerConn: null,
    marginalRssKbPerConn: null,
    baselineRssKb: null,
    heapKbPerSub: null,
    rssKbPerSub: null,
    wallMs: w.wallMs,
    serverCores: w.serverCores,
    serverMainCores: w.serverMainCores,
    clientCores: w.clientCores,
    clientMainCores: w.clientMainCores,
    otherCores: w.otherCores,
    softirqCores: w.softirqCores,
    limitedBy: '',
    cpuSource: w.cpuSource,
    complete: ops === expectedOps && health.failed === 0 && health.dropped === 0,
    health,
    ...extra
  }
}

/** Resolves when `done()` is called or after `ms` (then `timedOut` is true). */
function completion (ms: number): { promise: Promise<void>, done: () => void, timedOut: () => boolean } {
  let done = () => {}
  let timedOut = false
  const promise = new Promise<void>((resolve) => {
    const timer = setTimeout(() => { timedOut = true; resolve() }, ms)
    done = () => { clearTimeout(timer); resolve() }
  })
  return { promise, done, timedOut: () => timedOut }
}

const noop: OnData = () => {}

/** A few connects and closes so that lazily loaded code and JIT warm-up are outside the window. */
async function warmUp (target: Target, n: number, health: Health): Promise<void> {
  const port = target.nodes[0].port
  const clients = await connectMany(n, 5, i => connect(target.kind, port, 'warmup', token(1_000_000 + i), noop, health), health)
  closeAll(clients)
  await sleep(200)
}

// --- scenarios ----------------------------------------------------------------------

export interface HandshakeParams { n: number, k: number }

/** N connects with a token, K in flight; µs of server CPU per accepted connection (kept open). */
export async function handshake (target: Target, p: HandshakeParams): Promise<Result> {
  const health = newHealth()
  const port = target.nodes[0].port
  const tokens = Array.from({ length: p.n }, (_, i) => token(i))
  const connectMs = new Float64Array(p.n)
  let nConnect = 0
  let clients: Client[] = []
  try {
    await warmUp(target, Math.min(20, p.n), health)
    const win = new Window(target)
    clients = await connectMany(p.n, p.k, i => connect(target.kind, port, 'handshake', tokens[i], noop, health), health, (_i, ms) => { connectMs[nConnect++] = ms })
    const w = win.stop()
    const [p50, p99] = percentiles(connectMs, nConnect, [50, 99])
    const r = windowResult(target, 'handshake', w, clients.length, p.n, 'connection', health, { p50Ms: p50, p99Ms: p99 })
    r.limitedBy = limiter(w, `concurrency ${p.k} (round trips)`)
    return r
  } finally {
    closeAll(clients)
  }
}

export interface FanoutParams { s: number, m: number, w: number }

/**
 * One channel, S subscribers (the publisher is one of them: it gets its own
 * messages, as the contract says), M messages from one client with at most W
 * not yet delivered to every subscriber. With several nodes, subscribers are
 * spread over them and the publisher is on the first.
 */
export async function fanout (target: Target, p: FanoutParams, scenario: ScenarioName = 'fanout'): Promise<Result> {
  const health = newHealth()
  const warm = Math.min(50, Math.max(5, Math.floor(p.m / 10)))
  const total = warm + p.m
  const counts = new Uint32Array(total)
  const lat = new Float64Array(p.s * p.m)
  let nLat = 0
  let delivered = 0
  let sent = 0
  let done = 0
  let phaseEnd = 0
  let phase = completion(0)
  let publisher: Client | undefined

  const pump = () => {
    while (sent < phaseEnd && sent - done < p.w) publisher?.publish({ i: sent++, t: performance.now() })
  }
  const onData: OnData = (d) => {
    const i = d.i ?? 0
    if (i >= warm) {
      if (nLat < lat.length) lat[nLat++] = performance.now() - d.t
      delivered++
    }
    if (++counts[i] === p.s) {
      done++
      if (done === phaseEnd) phase.done()
      else pump()
    }
  }
  const channel = `fanout-${randomBytes(3).toString('hex')}`
  let clients: Client[] = []
  try {
    clients = await connectMany(p.s, 50, (i) => {
      const node = target.nodes[i % target.nodes.length]
      return connect(target.kind, node.port, channel, token(i), onData, health)
    }, health)
    if (clients.length !== p.s) throw new Error(`fan-out: only ${clients.length} of ${p.s} subscribers connected (${health.firstError ?? ''})`)
    // connectMany keeps the order of indices: client 0 is on node 0
    publisher = clients[0]
    await sleep(300)
    // warm-up messages, outside the window
    phaseEnd = warm
    phase = completion(30_000)
    pump()
    await phase.promise
    await sleep(200)
    await target.gc()

    phaseEnd = total
    phase = completion(Math.max(60_000, p.s * p.m / 10))
    await target.profile?.start()
    const redisStart = await redisBefore(target)
    const win = new Window(target)
    pump()
    await phase.promise
    const w = win.stop()
    await target.profile?.stop(scenario)
    const redis = await redisAfter(target, redisStart, w, p.m)
    const [p50, p99] = percentiles(lat, nLat, [50, 99])
    const r = windowResult(target, scenario, w, delivered, p.s * p.m, 'delivery', health, { p50Ms: p50, p99Ms: p99, redis })
    r.limitedBy = limiter(w, `in-flight window ${p.w} (round trips)`)
    return r
  } finally {
    closeAll(clients)
  }
}

const TEXT = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. '

/** Text that brings `{"t":<performance.now()>,"s":"…"}` to about `bytes` bytes of JSON. */
export function fillerFor (bytes: number | undefined): string | undefined {
  if (bytes === undefined || bytes <= 0) return undefined
  const bare = JSON.stringify({ t: 123456.78901234567, s: '' }).length
  const n = Math.max(0, Math.round(bytes) - bare)
  return TEXT.repeat(Math.ceil(n / TEXT.length) + 1).slice(0, n)
}

export interface RoomsParams {
  /** channels */
  r: number
  /** members per channel, each a publisher */
  p: number
  /** publishes per second per member */
  rate: number
  /** seconds of publishing */
  seconds: number
  /**
   * publishes of one room sent back to back (from different members): 1 spreads
   * consecutive publishes over the rooms, P makes a room's members publish together
   */
  together: number
  /** approximate size of each publish's `data` as JSON, bytes (default: the timestamp alone) */
  bytes?: number
}

/**
 * How many publishes of the rooms scenario are due `elapsedMs` into the window
 * at `rate` per second: rounded up to whole groups of `together`, so that a
 * room's group always leaves in one tick and is never split over two.
 */
export function publishesDue (elapsedMs: number, rate: number, total: number, together: number): number {
  const due = Math.floor(elapsedMs * rate / 1000) + 1
  return Math.min(total, Math.ceil(due / together) * together)
}

/**
 * Sends `total` publishes paced at `rate` per second (groups of `together`
 * leave in one tick), from a 5 ms ticker; `stop()` ends it early, `sentAll`
 * says whether every publish went out.
 */
function pace (total: number, rate: number, together: number, publishOne: (n: number) => void): { stop: () => void, readonly sentAll: boolean } {
  const t0 = performance.now()
  let sent = 0
  let sentAll = false
  const tick = (): void => {
    const due = publishesDue(performance.now() - t0, rate, total, together)
    while (sent < due) publishOne(sent++)
    if (sent >= total) {
      clearInterval(ticker)
      sentAll = true
    }
  }
  const ticker = setInterval(tick, 5)
  tick()
  return { stop: () => clearInterval(ticker), get sentAll () { return sentAll } }
}

/**
 * R channels × P members, every member publishing at `rate`/s for `seconds`; µs per delivery and latency.
 * Reported as `bursts` when run with together = P (each room's members publish back to back).
 */
export async function rooms (target: Target, p: RoomsParams, scenario: 'rooms' | 'bursts' | 'rooms-spread' | 'cluster-rooms' = 'rooms'): Promise<Result> {
  const health = newHealth()
  const members = p.r * p.p
  const totalRate = members * p.rate
  const total = Math.max(1, Math.round(totalRate * p.seconds))
  const expected = total * p.p
  const lat = new Float64Array(expected)
  let nLat = 0
  let delivered = 0
  let measuring = false
  let warmDelivered = 0
  let phase = completion(0)
  const onData: OnData = (d) => {
    if (!measuring) {
      if (++warmDelivered === p.r * p.p) phase.done()
      return
    }
    if (nLat < lat.length) lat[nLat++] = performance.now() - d.t
    if (++delivered === expected) phase.done()
  }
  // publish n: groups of `together` go to one room, rooms in turn, members of a room in turn
  // (member j is in room j % R); with together = 1 this is simply member n % members
  const k = Math.max(1, Math.min(p.p, Math.round(p.together)))
  const publisherOf = (n: number): number => {
    const group = Math.floor(n / k)
    const room = group % p.r
    const member = (Math.floor(group / p.r) * k + n % k) % p.p
    return room + member * p.r
  }
  const prefix = `room-${randomBytes(3).toString('hex')}-`
  let clients: Client[] = []
  let pacer: ReturnType<typeof pace> | undefined
  try {
    // member j is in room j % R, so consecutive publishes go to different rooms; with several
    // nodes a room's members take the nodes in turn (j % nodes would put a room on one node
    // whenever the node count divides R), so every room has sockets on every node
    clients = await connectMany(members, 50, i => connect(target.kind, target.nodes[Math.floor(i / p.r) % target.nodes.length].port, `${prefix}${i % p.r}`, token(i), onData, health), health)
    if (clients.length !== members) throw new Error(`rooms: only ${clients.length} of ${members} members connected (${health.firstError ?? ''})`)
    await sleep(300)
    // warm-up: one message per room
    phase = completion(30_000)
    for (let room = 0; room < p.r; room++) clients[room].publish({ t: performance.now() })
    await phase.promise
    await sleep(200)
    await target.gc()

    measuring = true
    phase = completion(p.seconds * 1000 + 30_000)
    const filler = fillerFor(p.bytes)
    await target.profile?.start()
    const redisStart = await redisBefore(target)
    const win = new Window(target)
    pacer = pace(total, totalRate, k, n => clients[publisherOf(n)].publish(filler === undefined ? { t: performance.now() } : { t: performance.now(), s: filler }))
    await phase.promise
    const w = win.stop()
    await target.profile?.stop(scenario)
    const redis = await redisAfter(target, redisStart, w, total)
    const [p50, p99] = percentiles(lat, nLat, [50, 99])
    const r = windowResult(target, scenario, w, delivered, expected, 'delivery', health, { p50Ms: p50, p99Ms: p99, redis })
    if (pacer?.sentAll !== true) r.complete = false
    r.limitedBy = limiter(w, 'latency', { rate: totalRate * p.p, achieved: delivered / (w.wallMs / 1000) })
    return r
  } finally {
    pacer?.stop()
    closeAll(clients)
  }
}

export interface SpreadParams {
  /** rooms */
  r: number
  /** members per room, each a publisher */
  p: number
  /** messages each member publishes */
  msgs: number
  /** publishes per second, all rooms together */
  rate: number
  /** approximate size of each message's `data` as JSON, bytes (a timestamp inside) */
  bytes: number
}

/**
 * Rooms with spread-out publishes (issue 15): the rooms scenario with every
 * member publishing `msgs` messages of about `bytes` bytes, `rate` publishes
 * per second in all, consecutive publishes going to different rooms.
 */
export function roomsSpread (target: Target, p: SpreadParams): Promise<Result> {
  const members = p.r * p.p
  return rooms(target, { r: p.r, p: p.p, rate: p.rate / members, seconds: p.msgs * members / p.rate, together: 1, bytes: p.bytes }, 'rooms-spread')
}

export interface MultiParams {
  /** sockets */
  n: number
  /** channels each socket subscribes to */
  k: number
  /** channels in all */
  c: number
  /** publishes per second, all channels together */
  rate: number
  /** seconds of publishing */
  seconds: number
  /** ms to wait before each memory read */
  settleMs: number
}

/**
 * The K channels of socket i: i, i + C/K, i + 2·C/K … (mod C). Every channel
 * gets N·K/C sockets when C divides N, and neighbouring sockets share few channels.
 */
export function channelsOf (i: number, k: number, c: number): number[] {
  const step = Math.max(1, Math.floor(c / k))
  return Array.from({ length: k }, (_, j) => (i + j * step) % c)
}

/** Runs `task(i)` for i < n with at most `concurrency` at once; returns how many failed (counted in `health`). */
async function pool (n: number, concurrency: number, task: (i: number) => Promise<void>, health: Health): Promise<number> {
  let next = 0
  let failed = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      try {
        await task(i)
      } catch (err) {
        failed++
        health.firstError ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker))
  return failed
}

/**
 * One socket, many channels (issue 15): N sockets opened with no channel
 * (`/ws`; Socket.IO: no room), each subscribing to K of C channels with
 * `subscribe` frames (Socket.IO: `socket.join` behind an acknowledged event),
 * each subscribe waiting for its answer. Memory: heap and RSS after full GCs
 * with every socket on 1 channel, then on K; the difference per extra
 * subscription. Then `rate` publishes per second for `seconds`, publish n to
 * channel n mod C from one of that channel's members in turn; µs of server CPU
 * per delivery and latency.
 */
export async function multi (target: Target, p: MultiParams): Promise<Result> {
  const health = newHealth()
  const port = target.nodes[0].port
  const k = Math.max(1, Math.min(p.k, p.c))
  const subs = Array.from({ length: p.n }, (_, i) => channelsOf(i, k, p.c))
  const members: number[][] = Array.from({ length: p.c }, () => [])
  for (const [i, chs] of subs.entries()) for (const ch of chs) members[ch].push(i)
  const live = members.map((m, ch) => m.length > 0 ? ch : -1).filter(ch => ch >= 0)
  const prefix = `multi-${randomBytes(3).toString('hex')}-`
  const total = Math.max(1, Math.round(p.rate * p.seconds))
  // publish n goes to the n-th channel that has members, from its members in turn
  const channelOf = (n: number) => live[n % live.length]
  const publisherOf = (n: number) => { const m = members[channelOf(n)]; return m[Math.floor(n / live.length) % m.length] }
  let expected = 0
  for (let n = 0; n < total; n++) expected += members[channelOf(n)].length
  const warmExpected = live.reduce((sum, ch) => sum + members[ch].length, 0)

  const lat = new Float64Array(expected)
  let nLat = 0
  let delivered = 0
  let measuring = false
  let warmDelivered = 0
  let phase = completion(0)
  const onData: OnData = (d) => {
    if (!measuring) {
      if (++warmDelivered === warmExpected) phase.done()
      return
    }
    if (nLat < lat.length) lat[nLat++] = performance.now() - d.t
    if (++delivered === expected) phase.done()
  }
  const settled = async () => {
    await sleep(p.settleMs)
    await target.gc()
    await sleep(p.settleMs)
    return await target.mem()
  }
  let clients: Client[] = []
  let pacer: ReturnType<typeof pace> | undefined
  try {
    clients = await connectMany(p.n, 50, i => connect(target.kind, port, null, token(i), onData, health), health)
    if (clients.length !== p.n) throw new Error(`multi: only ${clients.length} of ${p.n} sockets connected (${health.firstError ?? ''})`)
    let refused = await pool(p.n, 50, i => clients[i].subscribe(`${prefix}${subs[i][0]}`), health)
    const one = await settled()
    // each socket's remaining K-1 in order, one answer awaited before the next
    refused += await pool(p.n, 50, async (i) => {
      for (let j = 1; j < k; j++) await clients[i].subscribe(`${prefix}${subs[i][j]}`)
    }, health)
    const all = await settled()
    const extra = p.n * (k - 1)
    if (refused > 0) throw new Error(`multi: ${refused} sockets' subscribes failed (${health.firstError ?? ''})`)

    // warm-up: one message per channel, outside the window
    phase = completion(30_000)
    for (const ch of live) clients[members[ch][0]].publish({ t: performance.now() }, `${prefix}${ch}`)
    await phase.promise
    await sleep(200)
    await target.gc()

    measuring = true
    phase = completion(p.seconds * 1000 + 30_000)
    await target.profile?.start()
    const win = new Window(target)
    pacer = pace(total, p.rate, 1, n => clients[publisherOf(n)].publish({ t: performance.now() }, `${prefix}${channelOf(n)}`))
    await phase.promise
    const w = win.stop()
    await target.profile?.stop('multi')
    const [p50, p99] = percentiles(lat, nLat, [50, 99])
    const r = windowResult(target, 'multi', w, delivered, expected, 'delivery', health, {
      p50Ms: p50,
      p99Ms: p99,
      heapKbPerSub: extra > 0 ? (all.heapUsed - one.heapUsed) / 1024 / extra : null,
      rssKbPerSub: extra > 0 ? (all.rss - one.rss) / 1024 / extra : null
    })
    if (pacer?.sentAll !== true) r.complete = false
    r.limitedBy = limiter(w, 'latency', { rate: expected / p.seconds, achieved: delivered / (w.wallMs / 1000) })
    return r
  } finally {
    pacer?.stop()
    closeAll(clients)
  }
}

export interface IdleParams {
  n: number
  /** ms to wait before each GC and RSS read */
  settleMs: number
}

/**
 * RSS per idle socket: (VmRSS with N idle sockets − VmRSS before any), each
 * read after a full GC; and the marginal cost, (VmRSS at N − VmRSS at N/2) / (N/2).
 */
export async function idle (target: Target, p: IdleParams): Promise<Result> {
  const health = newHealth()
  const node = target.nodes[0]
  const half = Math.floor(p.n / 2)
  const clients: Client[] = []
  const settledRss = async () => {
    await sleep(p.settleMs)
    await target.gc()
    await sleep(p.settleMs)
    return readRssKb(node.pid)
  }
  try {
    await warmUp(target, 20, health)
    const baseline = await settledRss()
    const t0 = performance.now()
    clients.push(...await connectMany(half, 100, i => connect(target.kind, node.port, 'idle', token(i), noop, health), health))
    const rssHalf = await settledRss()
    const t1 = performance.now()
    clients.push(...await connectMany(p.n - half, 100, i => connect(target.kind, node.port, 'idle', token(half + i), noop, health), health))
    const wallMs = performance.now() - t1 + (t1 - t0)
    const rss = await settledRss()
    const secondHalf = clients.length - half
    return {
      scenario: 'idle',
      server: target.label,
      kind: target.kind,
      nodes: 1,
      ops: clients.length,
      expectedOps: p.n,
      opUnit: 'idle socket',
      cpuUsPerOp: null,
      redisCpuUsPerOp: null,
      redisSetup: null,
      redis: null,
      writesPerOp: null,
      throughput: null,
      p50Ms: null,
      p99Ms: null,
      rssKbPerConn: clients.length > 0 ? (rss - baseline) / clients.length : null,
      marginalRssKbPerConn: secondHalf > 0 ? (rss - rssHalf) / secondHalf : null,
      baselineRssKb: baseline,
      heapKbPerSub: null,
      rssKbPerSub: null,
      wallMs,
      serverCores: null,
      serverMainCores: null,
      clientCores: null,
      clientMainCores: null,
      otherCores: null,
      softirqCores: null,
      limitedBy: '',
      cpuSource: null,
      complete: clients.length === p.n && health.failed === 0 && health.dropped === 0,
      health
    }
  } finally {
    closeAll(clients)
  }
}
