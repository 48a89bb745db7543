// Every Lua script of the Redis engine, and their registration on a client.
import type { Cluster, Redis } from 'ioredis'
import { MESSAGE_LAYOUT } from '../../protocol/message-layout.ts'

// how long a channel's epoch/sequence (and, on a cluster, its history byte count) outlives
// its last publish, at the least: never less than its history
const META_TTL_MS = 24 * 3600 * 1000

/**
 * A Lua (5.1) single-quoted literal of `s`: printable ASCII as is, everything
 * else (quote, backslash, control bytes, UTF-8 bytes) as a three-digit \ddd
 * escape, so no layout piece can end the literal or change meaning.
 */
export function luaString (s: string): string {
  let out = "'"
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x27 && byte !== 0x5c
      ? String.fromCharCode(byte)
      : '\\' + String(byte).padStart(3, '0')
  }
  return out + "'"
}

// the `message` frame, concatenated from the same pieces as messageFrameText
const [BEFORE_CHANNEL, BEFORE_ID, BEFORE_FROM, BEFORE_DATA, BEFORE_TS, END] = MESSAGE_LAYOUT.map(luaString)
const FRAME_LUA = `${BEFORE_CHANNEL} .. ARGV[1] .. ${BEFORE_ID} .. id .. ${BEFORE_FROM} .. ARGV[2] .. ${BEFORE_DATA} .. ARGV[3] .. ${BEFORE_TS} .. ARGV[4] .. ${END}`

// KEYS: meta, hist, then on one Redis the history sizes (a sorted set channel →
// bytes) and the total. ARGV: channel, from, data, ts, history size, a new
// epoch, ttl ms, topic. Returns {id, n}: on one Redis n is the total bytes of
// history (past HISTORY_MAX_BYTES the node evicts); on a cluster, where those
// indexes live in another slot, it is this publish's change to the channel's
// bytes (kept in meta's `bytes`), which the node adds to them later.
// Entries are {e, expiry, f, frame, b, bytes[, p, previous seq]}; trimmed here,
// not by MAXLEN, so the bytes that go are known.
//
// On a cluster a sequence is at least the shard's clock (in 10 µs): a failover
// to a replica that missed the last publishes cannot hand their sequences out
// again, and each entry names the one before it, so a `since` from the lost
// stretch is answered `recovered: false` instead of a wrong replay. A node
// that saw a sequence above the stream's top (acknowledged, then lost) starts
// a new epoch: every `since` from before the loss is then unrecoverable.
function publishLua (cluster: boolean): string {
  const seq = cluster
    ? `local now = redis.call('TIME')
local seq = math.max(prev + 1, floor + 1, tonumber(now[1]) * 100000 + math.floor(tonumber(now[2]) / 10))
local seqText = string.format('%.0f', seq)
redis.call('HSET', KEYS[1], 'top', seqText)`
    : `local seq = redis.call('HINCRBY', KEYS[1], 'top', 1)
local seqText = string.format('%.0f', seq)`
  const had = cluster
    ? `local had = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
    if had ~= 0 then
      redis.call('HSET', KEYS[1], 'bytes', 0)
      gone = had
    end`
    : `local had = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
    if had ~= 0 then
      redis.call('ZREM', KEYS[3], ARGV[1])
      redis.call('INCRBY', KEYS[4], -had)
    end`
  const count = cluster
    ? `redis.call('HINCRBY', KEYS[1], 'bytes', delta)
  total = delta - gone`
    : `redis.call('ZINCRBY', KEYS[3], delta, ARGV[1])
  total = redis.call('INCRBY', KEYS[4], delta)`
  // cluster: ARGV[9] is the highest sequence the node has seen on the channel; a
  // stream below it lost acknowledged entries in a failover, and starts a new epoch
  const head = cluster
    ? `local prev = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local floor = tonumber(ARGV[9])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch or prev < floor then`
    : `local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then`
  return `
${head}
  epoch = ARGV[6]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
${seq}
local id = epoch .. ':' .. seqText
local frame = ${FRAME_LUA}
local size = tonumber(ARGV[5])
local ttl = tonumber(ARGV[7])
local total = 0
local gone = 0
if size > 0 then
  -- a stream that expired took its bytes with it: its old count goes too
  if redis.call('EXISTS', KEYS[2]) == 0 then
    ${had}
  end
  local len = string.len(frame)
  redis.call('XADD', KEYS[2], seqText .. '-0', 'e', tonumber(ARGV[4]) + ttl, 'f', frame, 'b', len${cluster ? ", 'p', string.format('%.0f', prev)" : ''})
  local delta = len
  local over = redis.call('XLEN', KEYS[2]) - size
  if over > 0 then
    local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', over)
    for i = 1, #old do
      delta = delta - tonumber(old[i][2][6] or '0')
      redis.call('XDEL', KEYS[2], old[i][1])
    end
  end
  ${count}
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('PEXPIRE', KEYS[1], math.max(${META_TTL_MS}, ttl))
redis.call('${cluster ? 'SPUBLISH' : 'PUBLISH'}', ARGV[8], seqText${cluster ? " .. '/' .. string.format('%.0f', prev) .. '/' .. epoch" : ''} .. ' ' .. ARGV[4] .. ' ' .. frame)
return {id, total}
`
}

