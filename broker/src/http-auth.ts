export interface HttpDeviceAuthOptions {
  /** The hub's `POST /internal/mqtt/auth` URL. */
  url: string
  /** The service secret the hub was given; sent as bearer token. */
  serviceSecret: string
  /** How long to wait for the hub's answer. Default 5000 ms. */
  timeoutMs?: number
}

/**
 * `authenticateDevice` for a broker that runs apart from the hub: asks the
 * hub, which holds the registry. A hub that does not answer makes the promise
 * reject, so the broker answers "server unavailable" and does not count a
 * failed attempt against the device.
 */
export function authenticateDevicesOverHttp (opts: HttpDeviceAuthOptions): (deviceId: string, secret: string) => Promise<boolean> {
  return async (deviceId, secret) => {
    const response = await fetch(opts.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.serviceSecret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: deviceId, username: deviceId, password: secret }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
    })
    if (response.status !== 200) throw new Error(`the hub's auth endpoint answered ${response.status}`)
    const answer = await response.json() as { result?: unknown }
    return answer.result === 'allow'
  }
}
