// The application backend of the `backend` bench server: answers every event
// at once with an empty 200, as a backend that allows everything would. Its
// own process, so its CPU is not counted as Gatecast's.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const server = createServer((req, res) => {
  // the body is read (a real backend checks its signature) and dropped
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-length': '0' })
    res.end()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port })
})
// goes with the Gatecast process that started it
process.on('disconnect', () => process.exit(0))