export const PUBLISH_LUA = publishLua(false)
export const PUBLISH_CLUSTER_LUA = publishLua(true)

// KEYS: meta, hist, then on one Redis sizes and total; ARGV: channel, level,
// target, and on a cluster the total as the node knows it. Drops the channel's
// oldest entries while it holds more than `level` bytes and history more than
// `target`; returns the bytes dropped (a vanished stream's count included). On
// a cluster the channel's count is meta's `bytes`, and the node takes the
// dropped bytes out of the indexes itself.
function trimOldestLua (cluster: boolean): string {
  return `
local mine = tonumber(${cluster ? "redis.call('HGET', KEYS[1], 'bytes')" : "redis.call('ZSCORE', KEYS[3], ARGV[1])"} or '0')
local level = tonumber(ARGV[2])
local target = tonumber(ARGV[3])
local total = tonumber(${cluster ? 'ARGV[4]' : "redis.call('GET', KEYS[4])"} or '0')
local dropped = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  dropped = mine
else
  while mine - dropped > level and total - dropped > target do
    local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 10)
    if #old == 0 then
      dropped = mine
      break
    end
    for i = 1, #old do
      if mine - dropped <= level or total - dropped <= target then break end
      dropped = dropped + tonumber(old[i][2][6] or '0')
      redis.call('XDEL', KEYS[2], old[i][1])
    end
  end
end
${cluster
  ? "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'bytes', -dropped) end"
  : `if dropped >= mine then redis.call('ZREM', KEYS[3], ARGV[1]) else redis.call('ZINCRBY', KEYS[3], -dropped, ARGV[1]) end
redis.call('INCRBY', KEYS[4], -dropped)`}
return dropped
`
}

// returns {recovered(0|1), top, frame...}; never a partial replay. ARGV[4]
// (cluster): the highest sequence the asking node saw; a stream below it lost
// entries in a failover, so nothing of it is a complete answer. The first
// entry after `since` must follow it: the next number, or (cluster entries,
// whose numbers are clock-based) an entry that names it as the one before.
const RECOVER_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
if not epoch or epoch ~= ARGV[1] then return {0, top} end
local since = tonumber(ARGV[2])
if since > top or top < tonumber(ARGV[4] or '0') then return {0, top} end
if since == top then return {1, top} end
local entries = redis.call('XRANGE', KEYS[2], string.format('%.0f', since + 1) .. '-0', '+')
if #entries == 0 then return {0, top} end
local first = entries[1][2]
local follows
if first[7] == 'p' then
  follows = tonumber(first[8]) == since
else
  follows = tonumber(string.match(entries[1][1], '^(%d+)')) == since + 1
end
if not follows or tonumber(first[2]) <= tonumber(ARGV[3]) then return {0, top} end
local out = {1, top}
for i = 1, #entries do out[#out + 1] = entries[i][2][4] end
return out
`

// HINCRBY that removes the field at zero, so counts never go stale or negative
const COUNT_LUA = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`

// the channel index (KEYS[2]) is the one key outside the channel's slot: one
// Redis only (a cluster finds its channels by a scan of each master)
const CHANNEL_COUNT_LUA = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[3]) else redis.call('SADD', KEYS[2], ARGV[3]) end
return n
`

// a socket slot (KEYS[1]) taken only while fewer than ARGV[1] are, and counted in
// the node's share (KEYS[2], field ARGV[2]) in the same step, so neither can be
// left without the other. One Redis: the node's hash, field "\n<user>"; a
// cluster: the user's hash of nodes (its slot), field the node
const RESERVE_LUA = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return 1
`

