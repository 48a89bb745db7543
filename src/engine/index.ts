// The engines and their roles: memory/ for one process, redis/ for a cluster.
export { createMemoryEngine } from './memory/index.ts'
export { createRedisEngine, type RedisEngineOptions } from './redis/index.ts'

export type {
  Engine, EngineListener, ChannelSummary, ConnectionCall, ConnectionInfo, ConnectionRef, ControlMessage, HistoryOptions, PresenceEntry,
  PublishInput, Recovery, RefreshRecord, StoredMessage, UserStatus
} from './types.ts'
export type { Broker, BrokerListener } from './broker.ts'
export type { PresenceManager, PresenceListener } from './presence.ts'
export type { AuthStore } from './auth-store.ts'
export type { NodeAnswer, NodeQuestionHandler, NodeRegistry, NodeReport } from './nodes.ts'
