// The engines and their roles. (Transitional: one class per engine serves all
// three roles until they are split.)
import type { Logger } from '../config/logger.ts'
import { MemoryEngine } from './memory.ts'
import { RedisEngine, type RedisEngineOptions } from './redis.ts'
import type { Engine } from './types.ts'

export type { Engine, EngineListener } from './types.ts'
export type { Broker, BrokerListener } from './broker.ts'
export type { PresenceManager, PresenceListener } from './presence.ts'
export type { AuthStore } from './auth-store.ts'

type Legacy = MemoryEngine | RedisEngine

function roles (e: Legacy): Engine {
  return {
    broker: e,
    presence: {
      addConnection: ref => e.addConnection(ref),
      removeConnection: ref => e.removeConnection(ref),
      presence: channel => e.presence(channel),
      channels: () => e.channels(),
      userStatus: userId => e.userStatus(userId)
    },
    store: e,
    start: listener => e.start(listener),
    close: () => e.close(),
    isReady: () => e.isReady(),
    health: () => e.health()
  }
}

export function createMemoryEngine (): Engine {
  return roles(new MemoryEngine())
}

export function createRedisEngine (o: Omit<RedisEngineOptions, 'log'> & { log: Logger }): Engine & { redis: RedisEngine } {
  const e = new RedisEngine(o)
  return { ...roles(e), redis: e }
}