// a slot given back, out of the node's share in the same step
const RELEASE_SOCKET_LUA = `
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
local m = redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
if m <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return n
`

// cluster: history bytes added to (or taken from) channels, into the two indexes at
// once (KEYS: sizes, total, one slot; ARGV: channel, delta, …); a channel at zero
// leaves the sizes. Returns the new total.
const ACCOUNT_LUA = `
local sum = 0
for i = 1, #ARGV, 2 do
  local d = tonumber(ARGV[i + 1])
  sum = sum + d
  if tonumber(redis.call('ZINCRBY', KEYS[1], d, ARGV[i])) <= 0 then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return redis.call('INCRBY', KEYS[2], sum)
`

// cluster: a node that saw the channel further than the entry before a delivered
// one (entries acknowledged, then lost in a failover) ends the epoch those lost
// entries belonged to, if it is still the channel's (KEYS: meta, hist; ARGV: the
// epoch, a new one). Returns the history bytes dropped with it.
const END_EPOCH_LUA = `
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
local had = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
redis.call('HSET', KEYS[1], 'bytes', 0)
redis.call('DEL', KEYS[2])
return had
`

// cluster: a dead node's socket slots of one user (KEYS: the counter, the user's
// share per node; ARGV: the node), given back in one step
const REAP_SOCKETS_LUA = `
local n = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
redis.call('HDEL', KEYS[2], ARGV[1])
if n <= 0 then return 0 end
local left = redis.call('DECRBY', KEYS[1], n)
if left <= 0 then redis.call('DEL', KEYS[1]) end
return n
`

// DECRBY that removes the key at zero
const RELEASE_LUA = `
local n = redis.call('DECRBY', KEYS[1], ARGV[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
`

const HIT_LUA = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`

// as HIT_LUA, with the window's remaining ms for Retry-After in the same round trip;
// a counter left without expiry (by hand) would never reset, so it gets the window
const RATE_HIT_LUA = `
local n = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then redis.call('PEXPIRE', KEYS[1], ttl) else ttl = left end
end
return {n, ttl}
`

const USE_REFRESH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local used = redis.call('HINCRBY', KEYS[1], 'u', 1)
return {redis.call('HGET', KEYS[1], 'r'), used}
`

export type Script = (...args: Array<string | number>) => Promise<unknown>

export interface Scripts {
  publish: Script
  trimOldest: Script
  recover: Script
  count: Script
  channelCount: Script
  reapSockets: Script
  account: Script
  endEpoch: Script
  reserve: Script
  releaseSocket: Script
  release: Script
  hit: Script
  rateHit: Script
  useRefresh: Script
}

/**
 * Registers every script on the command client (EVALSHA, with EVAL on a cache
 * miss); on a cluster, the variants whose keys all share one slot.
 */
export function defineScripts (client: Redis | Cluster, cluster = false): Scripts {
  const define = (name: string, numberOfKeys: number, lua: string): Script => {
    client.defineCommand(name, { numberOfKeys, lua })
    const fn = (client as unknown as Record<string, Script>)[name]
    return fn.bind(client)
  }
  return {
    publish: cluster ? define('gcPublishSharded', 2, PUBLISH_CLUSTER_LUA) : define('gcPublish', 4, PUBLISH_LUA),
    trimOldest: cluster ? define('gcTrimOldestSharded', 2, trimOldestLua(true)) : define('gcTrimOldest', 4, trimOldestLua(false)),
    recover: define('gcRecover', 2, RECOVER_LUA),
    count: define('gcCount', 1, COUNT_LUA),
    channelCount: define('gcChannelCount', 2, CHANNEL_COUNT_LUA),
    reapSockets: define('gcReapSockets', 2, REAP_SOCKETS_LUA),
    account: define('gcAccount', 2, ACCOUNT_LUA),
    endEpoch: define('gcEndEpoch', 2, END_EPOCH_LUA),
    reserve: define('gcReserve', 2, RESERVE_LUA),
    releaseSocket: define('gcReleaseSocket', 2, RELEASE_SOCKET_LUA),
    release: define('gcRelease', 1, RELEASE_LUA),
    hit: define('gcHit', 1, HIT_LUA),
    rateHit: define('gcRateHit', 1, RATE_HIT_LUA),
    useRefresh: define('gcUseRefresh', 1, USE_REFRESH_LUA)
  }
}
