// Configuration is read and validated once at boot; everything else reads the
// `config` decorator. Environment (and ./.env) first, options passed in code on top.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { dirname, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import envSchema from 'env-schema'

/** A namespace's options (CHANNELS_FILE): what `ns:rest` channels allow. */
export interface NamespaceOptions {
  /** clients may publish (the server API always may) */
  publish?: boolean
  /** join/leave frames and presence queries */
  presence?: boolean
  historySize?: number
  /** seconds */
  historyTtl?: number
}

export const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'ES256', 'EdDSA'] as const
export type JwtAlgorithm = typeof ALGORITHMS[number]

const int = (def: number, min = 0) => Type.Integer({ default: def, minimum: min })
const optString = () => Type.Optional(Type.String({ minLength: 1 }))
const seconds = (def: number) => Type.Number({ default: def, exclusiveMinimum: 0 })

export const EnvSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  NODE_ENV: Type.String({ default: 'development' }),
  JWT_SECRET: optString(),
  JWT_ALGORITHM: Type.Unsafe<JwtAlgorithm>({ type: 'string', enum: [...ALGORITHMS], default: 'HS256' }),
  JWT_PUBLIC_KEY_FILE: optString(),
  JWT_PRIVATE_KEY_FILE: optString(),
  JWT_KEY_ID: Type.Optional(Type.String({ pattern: '^[\\x21-\\x7e]{1,128}$' })),
  JWT_PREVIOUS_SECRETS: optString(),
  JWT_PREVIOUS_PUBLIC_KEY_FILES: optString(),
  JWT_PREVIOUS_KEY_IDS: optString(),
  JWT_JWKS_URL: optString(),
  JWT_JWKS_TIMEOUT: seconds(5),
  JWT_JWKS_COOLDOWN: seconds(30),
  JWT_JWKS_MAX_AGE: seconds(600),
  JWT_ISSUER: optString(),
  JWT_AUDIENCE: optString(),
  JWT_USER_CLAIM: Type.String({ default: 'sub', minLength: 1 }),
  ACCESS_TOKEN_TTL: int(3600, 1),
  REFRESH_TOKEN_TTL: int(1209600, 1),
  USERS_FILE: optString(),
  API_KEY: optString(),
  REDIS_URL: optString(),
  REDIS_CLUSTER: Type.Boolean({ default: false }),
  REDIS_PREFIX: Type.String({ default: 'gatecast', pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  NODE_TIMEOUT: int(15, 1),
  ALLOWED_ORIGINS: optString(),
  TRUST_PROXY: optString(),
  LOG_LEVEL: Type.Unsafe<string>({ type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }),
  PLUGINS: optString(),
  WS_MAX_PAYLOAD: int(65536, 128),
  WS_MESSAGE_RATE: int(100, 1),
  WS_UPGRADE_RATE: int(600, 1),
  WS_SOCKETS_PER_USER: int(100, 1),
  WS_CHANNELS_PER_SOCKET: int(100, 1),
  WS_SEND_BUFFER: int(1048576, 1024),
  WS_PING_INTERVAL: int(25, 1),
  WS_EXPIRY_GRACE: int(25, 0),
  LOGIN_RATE: int(30, 1),
  LOGIN_FAILURES: int(5, 1),
  HISTORY_SIZE: int(100, 0),
  HISTORY_TTL: int(300, 1),
  HISTORY_MAX_BYTES: int(268435456, 1024),
  CHANNELS_FILE: optString(),
  DEMO: Type.Optional(Type.Boolean()),
  ADMIN_CONSOLE: Type.Optional(Type.Boolean()),
  BACKEND_URL: optString(),
  BACKEND_EVENTS: optString(),
  BACKEND_SECRET: optString(),
  BACKEND_TIMEOUT: int(2000, 1),
  BACKEND_MAX_IN_FLIGHT: int(1000, 1),
  SHUTDOWN_TIMEOUT: int(10, 1),
  MAX_EVENT_LOOP_DELAY: int(1000, 0)
})
export type Env = Static<typeof EnvSchema>

