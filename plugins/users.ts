// Where login checks credentials: a host app's verifyCredentials, or USERS_FILE.
import { existsSync } from 'node:fs'
import fp from 'fastify-plugin'
import type { AppPluginOptions } from '../app.ts'
import { ConfigError, isWorldReadable } from '../src/config/config.ts'
import { createDemoUsers, UserStore, type LookupUser, type VerifyCredentials } from '../src/auth/users.ts'

export interface UserSource {
  verifyCredentials: VerifyCredentials
  /** when present, refresh re-reads the user (roles, removal) */
  lookupUser?: LookupUser
}

declare module 'fastify' {
  interface FastifyInstance {
    users: UserSource
  }
}

export default fp<AppPluginOptions>(async (app, { app: opts }) => {
  if (opts.verifyCredentials !== undefined) {
    app.decorate('users', { verifyCredentials: opts.verifyCredentials, lookupUser: opts.lookupUser })
    return
  }
  const { usersFile, production } = app.config
  if (usersFile === null) {
    app.log.warn('no users file and no verifyCredentials: POST /auth/login refuses everyone')
    app.decorate('users', { verifyCredentials: () => null })
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
  app.decorate('users', {
    verifyCredentials: (username: string, password: string) => store.verify(username, password),
    lookupUser: (userId: string) => store.lookup(userId)
  })
}, { name: 'gatecast-users', dependencies: ['gatecast-config'], fastify: '5.x' })
