// Asymmetric keys and JWTs made with node:crypto alone (independent of the
// code under test), and a tiny JWKS server on 127.0.0.1 playing an identity
// provider.
import { constants, createHash, createHmac, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { b64url } from './ws-extra.ts'

export type AsymAlg = 'RS256' | 'ES256' | 'EdDSA'

export interface KeyPair {
  alg: AsymAlg
  publicKey: KeyObject
  privateKey: KeyObject
  publicPem: string
  privatePem: string
}

/** A fresh key pair for `alg`; `variant` picks an unusual key of the same family. */
export function keyPair (alg: AsymAlg, variant?: 'rsa1024' | 'p384' | 'ed448'): KeyPair {
  const { publicKey, privateKey } = alg === 'RS256'
    ? generateKeyPairSync('rsa', { modulusLength: variant === 'rsa1024' ? 1024 : 2048 })
    : alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: variant === 'p384' ? 'P-384' : 'P-256' })
      : variant === 'ed448' ? generateKeyPairSync('ed448') : generateKeyPairSync('ed25519')
  return {
    alg,
    publicKey,
    privateKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  }
}

/** Writes `<name>.pub.pem` and `<name>.key.pem` (0600) into `dir`. */
export function writeKeyPair (dir: string, pair: KeyPair, name = 'jwt'): { publicFile: string, privateFile: string } {
  const publicFile = join(dir, `${name}.pub.pem`)
  const privateFile = join(dir, `${name}.key.pem`)
  writeFileSync(publicFile, pair.publicPem)
  writeFileSync(privateFile, pair.privatePem, { mode: 0o600 })
  return { publicFile, privateFile }
}

function rawSign (alg: string, input: string, key: KeyObject | string): Buffer {
  const data = Buffer.from(input)
  switch (alg) {
    case 'HS256': case 'HS384': case 'HS512':
      return createHmac(`sha${alg.slice(2)}`, key).update(data).digest()
    case 'RS256':
      return cryptoSign('sha256', data, key as KeyObject)
    case 'PS256':
      return cryptoSign('sha256', data, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
    case 'ES256': case 'ES384':
      return cryptoSign(`sha${alg.slice(2)}`, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' })
    case 'EdDSA':
      return cryptoSign(null, data, key as KeyObject)
    case 'none':
      return Buffer.alloc(0)
    default:
      throw new Error(`signToken: unsupported alg ${alg}`)
  }
}

/**
 * A JWT signed by hand. `alg` goes into the header; the signature is made
 * with `signAs` (default: the same algorithm), so headers can lie on purpose.
 */
export function signToken (payload: Record<string, unknown>, o: { alg: string, key: KeyObject | string, signAs?: string, header?: Record<string, unknown> }): string {
  const input = `${b64url({ alg: o.alg, typ: 'JWT', ...o.header })}.${b64url(payload)}`
  return `${input}.${rawSign(o.signAs ?? o.alg, input, o.key).toString('base64url')}`
}

export const tokenHeader = (token: string): Record<string, any> => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()) as Record<string, any>
export const tokenPayload = (token: string): Record<string, any> => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, any>

/** Checks a token's signature with node:crypto only. */
export function signatureValid (token: string, publicKey: KeyObject): boolean {
  const [h, p, s] = token.split('.')
  const alg = tokenHeader(token).alg as string
  const data = Buffer.from(`${h}.${p}`)
  const sig = Buffer.from(s, 'base64url')
  if (alg === 'RS256') return cryptoVerify('sha256', data, publicKey, sig)
  if (alg === 'ES256') return cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)
  if (alg === 'EdDSA') return cryptoVerify(null, data, publicKey, sig)
  throw new Error(`signatureValid: ${alg}`)
}

/** The documented default kid of a public key: RFC 7638 thumbprint, first 16 characters. */
export function thumbprintKid (publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' })
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url').slice(0, 16)
}

/** The documented default kid of an HMAC secret. */
export const secretKid = (secret: string): string => createHmac('sha256', secret).update('gatecast key id').digest('base64url').slice(0, 16)

/** A JWK for a JWKS, as an identity provider publishes it. */
export function jwk (pair: KeyPair, kid: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...pair.publicKey.export({ format: 'jwk' }), ...(kid !== undefined ? { kid } : {}), alg: pair.alg, use: 'sig', ...extra }
}

export type JwksMode = 'ok' | 'error' | 'garbage' | 'not-a-set' | 'huge' | 'redirect' | 'hang'

interface Teardown { teardown: (fn: () => unknown) => void }

/** An identity provider's JWKS endpoint; change `keys`, `mode` or `delayMs` at any time. */
export class JwksServer {
  keys: Array<Record<string, unknown>>
  mode: JwksMode = 'ok'
  delayMs = 0
  /** requests received */
  requests = 0
  url = ''
  readonly server: Server

  constructor (keys: Array<Record<string, unknown>>) {
    this.keys = keys
    this.server = createServer((req, res) => {
      this.requests++
      const reply = (): void => {
        switch (this.mode) {
          case 'hang':
            return
          case 'error':
            res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"down"}')
            return
          case 'garbage':
            res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json</html>')
            return
          case 'not-a-set':
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"nope"}')
            return
          case 'huge':
            res.writeHead(200, { 'content-type': 'application/json' })
            res.end(JSON.stringify({ keys: this.keys, padding: 'x'.repeat(2 * 1024 * 1024) }))
            return
          case 'redirect':
            res.writeHead(302, { location: 'http://127.0.0.1:1/evil.json' }).end()
            return
          default:
            res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: this.keys }))
        }
      }
      if (this.delayMs > 0) setTimeout(reply, this.delayMs)
      else reply()
    })
  }

  /** Stops answering: the port is closed (connection refused). */
  async close (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }
}

export async function startJwksServer (t: Teardown, keys: Array<Record<string, unknown>> = []): Promise<JwksServer> {
  const idp = new JwksServer(keys)
  await new Promise<void>(resolve => idp.server.listen(0, '127.0.0.1', resolve))
  const { port } = idp.server.address() as AddressInfo
  idp.url = `http://127.0.0.1:${port}/.well-known/jwks.json?tenant=t1`
  t.teardown(async () => { if (idp.server.listening) await idp.close() })
  return idp
}

/** A URL on 127.0.0.1 where nothing listens. */
export async function deadUrl (): Promise<string> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as AddressInfo
  await new Promise<void>(resolve => s.close(() => resolve()))
  return `http://127.0.0.1:${port}/jwks.json`
}
