import type { FastifyBaseLogger } from 'fastify'
import type { GatecastConfig } from '../config/config.ts'
import { MemoryEngine } from './memory.ts'
import { RedisEngine } from './redis.ts'
import type { Engine } from './types.ts'

export type { Engine } from './types.ts'

/** REDIS_URL set: the cluster engine; otherwise everything stays in this process. */
export function createEngine (config: GatecastConfig, log: FastifyBaseLogger): Engine {
  if (config.redisUrl !== undefined) return new RedisEngine({ url: config.redisUrl, prefix: config.redisPrefix, nodeTimeoutMs: config.nodeTimeout * 1000, log })
  return new MemoryEngine()
}
