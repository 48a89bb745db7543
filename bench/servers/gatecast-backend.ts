// Gatecast with an application backend (BACKEND_URL) that answers at once:
// the cost of asking it on every connect and every client publish, against
// the `gatecast` server of the same run. The backend runs in a process of its
// own (noop-backend.ts), so the CPU measured is Gatecast's alone.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { listeningGatecast } from './gatecast-app.ts'
import { portOf, runServer } from './harness.ts'

runServer(async (opts) => {
  const child = fork(fileURLToPath(new URL('./noop-backend.js', import.meta.url)), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { PATH: process.env.PATH ?? '' } })
  process.on('exit', () => { child.kill() })
  const backendPort = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', code => reject(new Error(`the no-op backend exited (${code ?? 'signal'})`)))
  })
  const app = await listeningGatecast(opts, {
    backendUrl: `http://127.0.0.1:${backendPort}`,
    backendSecret: opts.secret,
    backendEvents: ['connect', 'publish']
  })
  return { port: portOf(app.server.address()) }
})
