// Where login checks credentials: a host app's verifyCredentials, or USERS_FILE.
import fp from 'fastify-plugin'
import { ConfigError, isWorldReadable } from '../src/config.ts'
import { createDemoUsers, UserStore, type VerifyCredentials } from '../src/users.ts'
import { existsSync } from 'node:fs'

declare module 'fastify' {
  interface FastifyInstance {
    verifyCredentials: VerifyCredentials
  }
}

export default fp<{ verifyCredentials?: VerifyCredentials }>(async (app, opts) => {
  if (opts.verifyCredentials !== undefined) {
    app.decorate('verifyCredentials', opts.verifyCredentials)
    return
  }
  const { usersFile, production } = app.config
  if (usersFile === null) {
    app.log.warn('no users file and no verifyCredentials: POST /auth/login refuses everyone')
    app.decorate('verifyCredentials', async () => null)
    return
  }
  const exists = existsSync(usersFile)
  const store = UserStore.open(usersFile)
  if (production) {
    if (!exists) app.log.warn(`users file ${usersFile} does not exist: add users with \`gatecast user add NAME\``)
    else if (store.hasDemoUsers()) throw new ConfigError(`users file ${usersFile} holds demo users; production refuses them: remove them with \`gatecast user remove NAME\``)
    else if (isWorldReadable(usersFile)) throw new ConfigError(`users file ${usersFile} is world-readable; run: chmod 600 ${usersFile}`)
  } else if (!exists) {
    const created = await createDemoUsers(store)
    // printed once, on stdout and never through the logger, so no log pipeline keeps them
    process.stdout.write(`\nGatecast created ${usersFile} with demo users (development only):\n` +
      created.map(u => `  ${u.name.padEnd(8)} password ${u.password}${u.roles.length > 0 ? `  roles ${u.roles.join(',')}` : ''}`).join('\n') + '\n\n')
  }
  app.decorate('verifyCredentials', (username: string, password: string) => store.verify(username, password))
}, { name: 'gatecast-users', dependencies: ['gatecast-config'], fastify: '5.x' })
