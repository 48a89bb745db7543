// examples/node-backend.js end to end: run with node as its README line says, a
// real Gatecast calls it on socket events and it calls that Gatecast back
// through the server API (see backend-scenario.ts for what is checked).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { backendScenario, spawnUntil, type StartBackend } from '../helpers/backend-scenario.ts'

const SCRIPT = fileURLToPath(new URL('../../examples/node-backend.js', import.meta.url))

const startNode: StartBackend = async (port, env) => {
  const { child, output, stop } = await spawnUntil(process.execPath, [SCRIPT], { ...env, PORT: String(port) }, /listening on http:\/\/127\.0\.0\.1:\d+/)
  return { url: `http://127.0.0.1:${port}`, child, output, stop }
}

function clean (t: Test, output: string): void {
  t.notMatch(output, /Error|gatecast:/, 'the backend logged no error')
}

backendScenario(t, startNode, clean)

t.test('without BACKEND_SECRET it refuses to start', async t => {
  const run = spawnSync(process.execPath, [SCRIPT], { env: { PATH: process.env.PATH ?? '', PORT: '0' }, encoding: 'utf8', timeout: 10_000 })
  t.equal(run.status, 1, 'exit code 1')
  t.match(run.stderr, /BACKEND_SECRET is not set/)
})
