// The import rules of docs/architecture.md are lint rules: a file that breaks
// one fails `npm test`. Each case lints a made-up file at a real place.
import t from 'tap'
import { ESLint } from 'eslint'

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname })
const RULES = new Set(['no-restricted-imports', '@typescript-eslint/no-restricted-imports'])

/** How many restricted imports lint finds in each made-up file. */
async function restricted (cases: Array<[string, string, string]>): Promise<number[]> {
  const out: number[] = []
  for (const [filePath, code] of cases) {
    const [r] = await eslint.lintText(`${code}\nexport const used = 1\n`, { filePath })
    out.push(r.messages.filter(m => m.ruleId !== null && RULES.has(m.ruleId)).length)
  }
  return out
}

const refused: Array<[string, string, string]> = [
  ['src/core/x.ts', "import Fastify from 'fastify'", 'core imports fastify'],
  ['src/core/x.ts', "import fp from 'fastify-plugin'", 'core imports fastify-plugin'],
  ['src/core/x.ts', "import type { WebSocket } from 'ws'", 'core imports ws (types too)'],
  ['src/core/x.ts', "import { Counter } from 'prom-client'", 'core imports prom-client'],
  ['src/core/x.ts', "import { WsTransport } from '../transport/ws.ts'", 'core imports the transport above it'],
  ['src/core/x.ts', "import { gatecast } from '../../app.ts'", 'core imports the composition root'],
  ['src/core/x.ts', "import metrics from '../../plugins/metrics.ts'", 'core imports plugins/'],
  ['src/auth/x.ts', "import { Hub } from '../core/hub.ts'", 'auth imports core'],
  ['src/auth/x.ts', "import api from '../../routes/api/index.ts'", 'auth imports routes/'],
  ['src/engine/x.ts', "import { AuthService } from '../auth/service.ts'", 'engine imports auth'],
  ['src/engine/redis/x.ts', "import { Hub } from '../../core/hub.ts'", 'a nested engine module imports core'],
  ['src/engine/redis/x.ts', "import fp from 'fastify-plugin'", 'a nested engine module imports fastify-plugin'],
  ['src/engine/x.ts', "import { Redis } from 'ioredis'", 'ioredis outside the Redis engine'],
  ['src/engine/memory/x.ts', "import { Redis } from 'ioredis'", 'ioredis in the memory engine'],
  ['src/config/x.ts', "import type { Engine } from '../engine/types.ts'", 'config imports engine'],
  ['src/protocol/x.ts', "import type { Logger } from '../config/logger.ts'", 'protocol imports another layer'],
  ['src/protocol/x.ts', "import { Type } from 'fastify'", 'protocol imports fastify'],
  ['src/transport/x.ts', "import Fastify from 'fastify'", 'transport imports fastify'],
  ['src/core/x.ts', "import { HttpBackend } from '../backend/http-backend.ts'", 'core imports the backend above it'],
  ['src/backend/x.ts', "import { fromUpgrade } from '../transport/ws.ts'", 'the backend imports the transport beside it'],
  ['src/backend/x.ts', "import fp from 'fastify-plugin'", 'the backend imports fastify-plugin'],
  ['src/backend/x.ts', "import { gatecast } from '../../app.ts'", 'the backend imports the composition root'],
  ['plugins/x.ts', "import { Redis } from 'ioredis'", 'the edge reaches for the Redis client'],
  ['routes/x.ts', "import { Counter } from 'prom-client'", 'Prometheus outside plugins/metrics.ts'],
  ['client/x.ts', "import { gatecast } from '../app.ts'", 'the client imports the server'],
  ['client/x.ts', "import { parseClientFrame } from '../src/protocol/frames.ts'", 'the client loads the TypeBox frames module at run time'],
  ['client/x.ts', "import { Type } from '@sinclair/typebox'", 'the client pulls in TypeBox'],
  ['client/x.ts', "import { Hub } from '../src/core/hub.ts'", 'the client imports beyond the protocol']
]

const allowed: Array<[string, string, string]> = [
  ['src/core/x.ts', "import { Hub } from './hub.ts'\nimport type { AuthService } from '../auth/service.ts'\nimport type { Engine } from '../engine/types.ts'", 'core imports itself and the layers below'],
  ['src/engine/redis/x.ts', "import { Redis } from 'ioredis'\nimport { parseId } from '../ids.ts'\nimport { frameText } from '../../protocol/wire.ts'", 'the Redis engine uses ioredis and the protocol'],
  ['src/transport/x.ts', "import type { WebSocket } from 'ws'\nimport type { Transport } from '../core/transport.ts'", 'transport imports ws and the core interface'],
  ['plugins/x.ts', "import fp from 'fastify-plugin'\nimport { Gatecast } from '../src/core/gateway.ts'", 'the edge imports fastify and the core'],
  ['src/backend/x.ts', "import { Pool } from 'undici'\nimport type { BackendHooks } from '../core/hooks.ts'\nimport { GatecastError } from '../protocol/errors.ts'", 'the backend uses undici, the core and the protocol'],
  ['client/x.ts', "import { CloseCodes } from '../src/protocol/codes.ts'", 'the client imports the protocol codes'],
  ['client/x.ts', "import type { MessageFrame } from '../src/protocol/frames.ts'", 'the client imports the frames\' types'],
  ['plugins/metrics.ts', "import { Counter } from 'prom-client'", 'the metrics plugin uses prom-client']
]

t.test('a layer that imports what it may not fails lint', async t => {
  const found = await restricted(refused)
  refused.forEach(([, , what], i) => t.equal(found[i], 1, what))
})

t.test('what the layers may import passes', async t => {
  const found = await restricted(allowed)
  allowed.forEach(([, , what], i) => t.equal(found[i], 0, what))
})
