// The in-process engine: one node, everything in maps, one sweeper for all roles.
import type { Engine, EngineListener } from '../types.ts'
import { MemoryAuthStore } from './auth-store.ts'
import { MemoryBroker } from './broker.ts'
import { MemoryNodeRegistry } from './node-registry.ts'
import { MemoryPresence } from './presence.ts'

const SWEEP_MS = 10_000

export interface MemoryEngineOptions {
  /** HISTORY_MAX_BYTES: what the history of every channel may hold in all */
  historyMaxBytes?: number
}

export function createMemoryEngine (o: MemoryEngineOptions = {}): Engine {
  const broker = new MemoryBroker(o.historyMaxBytes)
  const presence = new MemoryPresence()
  const store = new MemoryAuthStore()
  const nodes = new MemoryNodeRegistry()
  let sweeper: NodeJS.Timeout | null = null
  let started = false
  const occupied = (channel: string): boolean => presence.occupied(channel)
  return {
    broker,
    presence,
    store,
    nodes,
    async start (listener: EngineListener) {
      broker.attach(listener)
      started = true
      sweeper = setInterval(() => {
        const now = Date.now()
        broker.sweep(now, occupied)
        store.sweep(now)
      }, SWEEP_MS).unref()
    },
    async close () {
      if (sweeper !== null) clearInterval(sweeper)
      sweeper = null
      broker.attach(null)
      started = false
    },
    isReady: () => started,
    health: () => ({ errors: 0, rttMs: null })
  }
}
