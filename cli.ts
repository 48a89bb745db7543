// `gatecast` command line: serve, user add/remove/list, token.
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { ConfigError, readConfig, resolveJwtSecret, type GatecastConfig } from './src/config/config.ts'
import { signAccessToken } from './src/auth/claims.ts'
import { jwtFromKeys } from './src/auth/jwt.ts'
import { createTokenKeys } from './src/auth/keys.ts'
import { UserStore } from './src/auth/users.ts'

const USAGE = `usage:
  gatecast                              start the server (same as \`gatecast serve\`)
  gatecast serve [--plugin PATH]...     start the server with extra plugins
  gatecast user add NAME [--role admin] password: first line of stdin, or prompted on a TTY
  gatecast user remove NAME
  gatecast user list
  gatecast token NAME [--ttl SECONDS] [--role admin] [--channels a,b]
  gatecast help [COMMAND]               this usage, or a command's (also COMMAND --help)
`

const COMMAND_USAGE: Record<string, string> = {
  serve: `usage: gatecast serve [--plugin PATH]...

Starts the server; plain \`gatecast\` does the same. Configuration comes from the
environment and a .env file in the working directory (PORT, HOST, JWT_SECRET,
REDIS_URL, USERS_FILE, …: see the README).

options:
  --plugin PATH   also register the Fastify plugin at PATH, after those in PLUGINS (repeatable)
  -h, --help      print this usage
`,
  user: `usage:
  gatecast user add NAME [--role ROLE]...
  gatecast user remove NAME
  gatecast user list

Manages the users of POST /auth/login, kept in USERS_FILE (default ./data/users.json).
\`gatecast user COMMAND --help\` describes one command.
`,
  'user add': `usage: gatecast user add NAME [--role ROLE]...

Adds NAME, or replaces the password and roles of an existing NAME. The password is
the first line of stdin, or prompted for on a TTY; at least 8 characters. Only its
scrypt hash is stored, in USERS_FILE (written atomically, mode 0600).

options:
  --role ROLE   give NAME this role, e.g. admin (repeatable)
  -h, --help    print this usage
`,
  'user remove': `usage: gatecast user remove NAME

Removes NAME from USERS_FILE, so NAME can no longer log in. An unknown NAME exits 2.
`,
  'user list': `usage: gatecast user list

Lists the users in USERS_FILE, one a line, with their roles; demo users are marked
(demo). Password hashes are not shown.
`,
  token: `usage: gatecast token NAME [--ttl SECONDS] [--role ROLE]... [--channels a,b]

Prints an access token for NAME, signed with the server's key (JWT_SECRET, or
JWT_PRIVATE_KEY_FILE for RS256/ES256/EdDSA). A NAME in USERS_FILE keeps its roles.

options:
  --ttl SECONDS    lifetime (default: ACCESS_TOKEN_TTL)
  --role ROLE      add this role, e.g. admin (repeatable)
  --channels a,b   the \`channels\` claim: the channel patterns the token may join
  -h, --help       print this usage
`
}

// Every command accepts it, so that asking for help never needs a valid configuration.
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

function printUsage (command: string): void {
  process.stdout.write(COMMAND_USAGE[command] ?? USAGE)
}

class UsageError extends Error {}

async function readPassword (): Promise<string> {
  const input = process.stdin
  if (input.isTTY !== true) {
    const rl = createInterface({ input })
    const line = await new Promise<string | null>(resolve => {
      rl.once('line', resolve)
      rl.once('close', () => resolve(null))
    })
    rl.close()
    if (line === null) throw new UsageError('no password on stdin')
    return line
  }
  const output = process.stderr
  output.write('Password: ')
  const rl = createInterface({ input, output, terminal: true })
  // keep the typed password off the screen
  const muted = rl as unknown as { _writeToOutput: (s: string) => void }
  muted._writeToOutput = () => {}
  const answer = await new Promise<string>(resolve => rl.question('', resolve))
  rl.close()
  output.write('\n')
  return answer
}

function usersStore (config: GatecastConfig): UserStore {
  if (config.usersFile === null) throw new ConfigError('no USERS_FILE configured')
  return UserStore.open(config.usersFile)
}

