// Engines for the engine tests: no HTTP, a listener that records everything
// the engine delivers, and for Redis a key prefix of the test's own.
import { Redis } from 'ioredis'
import { createMemoryEngine, createRedisEngine, type ControlMessage, type Engine, type EngineListener } from '../../src/engine/index.ts'
import { captureLogger, type LogLine } from './core.ts'
import tap from 'tap'
import { REDIS_URL, redisPrefix } from './redis.ts'
import { clusterPrefix, clusterUrl } from './redis-cluster.ts'
import { waitFor } from './wait.ts'

export type Kind = 'memory' | 'redis' | 'cluster'
/** in-process, one Redis, and a Redis Cluster of 3 masters and 3 replicas */
export const KINDS: Kind[] = ['memory', 'redis', 'cluster']

interface Teardown { teardown: (fn: () => unknown) => void }

export interface Delivery { channel: string, seq: number, frame: string, ts: number }

export class Recorder implements EngineListener {
  readonly deliveries: Delivery[] = []
  readonly controls: ControlMessage[] = []
  readonly lost: Array<{ channel: string, userId: string }> = []

  deliver (channel: string, seq: number, frame: string, ts: number): void {
    this.deliveries.push({ channel, seq, frame, ts })
  }

  control (msg: ControlMessage): void {
    this.controls.push(msg)
  }

  presenceLost (channel: string, userId: string): void {
    this.lost.push({ channel, userId })
  }

  /** the engine tests hold no connections */
  connection (): null {
    return null
  }

  of (channel: string): Delivery[] {
    return this.deliveries.filter(d => d.channel === channel)
  }
}

export { sleep } from './wait.ts'

/** Engine deliveries come within milliseconds: poll often. */
export const until = (cond: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> =>
  waitFor(cond, { ms, what, every: 5 })

export interface Opened {
  engine: Engine
  rec: Recorder
  prefix: string
  log: LogLine[]
  /** closes the engine now (teardown then leaves it alone) */
  close: () => Promise<void>
}

/** A started engine, closed at teardown; Redis engines may share a prefix (one cluster). */
export async function openEngine (t: Teardown, kind: Kind, o: { prefix?: string, nodeTimeoutMs?: number, historyMaxBytes?: number } = {}): Promise<Opened> {
  const log: LogLine[] = []
  const url = kind === 'cluster' ? await clusterUrl(tap) : REDIS_URL
  const prefix = kind === 'memory' ? '' : o.prefix ?? (kind === 'cluster' ? clusterPrefix(t, url) : redisPrefix(t))
  const engine = kind === 'memory'
    ? createMemoryEngine({ historyMaxBytes: o.historyMaxBytes })
    : createRedisEngine({ url, cluster: kind === 'cluster', prefix, nodeTimeoutMs: o.nodeTimeoutMs ?? 10_000, log: captureLogger(log), historyMaxBytes: o.historyMaxBytes })
  const rec = new Recorder()
  await engine.start(rec)
  let closing: Promise<void> | null = null
  const close = () => { closing ??= engine.close(); return closing }
  t.teardown(close)
  return { engine, rec, prefix, log, close }
}

/** A plain client on the test Redis, for looking at (and breaking) the engine's keys. */
export function rawRedis (t: Teardown): Redis {
  const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  t.teardown(() => r.disconnect())
  return r
}
