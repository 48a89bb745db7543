// The process: logger, listen, signals and graceful close.
import closeWithGrace from 'close-with-grace'
import { build, type BuildOptions } from './app.ts'
import { ConfigError, readConfig } from './config.ts'

export async function start (opts: BuildOptions = {}): Promise<void> {
  let config
  try {
    config = readConfig(opts.config, opts.env, opts.cwd)
  } catch (err) {
    fail(err)
  }
  const app = await build({ ...opts, resolvedConfig: config }).catch(fail)
  // sockets get shutdownTimeout to close; the process a little more to flush and exit
  closeWithGrace({ delay: config.shutdownTimeout * 1000 + 5000 }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })
  try {
    await app.listen({ host: config.host, port: config.port })
  } catch (err) {
    fail(err)
  }
}

function fail (err: unknown): never {
  // configuration mistakes are the user's to fix: one line, no trace
  if (err instanceof ConfigError) process.stderr.write(`gatecast: ${err.message}\n`)
  else process.stderr.write(`gatecast: failed to start: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await start()
}
