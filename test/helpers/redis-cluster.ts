// A real Redis Cluster on loopback ports: 3 masters and 3 replicas of Debian's
// redis-server, made with `redis-cli --cluster create`. `.ci/run` starts one for
// the whole run (TEST_REDIS_CLUSTER_URL); a test that breaks it (a failover)
// or runs without it starts a private one, stopped with the test.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { freePort } from './process.ts'
import { sleep } from './wait.ts'

const run = promisify(execFile)

interface Teardown { teardown: (fn: () => unknown) => void }

export interface ClusterNode {
  port: number
  /** kills the process hard (SIGKILL): no goodbye to the cluster */
  kill: () => void
  readonly alive: boolean
}

export interface LocalCluster {
  /** `redis://127.0.0.1:p1,redis://127.0.0.1:p2,…`: REDIS_URL with REDIS_CLUSTER=true */
  url: string
  nodes: ClusterNode[]
  /** the nodes that are masters now, by port */
  masters: () => Promise<number[]>
  /** the master that serves a key's slot now */
  masterOf: (key: string) => Promise<number>
  /** waits until every slot is served and the cluster says ok */
  healthy: (ms?: number) => Promise<void>
  stop: () => Promise<void>
}

/** The shared cluster of this run when .ci/run made one, else a private one. */
export async function redisCluster (t: Teardown, o: { private?: boolean } = {}): Promise<{ url: string, cluster: LocalCluster | null }> {
  const shared = process.env.TEST_REDIS_CLUSTER_URL
  if (shared !== undefined && shared !== '' && o.private !== true) return { url: shared, cluster: null }
  const cluster = await startCluster()
  t.teardown(() => cluster.stop())
  return { url: cluster.url, cluster }
}

let perFile: Promise<LocalCluster> | null = null

/**
 * A cluster for every test of this file that does not break it: the shared one
 * of the run, or one started on first use and stopped when the file's tests end.
 */
export async function clusterUrl (root: Teardown): Promise<string> {
  const shared = process.env.TEST_REDIS_CLUSTER_URL
  if (shared !== undefined && shared !== '') return shared
  if (perFile === null) {
    perFile = startCluster()
    root.teardown(async () => { await (await perFile)?.stop() })
  }
  return (await perFile).url
}

/** `redis://a,redis://b` → ioredis seeds */
export function seedsOf (url: string): Array<{ host: string, port: number }> {
  return url.split(',').map(u => new URL(u)).map(u => ({ host: u.hostname, port: Number(u.port) }))
}

/** A key prefix of the test's own on the cluster; its keys go at teardown, from every master. */
export function clusterPrefix (t: Teardown, url: string): string {
  const prefix = `gctest-${randomBytes(4).toString('hex')}`
  t.teardown(async () => {
    const c = new Cluster(seedsOf(url), { redisOptions: { maxRetriesPerRequest: 1 } })
    c.on('error', () => {})
    try {
      for (const master of c.nodes('master')) {
        let cursor = '0'
        do {
          const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500)
          cursor = next
          for (const key of keys) await master.del(key)
        } while (cursor !== '0')
      }
    } catch {} finally { c.disconnect() }
  })
  return prefix
}

/** A port whose cluster bus port (+10000) is free too. */
async function clusterPort (taken: Set<number>): Promise<number> {
  for (;;) {
    const p = await freePort()
    if (p > 55000 || taken.has(p)) continue
    const bus = await new Promise<boolean>(resolve => {
      import('node:net').then(({ createServer }) => {
        const s = createServer()
        s.once('error', () => resolve(false))
        s.listen(p + 10000, '127.0.0.1', () => s.close(() => resolve(true)))
      }, () => resolve(false))
    })
    if (bus) return p
  }
}

async function ping (port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    r.on('error', () => {})
    try {
      await r.connect()
      await r.ping()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await sleep(50)
    } finally {
      r.disconnect()
    }
  }
}

