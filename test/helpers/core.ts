// The core without a port: a Gatecast on the memory engine with real keys and
// real tokens, and a fake transport that records what the core writes.
import { createSigner } from 'fast-jwt'
import { readConfig, type ConfigOverrides, type GatecastConfig } from '../../src/config/config.ts'
import type { Logger } from '../../src/config/logger.ts'
import { AuthService } from '../../src/auth/service.ts'
import { createTokenKeys } from '../../src/auth/keys.ts'
import { createMemoryEngine, type Engine } from '../../src/engine/index.ts'
import { Gatecast } from '../../src/core/gateway.ts'
import { Stats } from '../../src/core/stats.ts'
import type { Transport, TransportHandler } from '../../src/core/transport.ts'
import type { SessionHost } from '../../src/core/session.ts'

export const CORE_SECRET = 'core-test-secret-that-is-long-enough-0123456789'

/** Records every frame written, as parsed JSON; `buffered` is what it reports as waiting. */
export class FakeTransport implements Transport {
  handler: TransportHandler | null = null
  readonly written: Buffer[] = []
  buffered = 0
  /** what backlog() reports; default: `buffered` (nothing was corked) */
  backlogBytes: number | null = null
  closedWith: { code: number, reason: string } | null = null
  terminated = false
  pings = 0

  bind (handler: TransportHandler): void { this.handler = handler }
  write (framed: Buffer): number {
    this.written.push(framed)
    return this.buffered
  }

  backlog (): number { return this.backlogBytes ?? this.buffered }
  ping (): void { this.pings++ }
  close (code: number, reason: string): void { this.closedWith ??= { code, reason } }
  terminate (): void { this.terminated = true }

  /** The frames written so far, parsed (the 2/4/10-byte WebSocket header stripped). */
  frames (): Array<Record<string, unknown>> {
    return this.written.map(b => {
      const len = b[1] & 0x7f
      return JSON.parse(b.subarray(len < 126 ? 2 : len === 126 ? 4 : 10).toString()) as Record<string, unknown>
    })
  }

  types (): unknown[] { return this.frames().map(f => f.type) }

  /** A text frame from the client. */
  receive (frame: unknown): void {
    this.handler?.onMessage(Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame)), false)
  }

  /** The socket goes away (what ws reports after the close handshake or a drop). */
  gone (code: number): void {
    this.handler?.onClose(code)
  }
}

/** A SessionHost for sessions made by hand: nothing behind it. */
export function fakeHost (log: Logger, stats: Stats): SessionHost {
  const unused = async (): Promise<never> => { throw new Error('unused') }
  return {
    log,
    stats,
    messageRate: 10,
    sendBuffer: 1 << 20,
    publish: async () => 'x',
    verify: unused,
    mayJoin: () => true,
    subscribe: async () => {},
    unsubscribe: async () => {},
    drop: () => {},
    closed: () => {}
  }
}

export interface LogLine { level: string, obj: unknown, msg?: string }

export function captureLogger (lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at = (level: string) => (obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, obj: null, msg: obj } : { level, obj, msg })
  }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

export interface CoreNode {
  gatecast: Gatecast
  engine: Engine
  auth: AuthService
  stats: Stats
  config: GatecastConfig
  log: Logger & { lines: LogLine[] }
  /** an access token signed with the node's secret (HS256) */
  token: (claims?: Record<string, unknown>, expiresInSeconds?: number) => string
  /** admits and attaches a fake socket; resolves when `ready` is out */
  connect: (channel: string | null, claims?: Record<string, unknown>, since?: string) => Promise<FakeTransport>
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function coreNode (t: Teardown, overrides: ConfigOverrides = {}): Promise<CoreNode> {
  const config = readConfig({ jwtSecret: CORE_SECRET, usersFile: undefined, ...overrides }, {}, '/nonexistent')
  const engine = createMemoryEngine()
  const auth = new AuthService(createTokenKeys(config, CORE_SECRET), engine, config, { verifyCredentials: () => null })
  const stats = new Stats()
  const log = captureLogger()
  const gatecast = new Gatecast(engine, auth, config, log, stats)
  await gatecast.start()
  t.teardown(async () => {
    await gatecast.shutdown(50)
    await engine.close()
  })
  const sign = createSigner({ key: CORE_SECRET, algorithm: 'HS256' })
  const token = (claims: Record<string, unknown> = {}, expiresInSeconds = 600): string =>
    sign({ sub: 'alice', jti: `jti-${Math.random().toString(36).slice(2)}`, exp: Math.floor(Date.now() / 1000) + expiresInSeconds, ...claims })
  const connect = async (channel: string | null, claims: Record<string, unknown> = {}, since?: string): Promise<FakeTransport> => {
    const admission = await gatecast.admit({ channel, since, tokens: { query: { token: token(claims) } }, remoteAddress: '127.0.0.1' })
    const transport = new FakeTransport()
    await gatecast.attach(transport, admission)
    return transport
  }
  return { gatecast, engine, auth, stats, config, log, token, connect }
}
