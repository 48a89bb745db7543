// The cluster engine: every node with the same Redis URL and prefix is one
// gateway. The roles share one connection (connection.ts).
import type { Engine, EngineListener } from '../types.ts'
import { RedisAuthStore } from './auth-store.ts'
import { RedisBroker } from './broker.ts'
import { RedisConnection, type RedisEngineOptions } from './connection.ts'
import { RedisNodeRegistry } from './node-registry.ts'
import { NodeHeartbeat } from './nodes.ts'
import { RedisPresence } from './presence.ts'

export type { RedisEngineOptions } from './connection.ts'

// how often one node takes expired channels out of the history byte counts
const HISTORY_SWEEP_MS = 60_000

export function createRedisEngine (o: RedisEngineOptions): Engine {
  const c = new RedisConnection(o)
  const broker = new RedisBroker(c, o.historyMaxBytes)
  const presence = new RedisPresence(c)
  const store = new RedisAuthStore(c)
  const nodes = new NodeHeartbeat(c, presence, o.nodeTimeoutMs)
  const registry = new RedisNodeRegistry(c, o.nodeTimeoutMs)
  let sweeper: NodeJS.Timeout | null = null
  return {
    broker,
    presence,
    store,
    nodes: registry,
    async start (listener: EngineListener) {
      broker.attach(listener)
      presence.attach(listener)
      if (!await c.waitReady(5000)) c.log.warn('redis is not reachable yet; the node answers 503 until it is')
      c.startProbe()
      // a node that starts with Redis there hears control messages before it says it is up;
      // one that starts without it subscribes when Redis comes
      const listening = broker.listenControl()
      if (c.isReady()) await listening
      await nodes.start()
      sweeper = setInterval(() => {
        if (c.isReady()) broker.sweepHistory(HISTORY_SWEEP_MS).catch(c.onError)
      }, HISTORY_SWEEP_MS).unref()
    },
    async close () {
      if (sweeper !== null) clearInterval(sweeper)
      sweeper = null
      broker.attach(null)
      presence.attach(null)
      await broker.close()
      // leaving cleanly: this node's connections leave presence now, not at the node timeout
      await nodes.leave()
      c.disconnect()
    },
    isReady: () => c.isReady(),
    health: () => c.health()
  }
}