export async function startCluster (): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-cluster-'))
  const taken = new Set<number>()
  const ports: number[] = []
  for (let i = 0; i < 6; i++) {
    const p = await clusterPort(taken)
    taken.add(p)
    ports.push(p)
  }
  const children = new Map<number, ChildProcess>()
  const nodes: ClusterNode[] = ports.map(port => {
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
      // short, so a failover in a test takes seconds, not the default 15
      '--cluster-node-timeout', '1500',
      // a replica syncs at once (the default waits 5 s for more replicas): one that never synced cannot take over
      '--repl-diskless-sync-delay', '0',
      '--save', '', '--appendonly', 'no'
    ], { stdio: 'ignore' })
    children.set(port, child)
    let alive = true
    child.once('exit', () => { alive = false })
    return {
      port,
      kill: () => { child.kill('SIGKILL') },
      get alive () { return alive }
    }
  })
  // a test process that is killed (a timeout) must not leave six servers behind
  const orphans = (): void => { for (const child of children.values()) child.kill('SIGKILL') }
  process.once('exit', orphans)
  const stop = async (): Promise<void> => {
    process.removeListener('exit', orphans)
    await Promise.all([...children.values()].map(child => new Promise<void>(resolve => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.all(ports.map(p => ping(p, 10_000)))
    await run('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 })
  } catch (err) {
    await stop()
    throw err
  }
  // asks the nodes in turn: one just killed may not have been noticed as dead yet
  const query = async <T>(fn: (r: Redis) => Promise<T>): Promise<T> => {
    let last: unknown = new Error('no cluster node alive')
    for (const n of nodes.filter(x => x.alive)) {
      const r = new Redis({ port: n.port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null, connectTimeout: 1000 })
      r.on('error', () => {})
      try {
        await r.connect()
        return await fn(r)
      } catch (err) {
        last = err
      } finally {
        r.disconnect()
      }
    }
    throw last
  }
  // CLUSTER NODES: id addr flags master ping pong epoch link slot…
  const roles = async (): Promise<{ masters: number[], replicas: number[] }> => query(async r => {
    const text = await r.call('CLUSTER', 'NODES') as string
    const out = { masters: [] as number[], replicas: [] as number[] }
    for (const line of text.split('\n')) {
      const parts = line.split(' ')
      if (parts.length < 8) continue
      const flags = parts[2].split(',')
      if (flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr')) continue
      const port = Number(parts[1].split('@')[0].split(':')[1])
      if (flags.includes('master') && parts.length > 8) out.masters.push(port)
      else if (flags.includes('slave')) out.replicas.push(port)
    }
    out.masters.sort((x, y) => x - y)
    return out
  })
  const masters = async (): Promise<number[]> => (await roles()).masters
  const healthy = async (ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms
    for (;;) {
      const ok = await Promise.all(nodes.filter(n => n.alive).map(n => new Promise<boolean>(resolve => {
        const r = new Redis({ port: n.port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
        r.on('error', () => {})
        r.connect().then(() => r.call('CLUSTER', 'INFO')).then(info => {
          resolve(/cluster_state:ok/.test(String(info)) && /cluster_slots_ok:16384/.test(String(info)))
        }, () => resolve(false)).finally(() => r.disconnect())
      })))
      if (ok.length > 0 && ok.every(Boolean) && (await roles()).masters.length === 3) return
      if (Date.now() > deadline) throw new Error('the cluster did not become healthy')
      await sleep(100)
    }
  }
  const masterOf = async (key: string): Promise<number> => query(async r => {
    const slot = await r.call('CLUSTER', 'KEYSLOT', key) as number
    const shards = await r.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
    const owner = shards.find(([from, to]) => slot >= from && slot <= to)
    if (owner === undefined) throw new Error(`slot ${slot} is not served`)
    return owner[2][1]
  })
  await healthy()
  // the replicas are assigned just after the slots: wait for them, synced, so a failover has someone to promote
  const synced = async (port: number): Promise<boolean> => {
    const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null })
    r.on('error', () => {})
    try {
      await r.connect()
      return /master_link_status:up/.test(await r.info('replication'))
    } catch {
      return false
    } finally {
      r.disconnect()
    }
  }
  const deadline = Date.now() + 20_000
  for (;;) {
    const { replicas } = await roles()
    if (replicas.length === 3 && (await Promise.all(replicas.map(synced))).every(Boolean)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error('the replicas did not join and sync')
    }
    await sleep(100)
  }
  return { url: ports.map(p => `redis://127.0.0.1:${p}`).join(','), nodes, masters, masterOf, healthy, stop }
}
