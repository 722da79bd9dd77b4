import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'

// The image's HEALTHCHECK: GET /healthz on this container's own API, plain or
// TLS as configured; exits 0 on 200, 1 otherwise (503 while InfluxDB is down).
// Its own certificate may be self-signed: this checks liveness, not trust.
const tls = Boolean(process.env.TLS_CERT_FILE && process.env.TLS_KEY_FILE)
const request = tls ? httpsRequest : httpRequest
const req = request({ host: '127.0.0.1', port: Number(process.env.PORT || 8080), path: '/healthz', timeout: 2500, rejectUnauthorized: false }, (res) => {
  res.resume()
  process.exit(res.statusCode === 200 ? 0 : 1)
})
req.on('timeout', () => req.destroy(new Error('timeout')))
req.on('error', () => process.exit(1))
req.end()
