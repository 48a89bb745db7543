// Redis for the cluster scenarios: a private redis-server or a private
// 3-master/3-replica Redis Cluster started for one run (so that the CPU and
// command counts read from them are the run's alone), and what the
// orchestrator reads from any Redis around a window: the pid of each
// redis-server (its CPU comes from /proc like a server node's) and INFO
// commandstats (which counts the commands a script runs, too).
// test/helpers/redis-cluster.ts does the same for the tests, but test/ is not
// compiled into dist/, where the bench runs from.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { track } from './spawn.ts'
import { sleep } from './stats.ts'

export interface LocalRedis {
  /** one redis:// URL, or a comma list of every node of a cluster */
  url: string
  cluster: boolean
  stop: () => Promise<void>
}

function listens (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** A free loopback port whose cluster bus port (+10000) is free as well. */
async function freePort (taken: ReadonlySet<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const a = s.address()
        const p = a !== null && typeof a === 'object' ? a.port : 0
        s.close(() => resolve(p))
      })
    })
    if (port === 0 || port > 55_000 || taken.has(port)) continue
    if (await listens(port + 10_000)) return port
  }
  throw new Error('no free port pair for a redis-server')
}

/** Credentials of a URL given on the command line, for the orchestrator's own questions to its nodes. */
export interface RedisAuth {
  username?: string
  password?: string
}

