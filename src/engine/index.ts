import { ConfigError, type GatecastConfig } from '../config.ts'
import { MemoryEngine } from './memory.ts'
import type { Engine } from './types.ts'

export type { Engine } from './types.ts'

export function createEngine (config: GatecastConfig): Engine {
  if (config.redisUrl !== undefined) {
    throw new ConfigError('REDIS_URL is set, but this build has no Redis engine yet; unset it to run one node with the in-process engine')
  }
  return new MemoryEngine()
}