export interface GatecastConfig {
  host: string
  port: number
  production: boolean
  jwtSecret?: string
  jwtAlgorithm: JwtAlgorithm
  jwtPublicKeyFile?: string
  jwtPrivateKeyFile?: string
  /** `kid` of the current signing key; undefined = derived from the key */
  jwtKeyId?: string
  /** HMAC secrets of earlier keys, accepted for verification only (each under its kid) */
  jwtPreviousSecrets: string[]
  /** PEM public keys of earlier key pairs, accepted for verification only */
  jwtPreviousPublicKeyFiles: string[]
  /** kids of the previous keys, position by position; '' = derived from the key */
  jwtPreviousKeyIds: string[]
  jwtJwksUrl?: string
  /** seconds a JWKS fetch may take */
  jwtJwksTimeout: number
  /** minimum seconds between two JWKS fetches (an unknown `kid` refetches at most this often) */
  jwtJwksCooldown: number
  /** seconds after which a fetched JWKS is refreshed (in the background) */
  jwtJwksMaxAge: number
  jwtIssuer?: string
  jwtAudience?: string
  jwtUserClaim: string
  accessTokenTtl: number
  refreshTokenTtl: number
  /** null: no users file (login only through `verifyCredentials`) */
  usersFile: string | null
  apiKey?: string
  redisUrl?: string
  /** REDIS_URL names a Redis Cluster (a comma list of seed nodes allowed): sharded pub/sub, slot-safe keys */
  redisCluster: boolean
  /** key prefix in Redis, so several clusters (or tests) can share one server */
  redisPrefix: string
  /** seconds without a heartbeat after which a node's connections leave presence */
  nodeTimeout: number
  /** null: any origin */
  allowedOrigins: string[] | null
  /**
   * Whose `X-Forwarded-For` to believe, so `req.ip` (the per-IP upgrade and
   * login limits, a socket's remoteAddress, the request logs) is the client
   * behind a reverse proxy rather than the proxy itself. `false` (default): the
   * socket address, the header ignored; `true`: every hop, which lets a client
   * that reaches the server directly choose its own address; a list: only
   * proxies at these IP addresses, CIDRs or `loopback`/`linklocal`/`uniquelocal`.
   * No hop counts: Fastify ignores them since 5.12.1, as a count cannot tell a
   * proxy from a client that forges the header.
   * Applied by `build()`: a host app that registers the plugin on its own
   * Fastify instance passes `trustProxy` to that instance instead.
   */
  trustProxy: boolean | string[]
  logLevel: string
  plugins: string[]
  wsMaxPayload: number
  wsMessageRate: number
  wsUpgradeRate: number
  wsSocketsPerUser: number
  /** channels one socket may be subscribed to at once */
  wsChannelsPerSocket: number
  wsSendBuffer: number
  wsPingInterval: number
  wsExpiryGrace: number
  loginRate: number
  loginFailures: number
  historySize: number
  historyTtl: number
  /** bytes of history one node (memory engine) or one cluster (Redis) keeps in all */
  historyMaxBytes: number
  /** namespace options, from CHANNELS_FILE or code */
  channels: Record<string, NamespaceOptions>
  /** where dev defaults (secret, demo users) live */
  dataDir: string
  /** serve the demo page at / and /demo/* (default: on unless production) */
  demo: boolean
  /** seconds a graceful shutdown may take before sockets are cut */
  shutdownTimeout: number
  /** ms of event-loop delay above which new upgrades and logins get 503 (0 = never) */
  maxEventLoopDelay: number
  /** serve the admin console at /admin (default: on unless production) */
  adminConsole: boolean
  /** base URL of the application backend called on socket events; undefined: no calls */
  backendUrl?: string
  /** which events go to the backend (all four by default) */
  backendEvents: BackendEvent[]
  /** HMAC-SHA256 key of the X-Gatecast-Signature header */
  backendSecret?: string
  /** ms one backend call may take */
  backendTimeout: number
  /** backend calls one node may have open at once; past it a call fails at once as unavailable */
  backendMaxInFlight: number
}

export const BACKEND_EVENTS = ['connect', 'subscribe', 'publish', 'close'] as const
export type BackendEvent = typeof BACKEND_EVENTS[number]

export type ConfigOverrides = Partial<GatecastConfig>

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

function readDotEnv (cwd: string): Record<string, string> {
  const file = resolve(cwd, '.env')
  if (!existsSync(file)) return {}
  const parsed = parseEnv(readFileSync(file, 'utf8'))
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(parsed)) if (v !== undefined) out[k] = v
  return out
}

function list (value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map(s => s.trim()).filter(s => s !== '')
}

