// Gatecast itself (gatecast-app.ts): the server the suite measures.
import { listeningGatecast } from './gatecast-app.ts'
import { portOf, runServer } from './harness.ts'

runServer(async (opts) => {
  const app = await listeningGatecast(opts)
  return { port: portOf(app.server.address()) }
})
