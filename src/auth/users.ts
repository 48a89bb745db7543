// Users for POST /auth/login: a JSON file of scrypt hashes, written atomically
// and synced to disk with mode 0600, managed by the CLI.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ConfigError } from '../config/config.ts'

const USERNAME_PATTERN = '^[A-Za-z0-9_.@-]{1,64}$'
const usernameRe = new RegExp(USERNAME_PATTERN)

export const UserRecordSchema = Type.Object({
  password: Type.String({ pattern: '^scrypt\\$' }),
  roles: Type.Optional(Type.Array(Type.String())),
  channels: Type.Optional(Type.Array(Type.String())),
  demo: Type.Optional(Type.Boolean())
}, { additionalProperties: false })
export type UserRecord = Static<typeof UserRecordSchema>

export const UsersFileSchema = Type.Object({
  users: Type.Record(Type.String({ pattern: USERNAME_PATTERN }), UserRecordSchema, { additionalProperties: false })
}, { additionalProperties: false })
export type UsersFile = Static<typeof UsersFileSchema>
const usersFileCheck = TypeCompiler.Compile(UsersFileSchema)

/** What a successful login yields; also what a host app's `verifyCredentials` returns. */
export interface VerifiedUser {
  /** becomes the `sub` claim */
  id: string
  name?: string
  roles?: string[]
  channels?: string[]
}

export type VerifyCredentials = (username: string, password: string) => Promise<VerifiedUser | null> | VerifiedUser | null

/** Current state of a user at refresh time; null ends the session (user removed). */
export type LookupUser = (userId: string) => Promise<VerifiedUser | null> | VerifiedUser | null

// N=2^15 keeps a hash near 50 ms here: slow for guessing, fine for logins.
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 }
const scryptOpts = (N: number, r: number, p: number): ScryptOptions => ({ N, r, p, maxmem: 128 * N * r * 2 })

function scrypt (password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, opts, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scrypt(password, salt, SCRYPT.keylen, scryptOpts(SCRYPT.N, SCRYPT.r, SCRYPT.p))
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

export async function verifyPassword (password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number)
  const salt = Buffer.from(parts[4], 'base64')
  const expected = Buffer.from(parts[5], 'base64')
  if (!Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || expected.length === 0) return false
  const key = await scrypt(password, salt, expected.length, scryptOpts(N, r, p))
  return timingSafeEqual(key, expected)
}

// Unknown users cost the same scrypt as known ones, so timing does not tell them apart.
let dummyHash: Promise<string> | undefined

export function isValidUsername (name: string): boolean {
  return usernameRe.test(name)
}

export class UserStore {
  readonly file: string
  #data: UsersFile
  #mtimeMs: number

  private constructor (file: string, data: UsersFile) {
    this.file = file
    this.#data = data
    this.#mtimeMs = mtimeOf(file)
  }

