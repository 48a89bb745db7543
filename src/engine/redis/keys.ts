// Every Redis key and topic of the engine, named in one place.
//
// Keys carry a hash tag per channel ({ch:NAME}) and per user ({u:ID}), and
// per-channel topics the channel's tag, so on a Redis Cluster a channel's keys
// and topic share one slot (SPUBLISH). On one Redis a few scripts also touch
// an index outside it (the channel list, the history byte counts, a node's
// share of the socket slots); a cluster keeps those slot-safe another way
// (see scripts.ts).

export function redisKeys (p: string, cluster = false) {
  // on a cluster the two history byte indexes share a slot, so one script keeps them together
  const hist = cluster ? `${p}:{hist}` : p
  return {
    meta: (c: string) => `${p}:{ch:${c}}:meta`,
    hist: (c: string) => `${p}:{ch:${c}}:hist`,
    users: (c: string) => `${p}:{ch:${c}}:users`,
    topic: (c: string) => `${p}:{ch:${c}}:pub`,
    user: (u: string) => `${p}:{u:${u}}:chans`,
    sockets: (u: string) => `${p}:{u:${u}}:socks`,
    channels: () => `${p}:channels`,
    // history bytes per channel and in all, for HISTORY_MAX_BYTES
    histSizes: () => `${hist}:histsizes`,
    histTotal: () => `${hist}:histtotal`,
    histSweep: () => `${p}:histsweep`,
    control: () => `${p}:control`,
    nodes: () => `${p}:nodes`,
    nodeConns: (n: string) => `${p}:node:${n}:conns`,
    // requests for this node's connections, and the answers to its own requests
    nodeTopic: (n: string) => `${p}:node:${n}:rpc`,
    reap: (n: string) => `${p}:reap:${n}`,
    // each node's latest report for operators (the admin console), a field per node
    nodeReports: () => `${p}:nodereports`,
    // questions to every node, and the answers to this node's own questions
    nodesAsk: () => `${p}:nodes:ask`,
    nodeAnswers: (n: string) => `${p}:node:${n}:answers`,
    revoked: (jti: string) => `${p}:revoked:${jti}`,
    refresh: (k: string) => `${p}:rt:${k}`,
    family: (f: string) => `${p}:family:${f}`,
    hits: (k: string) => `${p}:hits:${k}`,
    // the prefix @fastify/rate-limit's own Redis store was given before (nameSpace)
    rate: (k: string) => `${p}:rl:${k}`,
    // cluster only: a user's socket slots per node (in the user's slot), and the users a node ever held
    userNodes: (u: string) => `${p}:{u:${u}}:nodes`,
    nodeUsers: (n: string) => `${p}:node:${n}:users`,
    // cluster only: what a master's keys of channel presence look like, for a scan
    usersPattern: () => `${p}:{ch:*}:users`
  }
}

export type RedisKeys = ReturnType<typeof redisKeys>
