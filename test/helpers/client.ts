// A test WebSocket client (the real `ws` package) with a frame queue.
import WebSocket, { type ClientOptions } from 'ws'

export interface Frame {
  type: string
  [k: string]: any
}

export class Client {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  #waiters: Array<() => void> = []

  constructor (ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      for (const w of this.#waiters.splice(0)) w()
    })
    this.closed = new Promise(resolve => ws.on('close', (code, reason) => {
      for (const w of this.#waiters.splice(0)) w()
      resolve({ code, reason: reason.toString() })
    }))
  }

  send (frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Removes and returns the first frame that matches, waiting up to `ms`. */
  async next (match: (f: Frame) => boolean = () => true, ms = 3000): Promise<Frame> {
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.frames.findIndex(match)
      if (i !== -1) return this.frames.splice(i, 1)[0]
      const left = deadline - Date.now()
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) throw new Error(`no matching frame within ${ms} ms; have ${JSON.stringify(this.frames).slice(0, 500)}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async nextOfType (type: string, ms?: number): Promise<Frame> {
    return this.next(f => f.type === type, ms)
  }

  close (): void {
    this.ws.close()
  }
}

/** Opens a socket without waiting for any frame; resolves on `open`. */
export async function open (url: string, opts: ClientOptions & { protocols?: string[] } = {}): Promise<Client> {
  const ws = new WebSocket(url, opts.protocols ?? [], opts)
  const client = new Client(ws)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
  })
  return client
}

/** Opens a socket and resolves once `ready` arrived (kept in the queue). */
export async function connect (url: string, opts: ClientOptions & { protocols?: string[] } = {}): Promise<Client> {
  const client = await open(url, opts)
  const ready = await client.next(f => f.type === 'ready')
  client.frames.unshift(ready)
  return client
}

/** Expects the upgrade to be refused; returns the HTTP status and JSON body. */
export async function refused (url: string, opts: ClientOptions & { protocols?: string[] } = {}): Promise<{ status: number, body: any }> {
  const ws = new WebSocket(url, opts.protocols ?? [], opts)
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.terminate(); reject(new Error('upgrade was accepted')) })
    ws.once('error', () => {})
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
  })
}
