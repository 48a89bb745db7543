import neostandard from 'neostandard'

// The layers of src/ (docs/architecture.md): protocol and config at the bottom,
// then engine → auth → core, with transport (over ws) and backend (HTTP calls to
// the application's backend) side by side above core; the Fastify edge (plugins/, routes/,
// app.ts, server.ts, cli.ts, index.ts) on top. A layer imports only the layers
// below it; nothing in src/ imports the edge; only transport and the edge
// import ws; only the edge imports Fastify or prom-client.
const FASTIFY = ['fastify', 'fastify-plugin', '@fastify/*']

function restrict ({ files, layers = [], packages = [], regex = [] }) {
  const patterns = []
  if (layers.length > 0) {
    patterns.push({ regex: `(^|/)(${layers.join('|')})/`, message: `this layer may not import ${layers.join(', ')} (layers import only the layers below them)` })
  }
  if (packages.length > 0) patterns.push({ group: packages, message: 'this layer may not depend on this package (see docs/architecture.md)' })
  for (const r of regex) patterns.push(r)
  return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } }
}

const leaveSrc = (depth) => ({ regex: `^(\\.\\./){${depth},}`, message: 'nothing in src/ imports the Fastify edge or the composition root' })
const noFramework = [...FASTIFY, 'ws', 'prom-client']

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**', 'data/**', 'tmp/**']
  }),
  // protocol imports nothing else of Gatecast
  restrict({ files: ['src/protocol/**/*.ts'], packages: [...noFramework, 'ioredis'], regex: [{ regex: '^\\.\\./', message: 'protocol imports nothing else of Gatecast' }] }),
  restrict({ files: ['src/config/**/*.ts'], layers: ['engine', 'auth', 'core', 'transport', 'backend'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(2)] }),
  // ioredis belongs to the Redis engine alone
  restrict({ files: ['src/engine/*.ts'], layers: ['auth', 'core', 'transport', 'backend'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(2)] }),
  restrict({ files: ['src/engine/memory/*.ts'], layers: ['auth', 'core', 'transport', 'backend'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(3)] }),
  restrict({ files: ['src/engine/redis/*.ts'], layers: ['auth', 'core', 'transport', 'backend'], packages: noFramework, regex: [leaveSrc(3)] }),
  restrict({ files: ['src/auth/**/*.ts'], layers: ['core', 'transport', 'backend'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(2)] }),
  restrict({ files: ['src/core/**/*.ts'], layers: ['transport', 'backend'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(2)] }),
  restrict({ files: ['src/transport/**/*.ts'], layers: ['backend'], packages: [...FASTIFY, 'prom-client', 'ioredis'], regex: [leaveSrc(2)] }),
  restrict({ files: ['src/backend/**/*.ts'], layers: ['transport'], packages: [...noFramework, 'ioredis'], regex: [leaveSrc(2)] }),
  // the edge reaches the engine through its interfaces, never its Redis client,
  // and Prometheus through plugins/metrics.ts alone
  { ...restrict({ files: ['plugins/**/*.ts', 'routes/**/*.ts', '*.ts'], packages: ['ioredis', 'prom-client'] }), ignores: ['plugins/metrics.ts'] },
  restrict({ files: ['plugins/metrics.ts'], packages: ['ioredis'] }),
  // the client library runs in browsers: no dependencies, and of Gatecast only the protocol's codes and types
  restrict({ files: ['client/**/*.ts'], packages: [...noFramework, 'ioredis', '@sinclair/*'], regex: [{ regex: '^\\.\\./(?!src/protocol/)', message: 'the client imports only src/protocol' }] }),
  // …and of the protocol only types, but for the dependency-free codes: frames.ts loads TypeBox
  {
    files: ['client/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        patterns: [{ regex: '^\\.\\./src/protocol/(?!codes\\.ts$)', allowTypeImports: true, message: 'the client may import only types from the protocol, values from codes.ts alone' }]
      }]
    }
  }
]
