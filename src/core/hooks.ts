// Business logic's way in (GatewayWorker's Events class): hooks that plugins
// register on the `gatecast` decorator, run at connect, subscribe, publish and close.
import type { Logger } from '../config/logger.ts'
import type { Identity } from '../auth/claims.ts'

export interface ConnectContext {
  connectionId: string
  userId: string
  /** the path channel; null on `/ws` and `/` */
  channel: string | null
  identity: Identity
  remoteAddress: string
}
/** Runs before the upgrade; throw a GatecastError (e.g. 403) to refuse it. */
export type OnConnectHook = (ctx: ConnectContext) => void | Promise<void>

export interface SubscribeContext {
  connectionId: string
  userId: string
  channel: string
  identity: Identity
}
/**
 * Runs for a client's `subscribe` (and the path channel of an upgrade, after
 * onConnect) once the built-in checks passed; throw a GatecastError to refuse
 * it (its code, if a frame error code, goes to the client; 403 is `forbidden`).
 * Subscriptions made by the server API do not run it.
 */
export type OnSubscribeHook = (ctx: SubscribeContext) => void | Promise<void>

export interface PublishContext {
  channel: string
  data: unknown
  /** null for the server API */
  userId: string | null
  connectionId: string | null
}
/** Runs before fan-out; return `{ data }` to replace the payload, throw a GatecastError to refuse. */
export type OnPublishHook = (ctx: PublishContext) => void | { data: unknown } | Promise<void | { data: unknown }>

export interface CloseContext {
  connectionId: string
  userId: string
  /** the path channel; null on `/ws` and `/` */
  channel: string | null
  /** every channel the socket was subscribed to when it closed */
  channels: string[]
  code: number
  durationMs: number
}
export type OnCloseHook = (ctx: CloseContext) => void | Promise<void>

export class Hooks {
  readonly connect: OnConnectHook[] = []
  readonly subscribe: OnSubscribeHook[] = []
  readonly publish: OnPublishHook[] = []
  readonly close: OnCloseHook[] = []

  /** In registration order; the first that throws refuses the upgrade. */
  async runConnect (ctx: ConnectContext): Promise<void> {
    for (const hook of this.connect) await hook(ctx)
  }

  /** In registration order; the first that throws refuses the subscription. */
  async runSubscribe (ctx: SubscribeContext): Promise<void> {
    for (const hook of this.subscribe) await hook(ctx)
  }

  /** In registration order, each seeing the data the one before returned; resolves to the final data. */
  async runPublish (ctx: PublishContext): Promise<unknown> {
    for (const hook of this.publish) {
      const out = await hook(ctx)
      if (out !== undefined && out !== null && typeof out === 'object' && 'data' in out) ctx.data = out.data
    }
    return ctx.data
  }

  /** Nothing waits on close hooks; a failing one is logged. */
  runClose (ctx: CloseContext, log: Logger): void {
    for (const hook of this.close) {
      // each hook its own copy: one that changes it must not change what the next sees
      Promise.resolve().then(() => hook({ ...ctx, channels: [...ctx.channels] }))
        .catch((err: unknown) => log.error({ err }, 'onClose hook failed'))
    }
  }
}
