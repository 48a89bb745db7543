// Gatecast inside a host application: the host owns the Fastify instance, its
// own routes and its own user store; Gatecast is registered as a plugin and
// checks logins through the host's verifyCredentials(username, password).
//
//   npm run build                      (once: 'gatecast' resolves to dist/)
//   JWT_SECRET=$(openssl rand -base64 48) PORT=3000 node examples/host-app.js
//
// It prints a random password for the user `demo`; then:
//   curl -s localhost:3000/hello
//   curl -s localhost:3000/auth/login -H 'content-type: application/json' \
//        -d '{"username":"demo","password":"<printed>"}'
//   websocat "ws://localhost:3000/ws/chat?token=<access_token>"
//
// In code: `const app = await createHostApp({ users, config, logger })`, then
// `app.listen(...)`. Gatecast's options (config, env, cwd) pass through.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import gatecast, { clientErrorHandler, logSerializers } from 'gatecast'

const digest = (s) => createHash('sha256').update(s).digest()

/**
 * The host's own user store (a database in a real application).
 * users: { [username]: { password, name?, roles?, channels? } }
 */
function userStore (users) {
  const byName = new Map(Object.entries(users).map(([name, u]) => [name, { ...u, hash: digest(u.password) }]))
  const nobody = digest(randomBytes(16).toString('hex'))
  return async function verifyCredentials (username, password) {
    const user = byName.get(username)
    // compare even for unknown users, so timing does not tell them apart
    const ok = timingSafeEqual(user?.hash ?? nobody, digest(password)) && user !== undefined
    if (!ok) return null
    // becomes the token: `sub` = id, plus name, roles and allowed channels
    return { id: username, name: user.name ?? username, roles: user.roles ?? [], channels: user.channels }
  }
}

export async function createHostApp (opts = {}) {
  const app = Fastify({
    // Fastify's request lines carry the URL, and a WebSocket URL may carry a token
    // (?token=): Gatecast's serializers log the path only
    logger: opts.logger === false ? false : { ...(typeof opts.logger === 'object' ? opts.logger : {}), serializers: logSerializers },
    // a malformed request is logged without its raw bytes (which may hold tokens)
    clientErrorHandler,
    // channel names may be up to 128 characters: allow path parameters that long
    routerOptions: { maxParamLength: 200 }
  })

  // the host's own routes, beside Gatecast's; the `gatecast` decorator is shared
  app.get('/hello', async () => {
    const channels = await app.gatecast.channels()
    // connections per channel count subscriptions: one socket may be on many channels
    return { hello: 'from the host app', subscriptions: channels.reduce((n, c) => n + c.connections, 0) }
  })

  await app.register(gatecast, {
    config: opts.config,
    env: opts.env,
    cwd: opts.cwd,
    plugins: opts.plugins,
    verifyCredentials: userStore(opts.users ?? {})
  })
  return app
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const password = randomBytes(9).toString('base64url')
  const app = await createHostApp({ users: { demo: { password, name: 'Demo User' } } })
  process.stdout.write(`host app: user "demo", password ${password}\n`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { app.close().then(() => process.exit(0)) })
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
