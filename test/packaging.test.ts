// The package as a stranger gets it: `npm pack`, what the tarball holds, and
// the tarball installed into an empty project whose `gatecast` then runs.
// Packing happens in a copy of this checkout: `npm pack` runs `prepare` (the
// build), which must not rewrite the dist/ that other test files are running.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, posix, relative } from 'node:path'
import t from 'tap'
import { cleanEnv, startProcess } from './helpers/cli.ts'
import { ROOT } from './helpers/process.ts'

// the file runs past tap's default timeout: the build, then an install
t.setTimeout(240_000)

// Not copied: what git ignores (build output, dev data, results) and git itself.
const NOT_COPIED = new Set(['.git', 'node_modules', 'dist', 'coverage', '.tap', 'data', '.env', join('bench', 'results'), join('test', 'artifacts')])

// An outer `npm test` exports its own project's npm_config_* (local_prefix among
// them), which would point the inner npm at this checkout: only the cache,
// registry and proxy settings go through.
const PASSED_TO_NPM = ['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_cafile', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy']

function childEnv (extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of PASSED_TO_NPM) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  // the bin's `#!/usr/bin/env node` finds this node first
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`
  return { ...env, ...extra }
}

interface Ran { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number }

async function exec (cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Ran> {
  const started = Date.now()
  const child = spawn(cmd, args, { cwd, env: cleanEnv(childEnv()), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c, s) => resolve([c, s]))
  })
  clearTimeout(timer)
  return { code, signal, stdout, stderr, ms: Date.now() - started }
}

const failed = (what: string, r: Ran): string =>
  `${what}: exit ${String(r.code)}/${String(r.signal)} after ${r.ms} ms\nstdout: ${r.stdout.slice(-3000)}\nstderr: ${r.stderr.slice(-3000)}`

t.test('npm pack: the tarball installs into an empty project and runs', { timeout: 230_000 }, async t => {
  const work = mkdtempSync(join(tmpdir(), 'gatecast-pack-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))

  const checkout = join(work, 'checkout')
  cpSync(ROOT, checkout, { recursive: true, filter: src => !NOT_COPIED.has(relative(ROOT, src)) && !src.endsWith('.log') })
  symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'), 'dir')
  const out = join(work, 'out')
  mkdirSync(out)
  const pack = await exec('npm', ['pack', '--json', '--pack-destination', out], checkout, 100_000)
  t.comment(`npm pack (with the build): ${pack.ms} ms`)
  if (pack.code !== 0) throw new Error(failed('npm pack', pack))
  const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string, entryCount: number, files: Array<{ path: string }> }>
  const files = packed.files.map(f => f.path)
  const shipped = new Set(files)
  t.comment(`${packed.entryCount} files in ${packed.filename}`)

  await t.test('what the tarball holds', async t => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/gatecast.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/server.js', 'dist/client/index.js', 'public/demo.html', 'public/demo.js', 'public/demo.css']) {
      t.ok(shipped.has(f), `ships ${f}`)
    }
    const pkg = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { bin: Record<string, string>, exports: Record<string, Record<string, string>> }
    const targets = [...Object.values(pkg.bin), ...Object.values(pkg.exports).flatMap(e => Object.values(e))]
    for (const target of targets) t.ok(shipped.has(posix.normalize(target)), `ships ${target}, named in package.json`)
    t.same(files.filter(f => /(^|\/)bench\//.test(f)), [], 'no bench code')
    t.same(files.filter(f => /(^|\/)(test|tests|__tests__)\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f)), [], 'no test files')
    t.same(files.filter(f => /(^|\/)(\.env|data\/|coverage\/|\.tap\/)/.test(f)), [], 'no dev data, coverage or .env')
  })

  const project = join(work, 'project')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'stranger', version: '1.0.0', private: true }))
  const install = await exec('npm', ['install', join(out, packed.filename), '--no-audit', '--no-fund', '--prefer-offline'], project, 100_000)
  t.comment(`npm install of the tarball: ${install.ms} ms`)
  if (install.code !== 0) throw new Error(failed('npm install', install))
  const installed = join(project, 'node_modules', 'gatecast')

  await t.test('every source map and map comment points at a shipped file', async t => {
    const dangling: string[] = []
    for (const map of files.filter(f => f.endsWith('.map'))) {
      const { sources, sourceRoot } = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[], sourceRoot?: string }
      for (const source of sources) {
        const target = posix.join(posix.dirname(map), sourceRoot ?? '', source)
        if (!shipped.has(target)) dangling.push(`${map} → ${target}`)
      }
    }
    for (const js of files.filter(f => f.endsWith('.js'))) {
      const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(installed, js), 'utf8'))
      if (m !== null && !m[1].startsWith('data:') && !shipped.has(posix.join(posix.dirname(js), m[1]))) dangling.push(`${js} → ${m[1]}`)
    }
    t.same(dangling, [], 'no map or map comment points at a file the package lacks')
  })

  await t.test('npx gatecast --help', async t => {
    const help = await exec('npx', ['--no', '--', 'gatecast', '--help'], project, 30_000)
    t.equal(help.code, 0, `exit 0 (${help.stderr.slice(0, 500)})`)
    t.match(help.stdout, /^usage:/)
    t.match(help.stdout, /gatecast serve/)
    t.match(help.stdout, /gatecast token NAME/)
  })

  await t.test('gatecast serve answers GET /health and stops on SIGTERM', async t => {
    const cwd = join(work, 'run')
    mkdirSync(cwd)
    const bin = join(project, 'node_modules', '.bin', 'gatecast')
    const server = await startProcess(t, bin, ['serve'], {
      cwd,
      env: childEnv({ HOST: '127.0.0.1', JWT_SECRET: 'packaging-test-secret-0123456789abcdef' }),
      timeoutMs: 30_000
    })
    t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'listening on the loopback, on the port it chose')
    const res = await fetch(`${server.url}/health`)
    t.equal(res.status, 200)
    t.same(await res.json(), { status: 'ok' })
    const ended = await server.stop('SIGTERM')
    t.same(ended, { code: 0, signal: null }, 'exits 0 on SIGTERM')
  })
})
