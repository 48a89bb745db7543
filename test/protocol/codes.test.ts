// One set of protocol codes for both ends: the client library, the server's
// frames module and the schema the server validates and documents with.
import { readFileSync } from 'node:fs'
import t from 'tap'
import ts from 'typescript'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import * as client from '../../client/index.ts'
import * as codes from '../../src/protocol/codes.ts'
import * as frames from '../../src/protocol/frames.ts'

/** The modules a TypeScript file loads at run time (type-only imports are erased). */
function runtimeImports (file: string): string[] {
  const source = readFileSync(new URL(file, import.meta.url), 'utf8')
  const js = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
  }).outputText
  return [...js.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)].map(m => m[1] ?? m[2])
}

t.test('the client and the server share the same code objects', async t => {
  t.equal(client.CloseCodes, codes.CloseCodes, 'client CloseCodes is the codes module\'s object')
  t.equal(frames.CloseCodes, codes.CloseCodes, 'frames.ts re-exports the same CloseCodes')
  t.equal(client.ERROR_CODES, codes.ERROR_CODES)
  t.equal(frames.ERROR_CODES, codes.ERROR_CODES)
})

t.test('the close codes and error codes are the protocol\'s', async t => {
  t.same({ ...codes.CloseCodes }, {
    shuttingDown: 1001,
    policy: 1008,
    tooLarge: 1009,
    unauthorized: 4401,
    forbidden: 4403,
    slowConsumer: 4408,
    rateLimited: 4429
  })
  t.same([...codes.ERROR_CODES], ['bad_request', 'forbidden', 'rate_limited', 'too_large', 'too_many_channels', 'unavailable', 'internal'])
  t.equal(new Set(Object.values(codes.CloseCodes)).size, Object.keys(codes.CloseCodes).length, 'no two names share a code')
})

t.test('ErrorCodeSchema accepts exactly the code list', async t => {
  const check = TypeCompiler.Compile(frames.ErrorCodeSchema)
  for (const code of codes.ERROR_CODES) t.ok(check.Check(code), `accepts ${code}`)
  for (const other of ['BAD_REQUEST', 'token_invalid', 'bad_request ', '', 'unknown', 1008, null, undefined, ['forbidden']]) {
    t.notOk(check.Check(other), `refuses ${JSON.stringify(other)}`)
  }
  const documented = (frames.ErrorCodeSchema.anyOf as Array<{ const?: unknown }>).map(s => s.const)
  t.same(documented, [...codes.ERROR_CODES], 'the schema (and so the docs) lists the codes in order')
})

t.test('an error frame carries one of the codes', async t => {
  const check = TypeCompiler.Compile(frames.ErrorFrameSchema)
  for (const code of codes.ERROR_CODES) t.ok(check.Check({ type: 'error', code, message: 'm' }), code)
  t.notOk(check.Check({ type: 'error', code: 'token_invalid', message: 'm' }))
})

t.test('the codes module imports nothing; the client loads only it at run time', async t => {
  t.same(runtimeImports('../../src/protocol/codes.ts'), [], 'codes.ts has no imports')
  t.same(runtimeImports('../../client/index.ts'), ['../src/protocol/codes.ts'], 'no TypeBox, nothing else of the server')
})
