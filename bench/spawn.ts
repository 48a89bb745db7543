// Server child processes: started with fork() so they have an IPC channel
// (port, gc, stop), a clean environment and --expose-gc; every child is
// tracked so that any exit of the orchestrator kills it.
import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FromServer, ServerKind, ServerOptions, ToServer } from './common.ts'

const FILES: Record<ServerKind, string> = {
  gatecast: 'gatecast.js',
  ws: 'bare-ws.js',
  socketio: 'socketio.js',
  fastify: 'fastify-ws.js',
  wscork: 'bare-ws.js',
  direct: 'gatecast-direct.js',
  backend: 'gatecast-backend.js',
  'ws-redis': 'ws-redis.js'
}

const children = new Set<ChildProcess>()

/** Another child (a redis-server started for the run) that any exit of the orchestrator must kill. */
export function track (child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** SIGKILL every server still running (synchronous: safe in an 'exit' handler). */
export function killAll (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
}

export interface SpawnOptions {
  /** write a V8 CPU profile of this server into the directory */
  cpuProfDir?: string
  startTimeoutMs?: number
}

export class ServerNode {
  readonly kind: ServerKind
  readonly child: ChildProcess
  readonly pid: number
  port = 0

  constructor (kind: ServerKind, child: ChildProcess) {
    this.kind = kind
    this.child = child
    if (child.pid === undefined) throw new Error(`${kind} server did not start`)
    this.pid = child.pid
  }

  #request<T extends FromServer['type']> (msg: ToServer, answer: T, timeoutMs: number): Promise<Extract<FromServer, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.kind} server did not answer ${msg.type}`)) }, timeoutMs)
      const onMessage = (m: FromServer) => { if (m.type === answer) { cleanup(); resolve(m as Extract<FromServer, { type: T }>) } }
      const onExit = () => { cleanup(); reject(new Error(`${this.kind} server exited`)) }
      const cleanup = () => {
        clearTimeout(timer)
        this.child.off('message', onMessage)
        this.child.off('exit', onExit)
      }
      this.child.on('message', onMessage)
      this.child.once('exit', onExit)
      this.child.send(msg)
    })
  }

  /** Two full collections in the server (it runs with --expose-gc). */
  async gc (): Promise<void> {
    await this.#request({ type: 'gc' }, 'gc-done', 10_000)
  }

  /** Heap in use and RSS of the server after two full collections, bytes. */
  async mem (): Promise<{ heapUsed: number, rss: number }> {
    const m = await this.#request({ type: 'mem' }, 'mem', 10_000)
    return { heapUsed: m.heapUsed, rss: m.rss }
  }

  /** Starts V8's sampling profiler in the server (one window's profile). */
  async profileStart (intervalUs: number): Promise<void> {
    await this.#request({ type: 'profile-start', intervalUs }, 'profile-started', 10_000)
  }

  /** Stops it and has the server write the profile (a .cpuprofile, as Chrome DevTools reads it) to `file`. */
  async profileStop (file: string): Promise<void> {
    await this.#request({ type: 'profile-stop', file }, 'profile-done', 60_000)
  }

  /** Asks the server to exit (a --cpu-prof profile is written then), SIGKILL after 10 s. */
  async stop (): Promise<void> {
    const child = this.child
    if (child.exitCode !== null || child.signalCode !== null) {
      children.delete(child)
      return
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      child.once('exit', () => { clearTimeout(timer); resolve() })
      if (child.connected) child.send({ type: 'stop' } satisfies ToServer)
      else child.kill('SIGKILL')
    })
    children.delete(child)
  }
}

export async function spawnServer (kind: ServerKind, opts: ServerOptions, o: SpawnOptions = {}): Promise<ServerNode> {
  const file = fileURLToPath(new URL(`./servers/${FILES[kind]}`, import.meta.url))
  const execArgv = ['--expose-gc']
  if (o.cpuProfDir !== undefined) {
    // one folder per server kind; Node names each file CPU.<date>.<time>.<pid>…
    const dir = `${o.cpuProfDir}/${kind}`
    mkdirSync(dir, { recursive: true })
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`)
  }
  const child = fork(file, [], {
    execArgv,
    // nothing of the orchestrator's environment (NODE_OPTIONS, a coverage hook…) reaches a server
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BENCH_SERVER_OPTIONS: JSON.stringify(opts), BENCH_SERVER_KIND: kind },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  children.add(child)
  const node = new ServerNode(kind, child)
  try {
    node.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} server did not listen within ${o.startTimeoutMs ?? 30_000} ms`)), o.startTimeoutMs ?? 30_000)
      child.on('message', (m: FromServer) => {
        if (m.type === 'listening') { clearTimeout(timer); resolve(m.port) }
      })
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${kind} server exited (${signal ?? code}) before listening`)) })
      child.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
  } catch (err) {
    child.kill('SIGKILL')
    children.delete(child)
    throw err
  }
  return node
}
