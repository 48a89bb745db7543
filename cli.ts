// `gatecast` command line: serve, user add/remove/list, token.
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { ConfigError, readConfig, resolveJwtSecret, type GatecastConfig } from './src/config/config.ts'
import { signAccessToken } from './src/auth/claims.ts'
import { createTokenKeys } from './src/auth/keys.ts'
import { UserStore } from './src/auth/users.ts'

const USAGE = `usage:
  gatecast                              start the server (same as \`gatecast serve\`)
  gatecast serve [--plugin PATH]...     start the server with extra plugins
  gatecast user add NAME [--role admin] password: first line of stdin, or prompted on a TTY
  gatecast user remove NAME
  gatecast user list
  gatecast token NAME [--ttl SECONDS] [--role admin] [--channels a,b]
`

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

async function userCommand (args: string[], config: GatecastConfig): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { role: { type: 'string', multiple: true } } })
  const [action, name] = positionals
  const store = usersStore(config)
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

async function tokenCommand (args: string[], config: GatecastConfig): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ttl: { type: 'string' }, role: { type: 'string', multiple: true }, channels: { type: 'string' } }
  })
  const name = positionals[0]
  if (name === undefined) throw new UsageError('token needs a NAME')
  const ttl = values.ttl === undefined ? config.accessTokenTtl : Number(values.ttl)
  if (!Number.isInteger(ttl) || ttl <= 0) throw new UsageError('--ttl must be a positive whole number of seconds')
  const known = config.usersFile !== null ? UserStore.open(config.usersFile).get(name) : undefined
  const roles = [...new Set([...(known?.roles ?? []), ...(values.role ?? [])])]
  const channels = values.channels?.split(',').map(s => s.trim()).filter(s => s !== '')
  const warn = (msg: string): void => { process.stderr.write(`warning: ${msg}\n`) }
  const keys = createTokenKeys(config, resolveJwtSecret(config, warn), { warn })
  if (!keys.canSign) throw new ConfigError(`no signing key: JWT_ALGORITHM ${config.jwtAlgorithm} needs JWT_PRIVATE_KEY_FILE to issue tokens`)
  process.stdout.write(signAccessToken(keys, { sub: name, roles, channels }, ttl) + '\n')
}

export async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === 'serve') {
      const { values } = parseArgs({ args: rest, options: { plugin: { type: 'string', multiple: true } } })
      const { start } = await import('./server.ts')
      await start({ plugins: values.plugin ?? [] })
      return -1
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(USAGE)
      return 0
    }
    const config = readConfig()
    if (command === 'user') await userCommand(rest, config)
    else if (command === 'token') await tokenCommand(rest, config)
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
