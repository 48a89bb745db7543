// The named constructors build the same errors the gateway built by hand:
// status, code and message are what clients and tests compare against.
import t from 'tap'
import { GatecastError, isGatecastError } from '../../src/protocol/errors.ts'

t.test('each named constructor: status, code, message', async t => {
  const cases: Array<[GatecastError, number, string, string]> = [
    [GatecastError.badRequest('data must be a JSON value'), 400, 'bad_request', 'data must be a JSON value'],
    [GatecastError.badChannel(), 400, 'bad_channel', 'invalid channel name'],
    [GatecastError.badSince(), 400, 'bad_since', 'invalid since id'],
    [GatecastError.badSince('since must be given once'), 400, 'bad_since', 'since must be given once'],
    [GatecastError.tokenMissing(), 401, 'token_missing', 'missing token'],
    [GatecastError.tokenMissing('missing Bearer token'), 401, 'token_missing', 'missing Bearer token'],
    [GatecastError.tokenInvalid('malformed token'), 401, 'token_invalid', 'malformed token'],
    [GatecastError.invalidRefreshToken('refresh token revoked'), 401, 'invalid_refresh_token', 'refresh token revoked'],
    [GatecastError.forbidden('token belongs to another user'), 403, 'forbidden', 'token belongs to another user'],
    [GatecastError.upgradeRequired(), 426, 'upgrade_required', 'this route only speaks WebSocket'],
    [GatecastError.rateLimited('rate limit exceeded, retry in 1 minute'), 429, 'rate_limited', 'rate limit exceeded, retry in 1 minute'],
    [GatecastError.unavailable(), 503, 'unavailable', 'engine unavailable'],
    [GatecastError.shuttingDown(), 503, 'shutting_down', 'server is shutting down']
  ]
  for (const [err, statusCode, code, message] of cases) {
    t.ok(err instanceof GatecastError && isGatecastError(err), `${code} is a GatecastError`)
    t.match(err, { name: 'GatecastError', statusCode, code, message, headers: undefined }, `${code}: ${message}`)
  }
})

t.test('rateLimited keeps its response headers', async t => {
  t.same(GatecastError.rateLimited('slow down', { 'retry-after': '5' }).headers, { 'retry-after': '5' })
})

t.test('the constructor is unchanged: the message defaults to the status text', async t => {
  t.match(new GatecastError(404, 'not_found'), { statusCode: 404, code: 'not_found', message: 'Not Found' })
  t.notOk(isGatecastError(Object.assign(new Error('x'), { statusCode: 401, code: 'token_invalid' })), 'a look-alike is not one')
})
