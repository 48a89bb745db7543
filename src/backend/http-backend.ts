// The application backend over HTTP (GatewayWorker's Events, in any language):
// each socket event is POSTed as signed JSON to BACKEND_URL/<event>, over a
// kept-alive undici pool. What it guards fails closed: a refusal keeps its
// status, and a timeout, a refused connection, an odd status or a malformed
// answer is `unavailable`. Close events are told, not asked: retried, then logged.
import { createHmac } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Pool } from 'undici'
import type { BackendEvent } from '../config/config.ts'
import type { Logger } from '../config/logger.ts'
import type { BackendHooks, CloseContext, ConnectContext, ConnectResult, PublishContext, PublishVerdict, SubscribeContext } from '../core/hooks.ts'
import { GatecastError, isGatecastError } from '../protocol/errors.ts'
import { ChannelNameSchema, withinDepth } from '../protocol/frames.ts'

export interface HttpBackendOptions {
  /** BACKEND_URL: events go to `<url>/<event>` */
  url: string
  events: readonly BackendEvent[]
  /** HMAC-SHA256 key of X-Gatecast-Signature; undefined: calls go unsigned (development only) */
  secret?: string
  timeoutMs: number
  /** calls open at once; past it a call fails at once (a slow backend must not grow a queue) */
  maxInFlight: number
  log: Logger
  /**
   * Each call's outcome: the status class (`2xx`…`5xx`), or `timeout`, `error`
   * (no answer), `busy` (not sent: too many in flight); and how long it took
   * (null when it was not sent).
   */
  observe?: (event: BackendEvent, result: string, seconds: number | null) => void
}

// an answer is a verdict and maybe some channels and data, never a download
const MAX_ANSWER_BYTES = 1024 * 1024
// a close event is tried this many more times, 0.5 s, 1 s, 2 s apart
const CLOSE_RETRIES = 3
const CLOSE_BACKOFF_MS = 500
// the close code of a connection that ended without a close frame (here: never opened)
const NEVER_OPENED = 1006

// lenient on fields the contract does not name: a backend may say more than Gatecast reads
const ConnectAnswer = TypeCompiler.Compile(Type.Object({
  channels: Type.Optional(Type.Array(ChannelNameSchema)),
  data: Type.Optional(Type.Unknown())
}))
const PublishAnswer = TypeCompiler.Compile(Type.Object({
  data: Type.Optional(Type.Unknown()),
  skip: Type.Optional(Type.Boolean())
}))

interface Deadline {
  at: number
  reject: (err: Error) => void
  done: boolean
}

interface Answer {
  status: number
  /** the parsed JSON; undefined for an empty body */
  body: unknown
}

const ok = (status: number): boolean => status >= 200 && status < 300
// an empty body, `null`, or `[]`: PHP's json_encode([]) of an empty answer
const nothing = (body: unknown): boolean => body === undefined || body === null || (Array.isArray(body) && body.length === 0)

export class HttpBackend implements BackendHooks {
  readonly connect?: (ctx: ConnectContext) => Promise<ConnectResult>
  readonly subscribe?: (ctx: SubscribeContext) => Promise<void>
  readonly publish?: (ctx: PublishContext & { connectionId: string, userId: string }) => Promise<PublishVerdict>
  readonly close?: (ctx: CloseContext) => void
  readonly #o: HttpBackendOptions
  readonly #pool: Pool
  // the URL's path with a trailing slash, so `/gatecast` and `/gatecast/` both give `/gatecast/connect`
  readonly #path: string
  #inFlight = 0
  readonly #calls = new Set<Promise<unknown>>()
  readonly #retries = new Set<NodeJS.Timeout>()
  #stopped = false
  // every call's deadline, oldest first, and the timer that enforces them
  readonly #deadlines: Deadline[] = []
  #sweeper: NodeJS.Timeout | null = null

