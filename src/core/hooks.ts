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
/** What a connect hook (or the backend's `connect` answer) adds to the new socket. */
export interface ConnectResult {
  /** channels the socket is subscribed to server-side right after `ready` */
  channels?: string[]
  /** rides in `ready` as `data` (the last hook that gives one wins) */
  data?: unknown
}
/**
 * Runs before the upgrade; throw a GatecastError (e.g. 403) to refuse it, or
 * return channels to subscribe the socket to and data for its `ready`.
 */
export type OnConnectHook = (ctx: ConnectContext) => void | ConnectResult | Promise<void | ConnectResult>

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

/** The backend's verdict on a client publish: pass (maybe with new data), or drop it silently. */
export type PublishVerdict = { data: unknown } | { skip: true } | undefined

/**
 * The application backend (BACKEND_URL): the same four events as the hooks,
 * consulted after every in-process hook. Each method is there only for an
 * event the backend takes. Refusals and failures are GatecastErrors.
 */
export interface BackendHooks {
  connect?: (ctx: ConnectContext) => Promise<ConnectResult>
  subscribe?: (ctx: SubscribeContext) => Promise<void>
  /** client publishes only: the server API's are the backend's own */
  publish?: (ctx: PublishContext & { connectionId: string, userId: string }) => Promise<PublishVerdict>
  /** nothing waits on it; it retries by itself */
  close?: (ctx: CloseContext) => void
}

/** What runPublish resolves to for a publish the backend dropped. */
export const SKIPPED: unique symbol = Symbol('skipped')

export class Hooks {
  readonly connect: OnConnectHook[] = []
  readonly subscribe: OnSubscribeHook[] = []
  readonly publish: OnPublishHook[] = []
  readonly close: OnCloseHook[] = []
  #backend: BackendHooks = {}

  /** Asks the backend after the in-process hooks, from now on. */
  useBackend (b: BackendHooks): void { this.#backend = b }

  /** whether an upgrade has connect hooks (or a backend) to ask */
  get judgesConnect (): boolean {
    return this.connect.length > 0 || this.#backend.connect !== undefined
  }

  /** whether a client's subscribe (or an upgrade's path channel) has anyone to ask */
  get judgesSubscribe (): boolean {
    return this.subscribe.length > 0 || this.#backend.subscribe !== undefined
  }

  /** whether a publish takes the hooked (asynchronous) path; false keeps it in the caller's turn */
  judgesPublish (byClient: boolean): boolean {
    return this.publish.length > 0 || (byClient && this.#backend.publish !== undefined)
  }

  /**
   * In registration order, the backend last; the first that throws refuses the
   * upgrade. Channels add up; the last data given wins.
   */
  async runConnect (ctx: ConnectContext): Promise<ConnectResult> {
    let channels: string[] | undefined
    let data: unknown
    const take = (out: void | ConnectResult): void => {
      if (out === undefined || out === null) return
      if (out.channels !== undefined) channels = [...(channels ?? []), ...out.channels]
      if (out.data !== undefined) data = out.data
    }
    for (const hook of this.connect) take(await hook(ctx))
    if (this.#backend.connect !== undefined) take(await this.#backend.connect(ctx))
    return { channels, data }
  }

  /** In registration order, the backend last; the first that throws refuses the subscription. */
  async runSubscribe (ctx: SubscribeContext): Promise<void> {
    for (const hook of this.subscribe) await hook(ctx)
    if (this.#backend.subscribe !== undefined) await this.#backend.subscribe(ctx)
  }

  /**
   * In registration order, each seeing the data the one before returned, then
   * the backend for a client's publish; resolves to the final data, or SKIPPED.
   */
  async runPublish (ctx: PublishContext): Promise<unknown> {
    for (const hook of this.publish) {
      const out = await hook(ctx)
      if (out !== undefined && out !== null && typeof out === 'object' && 'data' in out) ctx.data = out.data
    }
    const backend = this.#backend.publish
    if (backend !== undefined && ctx.connectionId !== null && ctx.userId !== null) {
      const verdict = await backend({ ...ctx, connectionId: ctx.connectionId, userId: ctx.userId })
      if (verdict !== undefined) {
        if ('skip' in verdict) return SKIPPED
        ctx.data = verdict.data
      }
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
    this.#backend.close?.(ctx)
  }
}