  /** Opens the file; a missing one is an empty store (created on first write). */
  static open (file: string): UserStore {
    return new UserStore(file, UserStore.#read(file))
  }

  static #read (file: string): UsersFile {
    if (!existsSync(file)) return { users: {} }
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new ConfigError(`users file ${file} is not valid JSON (${(err as Error).message}); fix it or remove it and add users with \`gatecast user add\``)
    }
    if (!usersFileCheck.Check(raw)) {
      const first = usersFileCheck.Errors(raw).First()
      throw new ConfigError(`users file ${file} is malformed at ${first?.path || '/'}: ${first?.message ?? 'invalid'}; fix it or remove it and add users with \`gatecast user add\``)
    }
    return raw
  }

  /**
   * The CLI edits the file while the server runs: pick changes up (one stat per
   * login). A file broken by hand keeps the last good copy and says so.
   */
  #fresh (): void {
    const mtime = mtimeOf(this.file)
    if (mtime === this.#mtimeMs) return
    this.#mtimeMs = mtime
    try {
      this.#data = UserStore.#read(this.file)
    } catch (err) {
      process.emitWarning(`${(err as Error).message}; keeping the users loaded before`)
    }
  }

  list (): Array<{ name: string, roles: string[], demo: boolean }> {
    return Object.entries(this.#data.users).map(([name, u]) => ({ name, roles: u.roles ?? [], demo: u.demo === true }))
  }

  get (name: string): UserRecord | undefined {
    this.#fresh()
    return Object.hasOwn(this.#data.users, name) ? this.#data.users[name] : undefined
  }

  hasDemoUsers (): boolean {
    return Object.values(this.#data.users).some(u => u.demo === true)
  }

  async set (name: string, password: string, opts: { roles?: string[], demo?: boolean } = {}): Promise<void> {
    if (!isValidUsername(name)) throw new ConfigError(`invalid user name ${JSON.stringify(name)} (letters, digits and _.@- only, at most 64)`)
    const record: UserRecord = { password: await hashPassword(password) }
    if (opts.roles !== undefined && opts.roles.length > 0) record.roles = opts.roles
    if (opts.demo === true) record.demo = true
    this.#fresh()
    this.#data.users[name] = record
    this.save()
  }

  remove (name: string): boolean {
    if (this.get(name) === undefined) return false
    delete this.#data.users[name]
    this.save()
    return true
  }

  save (): void {
    writeFileDurably(this.file, JSON.stringify(this.#data, null, 2) + '\n')
    this.#mtimeMs = mtimeOf(this.file)
  }

  lookup (name: string): VerifiedUser | null {
    const user = this.get(name)
    return user === undefined ? null : { id: name, name, roles: user.roles, channels: user.channels }
  }

  async verify (name: string, password: string): Promise<VerifiedUser | null> {
    const user = this.get(name)
    if (user === undefined) {
      dummyHash ??= hashPassword(randomBytes(16).toString('hex'))
      await verifyPassword(password, await dummyHash)
      return null
    }
    if (!await verifyPassword(password, user.password)) return null
    return { id: name, name, roles: user.roles, channels: user.channels }
  }
}

/**
 * Replaces `file` so that a crash leaves either the old or the new content: the
 * temp file is flushed before the rename (else the rename can reach the disk
 * before the data, leaving an empty users file), and the directory after it
 * (else the rename itself can be lost).
 */
function writeFileDurably (file: string, text: string): void {
  const dir = dirname(file)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    try {
      // the umask may have narrowed the mode given to open
      fchmodSync(fd, 0o600)
      writeFileSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
  } catch (err) {
    try { unlinkSync(tmp) } catch {}
    throw err
  }
  syncDirectory(dir)
}

// Codes for "this platform or file system cannot sync a directory", not for a failed sync.
const NO_DIRECTORY_SYNC = new Set(['EISDIR', 'EINVAL', 'ENOTSUP', 'EPERM', 'EACCES', 'EBADF'])

function syncDirectory (dir: string): void {
  // Windows cannot open a directory as a file; its renames are not made durable this way
  if (process.platform === 'win32') return
  let fd: number
  try {
    fd = openSync(dir, 'r')
  } catch (err) {
    if (NO_DIRECTORY_SYNC.has((err as NodeJS.ErrnoException).code ?? '')) return
    throw err
  }
  try {
    fsyncSync(fd)
  } catch (err) {
    if (!NO_DIRECTORY_SYNC.has((err as NodeJS.ErrnoException).code ?? '')) throw err
  } finally {
    closeSync(fd)
  }
}

function mtimeOf (file: string): number {
  try {
    return statSync(file).mtimeMs
  } catch {
    return 0
  }
}

export const DEMO_USERS: ReadonlyArray<{ name: string, roles: string[] }> = [
  { name: 'alice', roles: [] },
  { name: 'bob', roles: [] },
  { name: 'admin', roles: ['admin'] }
]

/** Development only: a users file with demo users and random passwords, returned once to be printed. */
export async function createDemoUsers (store: UserStore): Promise<Array<{ name: string, password: string, roles: string[] }>> {
  const created = []
  for (const u of DEMO_USERS) {
    const password = randomBytes(9).toString('base64url')
    await store.set(u.name, password, { roles: u.roles, demo: true })
    created.push({ name: u.name, password, roles: u.roles })
  }
  return created
}
