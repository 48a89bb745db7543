// Real child processes: the `gatecast` bin and the built server (dist/), with
// a clean environment so nothing from the test runner leaks into their config.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type tap from 'tap'

export const BIN = fileURLToPath(new URL('../../bin/gatecast.js', import.meta.url))
export const SERVER = fileURLToPath(new URL('../../dist/server.js', import.meta.url))

/** Only PATH and HOME from the runner; no JWT_SECRET, NODE_ENV, NODE_OPTIONS, … */
export function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME
  return { ...env, ...extra }
}

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

interface Teardown { teardown: (fn: () => unknown) => void }

function collect (child: ChildProcess): { out: () => string, err: () => string } {
  let out = ''
  let err = ''
  child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { err += c.toString() })
  return { out: () => out, err: () => err }
}

/** Runs `node <script> ...args` to completion; `input` is written to stdin, which is then closed. */
export async function run (script: string, args: string[], opts: { cwd: string, env?: Record<string, string>, input?: string, timeoutMs?: number }): Promise<RunResult> {
  const child = spawn(process.execPath, [script, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] })
  const io = collect(child)
  child.stdin?.on('error', () => {})
  if (opts.input !== undefined) child.stdin?.write(opts.input)
  child.stdin?.end()
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  return { code, signal, stdout: io.out(), stderr: io.err() }
}

/** `gatecast ...args` */
export async function gatecast (args: string[], opts: { cwd: string, env?: Record<string, string>, input?: string }): Promise<RunResult> {
  return run(BIN, args, opts)
}

export interface RunningServer {
  /** http://127.0.0.1:PORT, from the "Server listening at" log line */
  url: string
  ws: string
  stdout: () => string
  stderr: () => string
  /** sends `signal` and resolves with how the process ended */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Starts `node <script> ...args` and resolves once it logged "Server listening at …".
 * Rejects (with its output) when it exits or stays silent for `timeoutMs` first.
 */
export async function startProcess (t: Teardown, script: string, args: string[], opts: { cwd: string, env?: Record<string, string>, timeoutMs?: number }): Promise<RunningServer> {
  const child = spawn(process.execPath, [script, ...args], { cwd: opts.cwd, env: cleanEnv({ PORT: '0', ...opts.env }), stdio: ['ignore', 'pipe', 'pipe'] })
  const io = collect(child)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Server listening" within ${opts.timeoutMs ?? 30_000} ms; stdout=${io.out()} stderr=${io.err()}`)), opts.timeoutMs ?? 30_000)
    const check = (): void => {
      const m = /Server listening at (http:\/\/[^\s"]+)/.exec(io.out())
      if (m !== null) {
        clearTimeout(timer)
        child.stdout?.off('data', check)
        resolve(m[1])
      }
    }
    child.stdout?.on('data', check)
    exited.then(r => {
      clearTimeout(timer)
      reject(new Error(`server exited (${String(r.code)}/${String(r.signal)}) before listening; stdout=${io.out()} stderr=${io.err()}`))
    }, () => {})
  })
  return {
    url,
    ws: url.replace(/^http/, 'ws'),
    stdout: io.out,
    stderr: io.err,
    async stop (signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const r = await exited
      clearTimeout(timer)
      return r
    }
  }
}

/** The payload of a JWT, without verifying it. */
export function jwtPayload (token: string): Record<string, any> {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error(`not a JWT: ${token}`)
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, any>
}

/** The JWT header, without verifying it. */
export function jwtHeader (token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as Record<string, any>
}

type Asserts = Pick<typeof tap, 'equal' | 'match' | 'notMatch'>

/** A user-facing failure: exit 1, exactly one `gatecast: …` line on stderr matching `re`, no stack trace. */
export function oneLineError (t: Asserts, r: { code: number | null, stderr: string }, re: RegExp, what: string): void {
  t.equal(r.code, 1, `${what}: exit code 1`)
  const lines = r.stderr.split('\n').filter(l => l !== '')
  t.equal(lines.length, 1, `${what}: one line (${JSON.stringify(r.stderr.slice(0, 300))})`)
  t.match(lines[0] ?? '', /^gatecast: /, `${what}: "gatecast: …"`)
  t.match(lines[0] ?? '', re, `${what}: says what is wrong`)
  t.notMatch(r.stderr, /\n\s+at |Error:/, `${what}: no stack trace`)
}