  constructor (o: HttpBackendOptions) {
    this.#o = o
    const url = new URL(o.url)
    this.#path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`
    this.#pool = new Pool(url.origin, {
      // a socket for every call that may be open: none waits in undici's queue, where its
      // timeouts would not run yet and a call given up on could still reach the backend later
      connections: o.maxInFlight,
      connectTimeout: o.timeoutMs
    })
    const on = new Set(o.events)
    // only the events the backend takes exist: the hooks skip the rest without a call
    if (on.has('connect')) this.connect = ctx => this.#connect(ctx)
    if (on.has('subscribe')) this.subscribe = ctx => this.#subscribe(ctx)
    if (on.has('publish')) this.publish = ctx => this.#publish(ctx)
    if (on.has('close')) this.close = ctx => { this.#close({ connectionId: ctx.connectionId, userId: ctx.userId, channels: ctx.channels, code: ctx.code }, 0) }
  }

  /** calls open right now */
  get inFlight (): number { return this.#inFlight }

  async #connect (ctx: ConnectContext): Promise<ConnectResult> {
    // what #call decides synchronously, before any await: whether this call goes out at all
    const sent = !this.#stopped && this.#inFlight < this.#o.maxInFlight
    try {
      return await this.#connectOnce(ctx)
    } catch (err) {
      // no answer, or one we could not take: the backend may have counted the connect, so it
      // hears the close too (a refusal of its own it knows about; a call never sent, nothing)
      if (sent && this.close !== undefined && !(isGatecastError(err) && err.code === 'backend_refused')) {
        this.close({ connectionId: ctx.connectionId, userId: ctx.userId, channel: ctx.channel, channels: [], code: NEVER_OPENED, durationMs: 0 })
      }
      throw err
    }
  }

  async #connectOnce (ctx: ConnectContext): Promise<ConnectResult> {
    const a = await this.#ask('connect', {
      connectionId: ctx.connectionId,
      userId: ctx.userId,
      claims: ctx.identity.claims ?? {},
      channel: ctx.channel,
      remoteAddress: ctx.remoteAddress
    })
    if (ok(a.status)) {
      if (nothing(a.body)) return {}
      if (!ConnectAnswer.Check(a.body)) throw this.#malformed('connect', ConnectAnswer.Errors(a.body).First()?.path)
      if (!withinDepth(a.body.data)) throw this.#malformed('connect', '/data')
      return { channels: a.body.channels, data: a.body.data }
    }
    if (a.status === 401 || a.status === 403 || a.status === 429) {
      throw new GatecastError(a.status, 'backend_refused', reasonOf(a.body) ?? 'connection refused by the application backend')
    }
    throw this.#refusedOddly('connect', a.status)
  }

  async #subscribe (ctx: SubscribeContext): Promise<void> {
    const a = await this.#ask('subscribe', { connectionId: ctx.connectionId, userId: ctx.userId, channel: ctx.channel })
    if (ok(a.status)) return
    if (a.status === 403) throw GatecastError.forbidden(reasonOf(a.body) ?? 'subscription refused by the application backend')
    throw this.#refusedOddly('subscribe', a.status)
  }

  async #publish (ctx: PublishContext & { connectionId: string, userId: string }): Promise<PublishVerdict> {
    const a = await this.#ask('publish', { connectionId: ctx.connectionId, userId: ctx.userId, channel: ctx.channel, data: ctx.data })
    if (ok(a.status)) {
      if (nothing(a.body)) return undefined
      if (!PublishAnswer.Check(a.body)) throw this.#malformed('publish', PublishAnswer.Errors(a.body).First()?.path)
      if (a.body.skip === true) return { skip: true }
      if (!withinDepth(a.body.data)) throw this.#malformed('publish', '/data')
      return 'data' in a.body ? { data: a.body.data } : undefined
    }
    if (a.status === 403) throw GatecastError.forbidden(reasonOf(a.body) ?? 'message refused by the application backend')
    if (a.status === 422) throw GatecastError.badRequest(reasonOf(a.body) ?? 'message rejected by the application backend')
    throw this.#refusedOddly('publish', a.status)
  }

  /** Tells the backend a socket closed; a failed try (no answer, or 5xx) is tried again later. */
  #close (body: Record<string, unknown>, attempt: number): void {
    const sent = this.#call('close', body).then((a) => {
      if (a.status >= 500) throw new Error(`status ${a.status}`)
      // told, but not taken (a wrong secret, a wrong URL): trying again would not help, saying so does
      if (!ok(a.status)) this.#o.log.warn({ event: 'close', connectionId: body.connectionId, status: a.status }, 'backend refused a close event')
    }).catch((err: unknown) => {
      if (attempt >= CLOSE_RETRIES || this.#stopped) {
        this.#o.log.warn({ event: 'close', connectionId: body.connectionId, attempts: attempt + 1, err: describe(err) }, 'backend close event dropped')
        return
      }
      const timer = setTimeout(() => {
        this.#retries.delete(timer)
        this.#close(body, attempt + 1)
      }, CLOSE_BACKOFF_MS * 2 ** attempt)
      this.#retries.add(timer)
    })
    this.#track(sent)
  }

  /** A call whose failure refuses what it guards: every failure is `unavailable`. */
  async #ask (event: BackendEvent, body: Record<string, unknown>): Promise<Answer> {
    try {
      return await this.#call(event, body)
    } catch (err) {
      this.#o.log.warn({ event, err: describe(err) }, 'backend call failed')
      throw GatecastError.unavailable('application backend unavailable')
    }
  }

  #call (event: BackendEvent, body: Record<string, unknown>): Promise<Answer> {
    if (this.#stopped) return Promise.reject(new Error('backend client stopped'))
    if (this.#inFlight >= this.#o.maxInFlight) {
      this.#o.observe?.(event, 'busy', null)
      return Promise.reject(new Error(`${this.#o.maxInFlight} calls already in flight`))
    }
    this.#inFlight++
    const started = performance.now()
    // the slot is held until the request is really over (undici's own timeouts end it),
    // even when the caller was answered `timeout` before
    const sent = this.#send(event, JSON.stringify(body)).finally(() => { this.#inFlight-- })
    const observe = this.#o.observe
    const call = this.#inTime(sent, started).then((a) => {
      observe?.(event, `${Math.floor(a.status / 100)}xx`, (performance.now() - started) / 1000)
      return a
    }, (err: unknown) => {
      observe?.(event, isTimeout(err) ? 'timeout' : 'error', (performance.now() - started) / 1000)
      throw err
    })
    return this.#track(call)
  }

  /**
   * `sent`, or a TimeoutError once BACKEND_TIMEOUT has passed since `started`,
   * whichever comes first. The deadlines of all calls are in one queue, in
   * order (the timeout is the same for each), swept by one timer: an
   * AbortSignal per call cost a third of a call's CPU.
   */
  #inTime (sent: Promise<Answer>, started: number): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const entry: Deadline = { at: started + this.#o.timeoutMs, reject, done: false }
      this.#deadlines.push(entry)
      this.#sweeper ??= setInterval(() => { this.#sweep() }, Math.min(100, Math.max(10, this.#o.timeoutMs / 10))).unref()
      sent.then((a) => { entry.done = true; resolve(a) }, (err: unknown) => { entry.done = true; reject(err) })
    })
  }

  #sweep (): void {
    const q = this.#deadlines
    const now = performance.now()
    let i = 0
    for (; i < q.length; i++) {
      const d = q[i]
      if (d.done) continue
      if (d.at > now) break
      d.done = true
      const err = new Error(`no answer within ${this.#o.timeoutMs} ms`)
      err.name = 'TimeoutError'
      d.reject(err)
    }
    if (i > 0) q.splice(0, i)
    if (q.length === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper)
      this.#sweeper = null
    }
  }

  async #send (event: BackendEvent, json: string): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-gatecast-event': event }
    if (this.#o.secret !== undefined) headers['x-gatecast-signature'] = `sha256=${createHmac('sha256', this.#o.secret).update(json).digest('hex')}`
    const res = await this.#pool.request({
      path: this.#path + event,
      method: 'POST',
      headers,
      body: json,
      // what ends the request itself (and frees its slot); the caller's answer is bounded by #inTime()
      headersTimeout: this.#o.timeoutMs,
      bodyTimeout: this.#o.timeoutMs
    })
    const text = await readCapped(res.body)
    let parsed: unknown
    if (text.trim() !== '') {
      try {
        parsed = JSON.parse(text)
      } catch {
        // an error page in HTML says enough through its status; a 2xx must be JSON or empty
        if (ok(res.statusCode)) throw new Error('answer is not JSON')
      }
    }
    return { status: res.statusCode, body: parsed }
  }

  #malformed (event: BackendEvent, path: string | undefined): GatecastError {
    this.#o.log.warn({ event, field: path }, 'backend answer malformed')
    return GatecastError.unavailable('application backend answered something unexpected')
  }

  #refusedOddly (event: BackendEvent, status: number): GatecastError {
    this.#o.log.warn({ event, status }, 'backend answered with an unexpected status')
    return GatecastError.unavailable('application backend unavailable')
  }

  #track<T> (p: Promise<T>): Promise<T> {
    const settled = p.then(() => {}, () => {}).finally(() => this.#calls.delete(settled))
    this.#calls.add(settled)
    return p
  }

  /**
   * Shutdown: the calls in flight (close events of the sockets just closed
   * among them) may finish, each within its timeout; close events still waiting
   * for a retry are dropped and logged. Then the pool goes.
   */
  async stop (): Promise<void> {
    await Promise.allSettled([...this.#calls])
    this.#stopped = true
    if (this.#retries.size > 0) this.#o.log.warn({ event: 'close', dropped: this.#retries.size }, 'backend close events dropped at shutdown')
    for (const timer of this.#retries) clearTimeout(timer)
    this.#retries.clear()
    if (this.#sweeper !== null) clearInterval(this.#sweeper)
    this.#sweeper = null
    await this.#pool.close()
  }
}

async function readCapped (body: AsyncIterable<Buffer> & { destroy: (err?: Error) => unknown }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy()
      throw new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A refusal's reason, when the backend gave one as `{ "message": "…" }` (kept short: it goes to the client). */
function reasonOf (body: unknown): string | undefined {
  if (body === null || typeof body !== 'object' || !('message' in body)) return undefined
  const m = body.message
  return typeof m === 'string' && m !== '' ? m.slice(0, 200) : undefined
}

// ours (#inTime) or undici's own (headers or body too slow)
function isTimeout (err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'HeadersTimeoutError' || err.name === 'BodyTimeoutError')
}

// the error's kind and message only: never the request (its body holds claims, its headers the signature)
function describe (err: unknown): { name: string, message: string } {
  if (err instanceof Error) return { name: err.name, message: err.message }
  return { name: 'Error', message: String(err) }
}
