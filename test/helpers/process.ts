// Real child processes for tests: a Gatecast server node, a private redis-server.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Teardown { teardown: (fn: () => unknown) => void }

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

function waitForOutput (child: ChildProcess, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output: ${out.slice(-2000)}`)), ms)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const m = re.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stderr?.off('data', onData)
        resolve(m)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`exited with ${code} before ${re}; output: ${out.slice(-2000)}`)) })
  })
}

/** A Gatecast node from the built dist/, as `npm start` runs it. */
export async function spawnNode (t: Teardown, env: Record<string, string>): Promise<{ child: ChildProcess, base: string, ws: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'gatecast-node-'))
  const child = spawn(process.execPath, [join(ROOT, 'dist/server.js')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const m = await waitForOutput(child, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/, 30_000)
  child.stdout?.resume()
  child.stderr?.resume()
  return { child, base: `http://127.0.0.1:${m[1]}`, ws: `ws://127.0.0.1:${m[1]}` }
}

/** A private redis-server on its own port, to stop and start at will. */
export async function spawnRedis (t: Teardown, port?: number): Promise<{ port: number, url: string, stop: () => Promise<void>, start: () => Promise<void> }> {
  const p = port ?? await freePort()
  let child: ChildProcess | null = null
  const start = async () => {
    child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    await waitForOutput(child, /Ready to accept connections/, 10_000)
    child.stdout?.resume()
  }
  const stop = async () => {
    const c = child
    if (c === null || c.exitCode !== null) return
    await new Promise(resolve => { c.once('exit', resolve); c.kill('SIGKILL') })
    child = null
  }
  await start()
  t.teardown(stop)
  return { port: p, url: `redis://127.0.0.1:${p}`, stop, start }
}