const NamespaceSchema = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.@,-]+$' }), Type.Object({
  publish: Type.Optional(Type.Boolean()),
  presence: Type.Optional(Type.Boolean()),
  historySize: Type.Optional(Type.Integer({ minimum: 0 })),
  historyTtl: Type.Optional(Type.Integer({ minimum: 1 }))
}, { additionalProperties: false }))
const namespaceCheck = TypeCompiler.Compile(NamespaceSchema)

function readChannelsFile (file: string): Record<string, NamespaceOptions> {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`CHANNELS_FILE ${file}: ${(err as Error).message}`)
  }
  if (namespaceCheck.Check(raw)) return raw
  const first = namespaceCheck.Errors(raw).First()
  throw new ConfigError(`CHANNELS_FILE ${file} is not valid: ${first?.path ?? ''} ${first?.message ?? ''}`)
}

/** Reads env (+ ./.env), validates it, applies code overrides. Pure apart from reading files. */
export function readConfig (overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): GatecastConfig {
  let e: Env
  // `NAME=` means unset, as in most .env tooling
  const data = Object.fromEntries(Object.entries({ ...readDotEnv(cwd), ...env }).filter(([, v]) => v !== undefined && v !== ''))
  try {
    e = envSchema<Env>({ schema: EnvSchema, data, dotenv: false })
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`)
  }
  const production = e.NODE_ENV === 'production'
  const dataDir = resolve(cwd, 'data')
  const config: GatecastConfig = {
    host: e.HOST,
    port: e.PORT,
    production,
    jwtSecret: e.JWT_SECRET,
    jwtAlgorithm: e.JWT_ALGORITHM,
    jwtPublicKeyFile: e.JWT_PUBLIC_KEY_FILE !== undefined ? resolve(cwd, e.JWT_PUBLIC_KEY_FILE) : undefined,
    jwtPrivateKeyFile: e.JWT_PRIVATE_KEY_FILE !== undefined ? resolve(cwd, e.JWT_PRIVATE_KEY_FILE) : undefined,
    jwtKeyId: e.JWT_KEY_ID,
    jwtPreviousSecrets: list(e.JWT_PREVIOUS_SECRETS),
    jwtPreviousPublicKeyFiles: list(e.JWT_PREVIOUS_PUBLIC_KEY_FILES).map(f => resolve(cwd, f)),
    // positional: an empty item keeps the derived kid of that key
    jwtPreviousKeyIds: e.JWT_PREVIOUS_KEY_IDS === undefined ? [] : e.JWT_PREVIOUS_KEY_IDS.split(',').map(s => s.trim()),
    jwtJwksUrl: e.JWT_JWKS_URL,
    jwtJwksTimeout: e.JWT_JWKS_TIMEOUT,
    jwtJwksCooldown: e.JWT_JWKS_COOLDOWN,
    jwtJwksMaxAge: e.JWT_JWKS_MAX_AGE,
    jwtIssuer: e.JWT_ISSUER,
    jwtAudience: e.JWT_AUDIENCE,
    jwtUserClaim: e.JWT_USER_CLAIM,
    accessTokenTtl: e.ACCESS_TOKEN_TTL,
    refreshTokenTtl: e.REFRESH_TOKEN_TTL,
    usersFile: e.USERS_FILE !== undefined ? resolve(cwd, e.USERS_FILE) : resolve(dataDir, 'users.json'),
    apiKey: e.API_KEY,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    redisPrefix: e.REDIS_PREFIX,
    nodeTimeout: e.NODE_TIMEOUT,
    allowedOrigins: e.ALLOWED_ORIGINS === undefined ? null : list(e.ALLOWED_ORIGINS),
    trustProxy: e.TRUST_PROXY === undefined ? false : parseTrustProxy(e.TRUST_PROXY),
    logLevel: e.LOG_LEVEL,
    plugins: list(e.PLUGINS),
    wsMaxPayload: e.WS_MAX_PAYLOAD,
    wsMessageRate: e.WS_MESSAGE_RATE,
    wsUpgradeRate: e.WS_UPGRADE_RATE,
    wsSocketsPerUser: e.WS_SOCKETS_PER_USER,
    wsChannelsPerSocket: e.WS_CHANNELS_PER_SOCKET,
    wsSendBuffer: e.WS_SEND_BUFFER,
    wsPingInterval: e.WS_PING_INTERVAL,
    wsExpiryGrace: e.WS_EXPIRY_GRACE,
    loginRate: e.LOGIN_RATE,
    loginFailures: e.LOGIN_FAILURES,
    historySize: e.HISTORY_SIZE,
    historyTtl: e.HISTORY_TTL,
    historyMaxBytes: e.HISTORY_MAX_BYTES,
    channels: e.CHANNELS_FILE !== undefined ? readChannelsFile(resolve(cwd, e.CHANNELS_FILE)) : {},
    dataDir,
    demo: e.DEMO ?? !production,
    shutdownTimeout: e.SHUTDOWN_TIMEOUT,
    maxEventLoopDelay: e.MAX_EVENT_LOOP_DELAY,
    adminConsole: e.ADMIN_CONSOLE ?? !production,
    backendUrl: e.BACKEND_URL,
    backendEvents: e.BACKEND_EVENTS === undefined ? [...BACKEND_EVENTS] : backendEvents(list(e.BACKEND_EVENTS)),
    backendSecret: e.BACKEND_SECRET,
    backendTimeout: e.BACKEND_TIMEOUT,
    backendMaxInFlight: e.BACKEND_MAX_IN_FLIGHT
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v
  }
  checkBackend(config)
  checkRedis(config)
  if (Array.isArray(config.trustProxy)) checkTrustList(config.trustProxy, 'trustProxy')
  else if (typeof config.trustProxy !== 'boolean') throw new ConfigError(`trustProxy must be true, false or a list of proxy addresses, not ${String(config.trustProxy)}`)
  return config
}

/** REDIS_URL: one redis:// URL, or with REDIS_CLUSTER a comma list of seed nodes. */
function checkRedis (config: GatecastConfig): void {
  const url = config.redisUrl
  if (url === undefined) {
    if (config.redisCluster) throw new ConfigError('REDIS_CLUSTER=true needs REDIS_URL (the cluster\'s seed nodes: redis://host:port,redis://host:port,…)')
    return
  }
  const items = url.split(',').map(u => u.trim()).filter(u => u !== '')
  if (items.length > 1 && !config.redisCluster) throw new ConfigError('REDIS_URL lists several nodes: set REDIS_CLUSTER=true for a Redis Cluster (one Redis takes one URL)')
  for (const item of items) {
    let u: URL
    try {
      u = new URL(item)
    } catch {
      throw new ConfigError(`REDIS_URL: ${JSON.stringify(item.replace(/\/\/[^@/]*@/, '//…@'))} is not a URL`)
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new ConfigError(`REDIS_URL must be redis:// or rediss://, not ${u.protocol}`)
  }
}