/** A short-lived connection for one question (no retries: a node that is not there is an answer). */
async function withRedis<T> (port: number, fn: (r: Redis) => Promise<T>, host = '127.0.0.1', auth: RedisAuth = {}): Promise<T> {
  const r = new Redis({ port, host, ...auth, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

async function waitPing (port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await withRedis(port, r => r.ping())
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(50)
    }
  }
}

function startServer (port: number, dir: string, extra: string[]): ChildProcess {
  // no persistence: a bench run leaves nothing behind, and no fork for a save lands in a window
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' })
  track(child)
  child.once('error', () => {})
  return child
}

function stopper (children: ChildProcess[], dir: string): () => Promise<void> {
  return async () => {
    await Promise.all(children.map(child => new Promise<void>(resolve => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One private redis-server on a free loopback port. */
export async function startRedis (): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-bench-redis-'))
  const port = await freePort(new Set())
  const child = startServer(port, dir, [])
  const stop = stopper([child], dir)
  try {
    await waitPing(port, 10_000)
  } catch (err) {
    await stop()
    throw new Error(`redis-server did not start on ${port}: ${(err as Error).message}`)
  }
  return { url: `redis://127.0.0.1:${port}`, cluster: false, stop }
}

/**
 * A private Redis Cluster, 3 masters and 3 replicas, resolved once every slot
 * is served and every replica is synced (a replica still loading its first
 * sync would spend the window on it).
 */
export async function startCluster (): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-bench-cluster-'))
  const ports: number[] = []
  for (let i = 0; i < 6; i++) ports.push(await freePort(new Set(ports)))
  const children = ports.map(port => startServer(port, dir, [
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
    // a replica syncs at once instead of waiting 5 s for others to join
    '--repl-diskless-sync-delay', '0'
  ]))
  const stop = stopper(children, dir)
  try {
    await Promise.all(ports.map(p => waitPing(p, 10_000)))
    await new Promise<void>((resolve, reject) => {
      const cli = spawn('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      cli.stderr?.on('data', (b: Buffer) => { err += b.toString() })
      const timer = setTimeout(() => cli.kill('SIGKILL'), 30_000)
      cli.once('error', reject)
      cli.once('exit', (code) => {
        clearTimeout(timer)
        if (code === 0) resolve()
        else reject(new Error(`redis-cli --cluster create exited ${code}: ${err.trim()}`))
      })
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      const nodes = await clusterNodes(ports[0]).catch(() => [])
      const masters = nodes.filter(n => n.role === 'master')
      const replicas = nodes.filter(n => n.role === 'replica')
      const ok = await Promise.all(ports.map(p => withRedis(p, r => r.call('CLUSTER', 'INFO')).then(info => /cluster_state:ok/.test(String(info)), () => false)))
      const synced = await Promise.all(replicas.map(n => withRedis(n.port, r => r.info('replication')).then(info => /master_link_status:up/.test(info), () => false)))
      if (ok.every(Boolean) && masters.length === 3 && replicas.length === 3 && synced.every(Boolean)) break
      if (Date.now() > deadline) throw new Error('the local Redis Cluster did not become healthy with synced replicas within 30 s')
      await sleep(100)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { url: ports.map(p => `redis://127.0.0.1:${p}`).join(','), cluster: true, stop }
}

export interface RedisProcess {
  host: string
  port: number
  role: 'master' | 'replica'
  /** the port of the shard's master (a master's own port; one Redis: its port) */
  shard: number
  /** the redis-server's pid when it runs on this machine (its /proc entry is readable), else null */
  pid: number | null
  auth?: RedisAuth
}

type ClusterNodeLine = Omit<RedisProcess, 'pid' | 'auth'>

/** Every node of a cluster as CLUSTER NODES lists it (failed nodes left out), each shard's master first. */
async function clusterNodes (seedPort: number, host = '127.0.0.1', auth: RedisAuth = {}): Promise<ClusterNodeLine[]> {
  return withRedis(seedPort, async (r) => {
    const text = String(await r.call('CLUSTER', 'NODES'))
    const lines: Array<ClusterNodeLine & { id: string, master: string }> = []
    // id host:port@bus flags master-id ping pong epoch link [slots…]
    for (const line of text.split('\n')) {
      const parts = line.trim().split(' ')
      if (parts.length < 8) continue
      const flags = parts[2].split(',')
      if (flags.includes('fail') || flags.includes('noaddr')) continue
      const addr = parts[1].split('@')[0]
      const colon = addr.lastIndexOf(':')
      const port = Number(addr.slice(colon + 1))
      lines.push({ id: parts[0], master: parts[3], host: addr.slice(0, colon) === '' ? host : addr.slice(0, colon), port, role: flags.includes('master') ? 'master' : 'replica', shard: port })
    }
    for (const n of lines) {
      if (n.role === 'replica') n.shard = lines.find(m => m.id === n.master)?.port ?? n.port
    }
    return lines
      .sort((a, b) => a.shard - b.shard || (a.role === b.role ? a.port - b.port : a.role === 'master' ? -1 : 1))
      .map(({ host, port, role, shard }) => ({ host, port, role, shard }))
  }, host, auth)
}

const LOCAL = new Set(['127.0.0.1', 'localhost', '::1', '[::1]'])

/**
 * The redis-server processes behind a URL: one Redis, or every node of a
 * cluster (masters and replicas); a pid only for a server on this machine,
 * read from INFO server's process_id.
 */
export async function redisProcesses (url: string, cluster: boolean): Promise<RedisProcess[]> {
  const first = new URL(url.split(',')[0].trim())
  const host = first.hostname
  const seedPort = Number(first.port === '' ? 6379 : first.port)
  const auth: RedisAuth = first.password === '' ? {} : { password: decodeURIComponent(first.password), ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }) }
  const nodes = cluster ? await clusterNodes(seedPort, host, auth) : [{ host, port: seedPort, role: 'master' as const, shard: seedPort }]
  return Promise.all(nodes.map(async (n) => {
    let pid: number | null = null
    if (LOCAL.has(n.host)) {
      const info = await withRedis(n.port, r => r.info('server'), n.host, auth)
      const m = /^process_id:(\d+)/m.exec(info)
      if (m !== null && existsSync(`/proc/${m[1]}/stat`)) pid = Number(m[1])
    }
    return { ...n, pid, auth }
  }))
}

/** calls and µs of each command, as INFO commandstats counts them (commands a script runs included) */
export type CommandStats = Record<string, { calls: number, usec: number }>

/** `cmdstat_evalsha:calls=3,usec=120,usec_per_call=40.00,…` → { evalsha: { calls: 3, usec: 120 } } */
export function parseCommandStats (info: string): CommandStats {
  const out: CommandStats = {}
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) }
  return out
}

export function commandStats (p: RedisProcess): Promise<CommandStats> {
  return withRedis(p.port, async r => parseCommandStats(await r.info('commandstats')), p.host, p.auth)
}

/** b − a per command; commands that did not run in between are left out. */
export function statsDelta (a: CommandStats, b: CommandStats): CommandStats {
  const out: CommandStats = {}
  for (const [cmd, v] of Object.entries(b)) {
    const calls = v.calls - (a[cmd]?.calls ?? 0)
    if (calls > 0) out[cmd] = { calls, usec: v.usec - (a[cmd]?.usec ?? 0) }
  }
  return out
}
