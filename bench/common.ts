// What the orchestrator, the load generator and the server processes share:
// the secret, the server kinds and the IPC messages between orchestrator and servers.

/** HS256 secret every server verifies with (≥ 32 bytes, so Gatecast does not warn). */
export const SECRET = 'gatecast-bench-secret-0123456789-abcdefghijklmnopqrstuv'

export const SERVER_KINDS = ['gatecast', 'ws', 'socketio', 'fastify', 'wscork', 'direct', 'backend', 'ws-redis'] as const
/**
 * what runs without --only; opt-in: `fastify` (the Fastify floor), `wscork` (bare ws, framed once and
 * corked), `direct` (Gatecast with its upgrades answered outside Fastify's router) and `backend`
 * (Gatecast asking a no-op application backend on each connect and client publish). `ws-redis`, the
 * Node cluster floor (bare ws nodes over Redis pub/sub), runs only in the cluster-* scenarios, always.
 */
export const DEFAULT_SERVERS: readonly ServerKind[] = ['gatecast', 'ws', 'socketio']
export type ServerKind = typeof SERVER_KINDS[number]

/** The channel names of the contract; the bare servers check the same pattern. */
export const CHANNEL_RE = /^[A-Za-z0-9_.:@#,-]{1,128}$/

/** Passed to a server process in the env variable BENCH_SERVER_OPTIONS (JSON). */
export interface ServerOptions {
  secret: string
  /** Gatecast and ws-redis: the Redis engine; with redisCluster a comma list of a Redis Cluster's nodes */
  redisUrl?: string
  redisCluster?: boolean
  redisPrefix?: string
  /** Gatecast only: pino level (default warn) */
  logLevel?: string
}

export type ToServer =
  | { type: 'gc' }
  | { type: 'stop' }
  | { type: 'mem' }
  | { type: 'profile-start', intervalUs: number }
  | { type: 'profile-stop', file: string }
export type FromServer =
  | { type: 'listening', port: number }
  | { type: 'gc-done' }
  /** after two full GCs: V8's heap in use and the process RSS, bytes */
  | { type: 'mem', heapUsed: number, rss: number }
  | { type: 'profile-started' }
  | { type: 'profile-done', file: string }

/** The payload the load generator publishes; `t` is performance.now() in the load generator. */
export interface BenchData {
  t: number
  /** message index (fan-out) */
  i?: number
  /** filler that brings the payload to a chosen size (rooms-spread) */
  s?: string
}
