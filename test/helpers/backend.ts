// A real application backend on 127.0.0.1 for the backend-callback tests: it
// records every call (raw body and headers) and answers as the test says.
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface BackendCall {
  event: string
  path: string
  headers: IncomingHttpHeaders
  raw: string
  body: any
  at: number
}

/** What to answer: a status and a JSON body (or raw text), maybe late; 'hang' never answers, 'reset' drops the connection. */
export type Answer = { status?: number, body?: unknown, raw?: string, delayMs?: number } | 'hang' | 'reset'
export type Handler = (call: BackendCall) => Answer

export interface TestBackend {
  url: string
  calls: BackendCall[]
  /** the answer per event (default 200 with no body) */
  on: Partial<Record<string, Handler>>
  of: (event: string) => BackendCall[]
  /** answers held by 'hang' that are still open */
  readonly hanging: number
  close: () => Promise<void>
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function startBackend (t: Teardown, on: Partial<Record<string, Handler>> = {}, path = ''): Promise<TestBackend> {
  const calls: BackendCall[] = []
  const sockets = new Set<Socket>()
  let hanging = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      try { body = JSON.parse(raw) } catch { body = undefined }
      const event = (req.url ?? '').split('/').pop() ?? ''
      const call: BackendCall = { event, path: req.url ?? '', headers: req.headers, raw, body, at: Date.now() }
      calls.push(call)
      const handler: Handler = backend.on[event] ?? (() => ({}))
      const answer = handler(call)
      if (answer === 'hang') {
        hanging++
        res.on('close', () => { hanging-- })
        return
      }
      if (answer === 'reset') {
        req.socket.destroy()
        return
      }
      const send = (): void => {
        const text = answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body))
        res.writeHead(answer.status ?? 200, text === '' ? {} : { 'content-type': 'application/json' })
        res.end(text)
      }
      if (answer.delayMs === undefined) send()
      else setTimeout(send, answer.delayMs)
    })
  })
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
  const backend: TestBackend = {
    url: `http://127.0.0.1:${port}${path}`,
    calls,
    on,
    of: event => calls.filter(c => c.event === event),
    get hanging () { return hanging },
    close
  }
  t.teardown(() => server.listening ? close() : undefined)
  return backend
}
