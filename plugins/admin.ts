// The admin console's side of a node (ADMIN_CONSOLE): this node reports a
// snapshot of itself to the cluster once a second, counts messages per
// channel, and answers the consoles of other nodes; the `adminConsole`
// decorator builds what the console shows (routes/admin). Off, none of it
// runs and nothing is counted.
import fp from 'fastify-plugin'
import { AdminConsole } from '../src/core/admin-console.ts'
import { NodeSampler } from '../src/core/node-stats.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when ADMIN_CONSOLE is off */
    adminConsole: AdminConsole | null
  }
}

export default fp(async (app) => {
  if (!app.config.adminConsole) {
    app.decorate('adminConsole', null)
    return
  }
  const sampler = new NodeSampler({ hub: app.gatecast.hub, stats: app.metrics.stats, nodes: app.engine.nodes, log: app.log })
  await sampler.start()
  app.decorate('adminConsole', new AdminConsole({ gatecast: app.gatecast, nodes: app.engine.nodes, sampler }))
  // before the engine goes (its onClose): a report after the node left the registry would outlive it
  app.addHook('preClose', async () => { await sampler.stop() })
}, { name: 'gatecast-admin', dependencies: ['gatecast-config', 'gatecast-engine', 'gatecast-core', 'gatecast-metrics'], fastify: '5.x' })
