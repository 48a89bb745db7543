// Every Redis key and topic of the engine, named in one place.
//
// Keys carry a hash tag per channel ({ch:NAME}) and per user ({u:ID}) so a
// Redis Cluster can hold them without a migration; per-channel pub/sub topics
// use the same tag (ready for SPUBLISH). Scripts touch one channel's keys only,
// except the `channels` index (see CHANNEL_COUNT_LUA).

export function redisKeys (p: string) {
  return {
    meta: (c: string) => `${p}:{ch:${c}}:meta`,
    hist: (c: string) => `${p}:{ch:${c}}:hist`,
    users: (c: string) => `${p}:{ch:${c}}:users`,
    topic: (c: string) => `${p}:{ch:${c}}:pub`,
    user: (u: string) => `${p}:{u:${u}}:chans`,
    sockets: (u: string) => `${p}:{u:${u}}:socks`,
    channels: () => `${p}:channels`,
    // history bytes per channel and in all, for HISTORY_MAX_BYTES
    histSizes: () => `${p}:histsizes`,
    histTotal: () => `${p}:histtotal`,
    histSweep: () => `${p}:histsweep`,
    control: () => `${p}:control`,
    nodes: () => `${p}:nodes`,
    nodeConns: (n: string) => `${p}:node:${n}:conns`,
    // requests for this node's connections, and the answers to its own requests
    nodeTopic: (n: string) => `${p}:node:${n}:rpc`,
    reap: (n: string) => `${p}:reap:${n}`,
    revoked: (jti: string) => `${p}:revoked:${jti}`,
    refresh: (k: string) => `${p}:rt:${k}`,
    family: (f: string) => `${p}:family:${f}`,
    hits: (k: string) => `${p}:hits:${k}`,
    // the prefix @fastify/rate-limit's own Redis store was given before (nameSpace)
    rate: (k: string) => `${p}:rl:${k}`
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>