async function userCommand (args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { role: { type: 'string', multiple: true }, ...HELP_OPTION } })
  const [action, name] = positionals
  if (values.help === true) {
    printUsage(Object.hasOwn(COMMAND_USAGE, `user ${action}`) ? `user ${action}` : 'user')
    return
  }
  const store = usersStore(readConfig())
  switch (action) {
    case 'add': {
      if (name === undefined) throw new UsageError('user add needs a NAME')
      const password = await readPassword()
      if (password.length < 8) throw new UsageError('password must have at least 8 characters')
      const existed = store.get(name) !== undefined
      await store.set(name, password, { roles: values.role ?? [] })
      process.stdout.write(`${existed ? 'updated' : 'added'} user ${name}${values.role !== undefined ? ` (roles: ${values.role.join(',')})` : ''} in ${store.file}\n`)
      return
    }
    case 'remove':
      if (name === undefined) throw new UsageError('user remove needs a NAME')
      if (!store.remove(name)) throw new UsageError(`no user ${name} in ${store.file}`)
      process.stdout.write(`removed user ${name}\n`)
      return
    case 'list':
      for (const u of store.list()) process.stdout.write(`${u.name}${u.roles.length > 0 ? `\troles=${u.roles.join(',')}` : ''}${u.demo ? '\t(demo)' : ''}\n`)
      return
    default:
      throw new UsageError(`unknown user command ${action ?? ''}`)
  }
}

async function tokenCommand (args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ttl: { type: 'string' }, role: { type: 'string', multiple: true }, channels: { type: 'string' }, ...HELP_OPTION }
  })
  if (values.help === true) {
    printUsage('token')
    return
  }
  const config = readConfig()
  const name = positionals[0]
  if (name === undefined) throw new UsageError('token needs a NAME')
  const ttl = values.ttl === undefined ? config.accessTokenTtl : Number(values.ttl)
  if (!Number.isInteger(ttl) || ttl <= 0) throw new UsageError('--ttl must be a positive whole number of seconds')
  const known = config.usersFile !== null ? UserStore.open(config.usersFile).get(name) : undefined
  const roles = [...new Set([...(known?.roles ?? []), ...(values.role ?? [])])]
  const channels = values.channels?.split(',').map(s => s.trim()).filter(s => s !== '')
  const warn = (msg: string): void => { process.stderr.write(`warning: ${msg}\n`) }
  const keys = createTokenKeys(config, resolveJwtSecret(config, warn), { warn })
  // the signer app.jwt.sign would be, built from the same options without a Fastify instance (src/auth/jwt.ts says why)
  const { sign } = jwtFromKeys(keys)
  if (sign === undefined) throw new ConfigError(`no signing key: JWT_ALGORITHM ${config.jwtAlgorithm} needs JWT_PRIVATE_KEY_FILE to issue tokens`)
  process.stdout.write(signAccessToken(sign, { sub: name, roles, channels }, ttl) + '\n')
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === 'serve') {
      const { values } = parseArgs({ args: rest, options: { plugin: { type: 'string', multiple: true }, ...HELP_OPTION } })
      if (values.help === true) {
        printUsage('serve')
        return 0
      }
      const { start } = await import('./server.ts')
      await start({ plugins: values.plugin ?? [] })
      return -1
    }
    if (command === '--help' || command === '-h') {
      printUsage('')
      return 0
    }
    if (command === 'help') {
      const topic = rest.join(' ')
      if (topic !== '' && !Object.hasOwn(COMMAND_USAGE, topic)) throw new UsageError(`no help for ${topic}`)
      printUsage(topic)
      return 0
    }
    if (command === 'user') await userCommand(rest)
    else if (command === 'token') await tokenCommand(rest)
    else throw new UsageError(`unknown command ${command}`)
    return 0
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
      process.stderr.write(`gatecast: ${(err as Error).message}\n${USAGE}`)
      return 2
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`gatecast: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

const code = await main(process.argv.slice(2))
if (code >= 0) process.exitCode = code
