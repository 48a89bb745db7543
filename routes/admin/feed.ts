// The console's live feed: server-sent events on a response the page reads
// with fetch() (EventSource cannot send the Authorization or X-API-Key
// header). A `snapshot` event at most once a second, and less often while
// building one is slow; a `series` event first, with the last minutes for
// the charts. Ends when the client goes, when the token it opened with
// expires or is revoked (the page then refreshes and reopens), or when the
// node closes.
import type { ServerResponse } from 'node:http'
import type { AdminConsole } from '../../src/core/admin-console.ts'

export const FEED_INTERVAL_MS = 1000
// the longest setTimeout
const MAX_TIMER_MS = 2 ** 31 - 1

export interface FeedOptions {
  source: AdminConsole
  res: ServerResponse
  focus: { channel?: string, user?: string }
  /** ms since the epoch when the credentials expire; null: never (the API key) */
  expiresAt: number | null
  /** a failed snapshot as the client sees it (logged by the caller) */
  problem: (err: unknown) => { statusCode: number, code: string, message: string }
  /** whether the token the feed was opened with was revoked since (logout); absent: the API key */
  revoked?: () => Promise<boolean>
}

// how often an open feed asks whether its token was revoked
const REVOCATION_CHECK_MS = 5000

export class Feed {
  readonly #o: FeedOptions
  #closed = false
  #wake: (() => void) | null = null
  #expiry: NodeJS.Timeout | null = null

  constructor (o: FeedOptions) {
    this.#o = o
  }

  get closed (): boolean {
    return this.#closed
  }

  /** Writes the headers and sends until the feed ends; resolves then. */
  async run (): Promise<void> {
    const { res } = this.#o
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // a buffering proxy (nginx) would hold the events back
      'x-accel-buffering': 'no'
    })
    res.on('close', () => this.end())
    // gone already (while the credentials were checked): its close event came before the listener
    if (res.destroyed) this.end()
    if (this.#o.expiresAt !== null) {
      this.#expiry = setTimeout(() => this.end(), Math.min(MAX_TIMER_MS, Math.max(0, this.#o.expiresAt - Date.now()))).unref()
    }
    let first = true
    let checked = Date.now()
    while (!this.#closed && !res.destroyed) {
      const started = Date.now()
      if (this.#o.revoked !== undefined && started - checked >= REVOCATION_CHECK_MS) {
        checked = started
        // a logout ends the console's view too, not only at the token's expiry
        if (await this.#o.revoked().catch(() => false)) break
      }
      // a reader that does not keep up skips seconds instead of piling them up here
      if (!res.writableNeedDrain) await this.#tick(first)
      first = false
      const took = Date.now() - started
      // at most once a second; a slow snapshot (a large cluster, a slow engine) spaces them out further
      await this.#sleep(Math.max(FEED_INTERVAL_MS - took, took))
    }
    this.end()
  }

  /** Ends the stream (the client left, the credentials expired, the node closes). */
  end (): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#expiry !== null) clearTimeout(this.#expiry)
    this.#wake?.()
    if (!this.#o.res.writableEnded) this.#o.res.end()
  }

  async #tick (first: boolean): Promise<void> {
    const { source, focus } = this.#o
    try {
      const [snapshot, points] = await Promise.all([source.snapshot(focus), first ? source.series() : null])
      if (points !== null) this.#send('series', { points })
      this.#send('snapshot', snapshot)
    } catch (err) {
      // the feed stays: the next second may do better (Redis back, the node answering again)
      this.#send('problem', this.#o.problem(err))
    }
  }

  #send (event: string, data: unknown): void {
    if (this.#closed) return
    // JSON has no raw line breaks: one data line per event
    this.#o.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  #sleep (ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve()
    return new Promise(resolve => {
      const timer = setTimeout(done, ms)
      function done (): void { clearTimeout(timer); resolve() }
      this.#wake = done
    })
  }
}