function backendEvents (names: string[]): BackendEvent[] {
  for (const name of names) {
    if (!(BACKEND_EVENTS as readonly string[]).includes(name)) {
      throw new ConfigError(`BACKEND_EVENTS: unknown event ${JSON.stringify(name)} (known: ${BACKEND_EVENTS.join(', ')})`)
    }
  }
  return [...new Set(names)] as BackendEvent[]
}

/** The backend's settings, from env or code, checked together at boot. */
function checkBackend (config: GatecastConfig): void {
  const url = config.backendUrl
  if (url === undefined) return
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigError(`BACKEND_URL ${JSON.stringify(url)} is not a URL`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`BACKEND_URL must be http:// or https://, not ${parsed.protocol}`)
  if (parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') {
    throw new ConfigError('BACKEND_URL must be a base URL without credentials, query or fragment (events are POSTed to BACKEND_URL/<event>)')
  }
  backendEvents(config.backendEvents)
  if (config.production) {
    if (config.backendSecret === undefined) throw new ConfigError('BACKEND_URL is set without BACKEND_SECRET; production signs every backend call (generate one: openssl rand -base64 48)')
    const bytes = Buffer.byteLength(config.backendSecret, 'utf8')
    if (bytes < MIN_PRODUCTION_SECRET_BYTES) throw new ConfigError(`BACKEND_SECRET is ${bytes} bytes; production needs at least ${MIN_PRODUCTION_SECRET_BYTES} (generate one: openssl rand -base64 48)`)
  }
  if (!Number.isInteger(config.backendTimeout) || config.backendTimeout < 1) throw new ConfigError('backendTimeout must be a positive integer (ms)')
  if (!Number.isInteger(config.backendMaxInFlight) || config.backendMaxInFlight < 1) throw new ConfigError('backendMaxInFlight must be a positive integer')
}

