// A real Gatecast on 127.0.0.1 with an ephemeral port, torn down with the test.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createSigner } from 'fast-jwt'
import type { FastifyInstance } from 'fastify'
import { build, type BuildOptions } from '../../server.ts'
import type { ConfigOverrides } from '../../src/config/config.ts'

export const SECRET = 'test-secret-that-is-long-enough-for-production-0123456789'

export interface TestApp {
  app: FastifyInstance
  base: string
  ws: string
  dir: string
  logs: string[]
  /** an access token signed like an external backend would (same secret, HS256) */
  token: (claims?: Record<string, unknown>, opts?: { expiresIn?: number, algorithm?: 'HS256' | 'HS384' | 'HS512', key?: string }) => string
}

interface Teardown { teardown: (fn: () => unknown) => void }

export async function startApp (t: Teardown, opts: Omit<BuildOptions, 'config'> & { config?: ConfigOverrides } = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'gatecast-test-'))
  const logs: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) { logs.push(chunk.toString()); cb() }
  })
  const app = await build({
    cwd: dir,
    env: {},
    logger: { level: 'debug', stream },
    ...opts,
    config: {
      port: 0,
      jwtSecret: SECRET,
      usersFile: join(dir, 'users.json'),
      ...opts.config
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    app,
    base: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    dir,
    logs,
    token (claims = {}, o = {}) {
      const sign = createSigner({ key: o.key ?? SECRET, algorithm: o.algorithm ?? 'HS256', expiresIn: (o.expiresIn ?? 600) * 1000 })
      return sign({ sub: 'alice', jti: `jti-${Math.random().toString(36).slice(2)}`, ...claims })
    }
  }
}

export async function api (base: string, method: string, path: string, opts: { body?: unknown, headers?: Record<string, string> } = {}): Promise<{ status: number, body: any, headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined
  })
  const text = await res.text()
  let body: unknown = text
  try { body = text === '' ? null : JSON.parse(text) } catch {}
  return { status: res.status, body, headers: res.headers }
}
