import type { MqttClient } from 'mqtt'

/**
 * Ends an mqtt.js client within `timeoutMs`, whatever the broker does.
 *
 * mqtt.js's own unforced `end()` waits for every QoS 1 publish in flight to be
 * acknowledged, and once it has begun it no longer reconnects: with the broker
 * gone, or one that never answers, it never returns, and the callbacks of
 * those publishes are never called.
 *
 * Here what is in flight has until the deadline to be acknowledged (mqtt.js
 * still reconnects to re-send it). Then, if connected, `lastWords` runs (a
 * retained goodbye, say), and the client disconnects: with DISCONNECT when
 * connected, cutting a socket the broker does not close by the deadline.
 * Every publish still unacknowledged is settled with an error first.
 * Resolves with how many there were.
 */
export async function endWithin (client: MqttClient, timeoutMs: number, lastWords?: () => Promise<unknown>): Promise<number> {
  const deadline = Date.now() + timeoutMs
  const left = () => Math.max(0, deadline - Date.now())
  await inFlightAcknowledged(client, left())
  if (lastWords && client.connected) await within(left(), lastWords())
  const unacknowledged = Object.keys(client.outgoing)
  // Its callback gets mqtt.js's "Message removed"; callers tell their own story.
  for (const id of unacknowledged) client.removeOutgoingMessage(Number(id))
  const ended = client.endAsync(!client.connected)
  if (await within(left(), ended) === 'late') {
    client.stream.destroy()
    await ended
  }
  return unacknowledged.length
}

/** Resolves once the broker has acknowledged every publish sent so far, or after `ms`. */
async function inFlightAcknowledged (client: MqttClient, ms: number): Promise<void> {
  const empty = () => Object.keys(client.outgoing).length === 0
  if (empty()) return
  await new Promise<void>((resolve) => {
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.off('packetreceive', check)
      resolve()
    }
    // 'packetreceive' comes before mqtt.js handles the packet: look once it has.
    const check = () => { setImmediate(() => { if (empty()) done() }) }
    const timer = setTimeout(done, ms)
    client.on('packetreceive', check)
  })
}

/** Resolves with `'done'` once `work` settles, or with `'late'` after `ms`, whichever comes first. */
async function within (ms: number, work: Promise<unknown>): Promise<'done' | 'late'> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), ms) })
  try {
    return await Promise.race([work.then(() => 'done' as const, () => 'done' as const), late])
  } finally {
    clearTimeout(timer)
  }
}