// proxy-addr's (Fastify's) names for the reserved ranges
const TRUST_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function checkTrustList (entries: string[], name: string): void {
  if (entries.length === 0) throw new ConfigError(`${name} lists no proxy address (use false to trust none)`)
  for (const entry of entries) {
    if (TRUST_RANGES.has(entry)) continue
    const slash = entry.indexOf('/')
    const ip = slash === -1 ? entry : entry.slice(0, slash)
    const version = isIP(ip)
    const prefix = slash === -1 ? '' : entry.slice(slash + 1)
    const bits = version === 6 ? 128 : 32
    // a /0 is refused as Fastify refuses it: trusting every address is `true`
    if (version === 0 || (slash !== -1 && (!/^\d{1,3}$/.test(prefix) || Number(prefix) < 1 || Number(prefix) > bits))) {
      throw new ConfigError(`${name}: ${JSON.stringify(entry)} is not an IP address, a CIDR (address/1-${bits}) or one of ${[...TRUST_RANGES].join(', ')}`)
    }
  }
}

/** TRUST_PROXY: `true`, `false`, or a comma list of proxy addresses, CIDRs and range names. */
export function parseTrustProxy (value: string): boolean | string[] {
  const v = value.trim()
  if (v.toLowerCase() === 'false') return false
  if (v.toLowerCase() === 'true') return true
  // refused rather than handed to Fastify, which would quietly trust nobody
  if (/^\d+$/.test(v)) {
    throw new ConfigError(`TRUST_PROXY=${v}: hop counts are not supported (a count cannot tell a proxy from a client that forges X-Forwarded-For); list the proxies' addresses instead, e.g. TRUST_PROXY=10.0.0.0/8 or TRUST_PROXY=uniquelocal`)
  }
  const entries = list(v)
  checkTrustList(entries, 'TRUST_PROXY')
  return entries
}

export const MIN_PRODUCTION_SECRET_BYTES = 32

/**
 * The HMAC secret: configured, or in development generated once into
 * data/jwt-secret so the CLI's `token` and the server agree.
 */
export function resolveJwtSecret (config: GatecastConfig, warn: (msg: string) => void): string | undefined {
  if (!config.jwtAlgorithm.startsWith('HS')) return config.jwtSecret
  const secret = config.jwtSecret
  if (secret !== undefined) {
    const bytes = Buffer.byteLength(secret, 'utf8')
    if (bytes < MIN_PRODUCTION_SECRET_BYTES) {
      if (config.production) {
        throw new ConfigError(`JWT_SECRET is ${bytes} bytes; production needs at least ${MIN_PRODUCTION_SECRET_BYTES} (generate one: openssl rand -base64 48)`)
      }
      warn(`JWT_SECRET is only ${bytes} bytes; production requires at least ${MIN_PRODUCTION_SECRET_BYTES}`)
    }
    return secret
  }
  if (config.production) {
    throw new ConfigError('JWT_SECRET is not set; production needs one of at least 32 bytes (generate one: openssl rand -base64 48)')
  }
  const file = resolve(config.dataDir, 'jwt-secret')
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim()
    if (kept.length >= MIN_PRODUCTION_SECRET_BYTES) return kept
  }
  const generated = randomBytes(48).toString('base64url')
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, generated + '\n', { mode: 0o600 })
  chmodSync(file, 0o600)
  warn(`JWT_SECRET is not set: using a development secret generated into ${file}; set JWT_SECRET in production`)
  return generated
}

/**
 * The server API's key, checked as the JWT secret is: whoever guesses it
 * controls every socket, so production refuses one shorter than
 * MIN_PRODUCTION_SECRET_BYTES; development only warns.
 */
export function checkApiKey (config: GatecastConfig, warn: (msg: string) => void): void {
  if (config.apiKey === undefined) return
  const bytes = Buffer.byteLength(config.apiKey, 'utf8')
  if (bytes >= MIN_PRODUCTION_SECRET_BYTES) return
  if (config.production) {
    throw new ConfigError(`API_KEY is ${bytes} bytes; production needs at least ${MIN_PRODUCTION_SECRET_BYTES} (generate one: openssl rand -base64 48)`)
  }
  warn(`API_KEY is only ${bytes} bytes; production requires at least ${MIN_PRODUCTION_SECRET_BYTES}`)
}

export function isWorldReadable (file: string): boolean {
  return (statSync(file).mode & 0o004) !== 0
}
