import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker, type Broker } from '@trellis/broker'
import { topics } from '@trellis/device-sdk'
import { testLogger } from '../support/stack.js'
import { rawConnection, rawPackets, type RawConnection } from '../support/mqtt.js'
import { eventually } from '../support/wait.js'

// While an answer is awaited (the hub: an API request), the broker reads
// device connections in slices of the event loop (broker/src/read-slices.ts):
// a socket of anything else that became readable with them — the API's, say —
// is served after one slice, not after every device's telemetry is handled. Broker, devices and the other socket
// share this process's loop, so one busy-wait puts all their bytes in front of
// the same poll phase.

const devices = 40
const perDevice = 3
const handlingMs = 1

let broker: Broker | undefined
const conns: RawConnection[] = []
const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const c of conns.splice(0)) c.socket.destroy()
  for (const close of closers.splice(0)) await close()
  await broker?.close()
  broker = undefined
})

function busyWait (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* spin: this is the handling's cost */ }
}

/**
 * Every device sends its readings at once, and so does one other socket; the
 * broker's handling costs `handlingMs` per reading. Returns how many readings
 * had been handled when the other socket was served, and the readings handled.
 */
async function burst (readSliceMs: number, answerAwaited: boolean): Promise<{ handledBeforeOther: number, handled: Map<string, number[]>, deferred: number }> {
  broker = await createBroker({ authenticateDevice: () => true, logger: testLogger(), readSliceMs })
  const { port } = await broker.listen({ port: 0 })
  const handled = new Map<string, number[]>()
  let count = 0
  broker.beforeAck = (deviceId, packet, done) => {
    busyWait(handlingMs)
    count++
    handled.set(deviceId, [...handled.get(deviceId) ?? [], JSON.parse(packet.payload.toString()).seq as number])
    done()
  }
  // The other socket: a plain TCP server in the same process, standing for the API.
  let handledBeforeOther = -1
  const other = net.createServer((s) => s.once('data', () => { handledBeforeOther = count; s.end() }))
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise((resolve) => other.close(() => resolve())))
  const otherClient = net.connect((other.address() as net.AddressInfo).port, '127.0.0.1')
  await new Promise((resolve) => otherClient.once('connect', resolve))
  closers.push(async () => { otherClient.destroy() })

  for (let d = 0; d < devices; d++) {
    const id = `dev-${d}`
    const raw = await rawConnection(port, rawPackets.connect({ clientId: id, username: id, password: 's' }))
    conns.push(raw)
    expect(await raw.connack).toBe(0)
  }
  // Every device's readings, then the other socket's request, all written before the loop turns.
  conns.forEach((raw, d) => {
    const packets = Array.from({ length: perDevice }, (_, seq) => rawPackets.publish(topics.telemetry(`dev-${d}`), JSON.stringify({ seq })))
    raw.socket.write(Buffer.concat(packets))
  })
  const answered = answerAwaited ? broker.awaitAnswer() : () => {}
  otherClient.write('ping')
  busyWait(20)
  await eventually(() => count, (n) => n === devices * perDevice, { what: 'every reading handled' })
  answered()
  expect(handledBeforeOther).toBeGreaterThanOrEqual(0)
  return { handledBeforeOther, handled, deferred: broker.stats.readsDeferred }
}

describe('reading device connections in slices of the event loop', () => {
  it('serves another socket after one slice of device readings, and loses and reorders none', async () => {
    const { handledBeforeOther, handled, deferred } = await burst(5, true)
    // A slice of 5 ms takes two devices' readings (3 ms each), a third at most if it starts just in time.
    expect(handledBeforeOther).toBeLessThanOrEqual(3 * perDevice)
    expect(deferred).toBeGreaterThan(0)
    expect(broker!.stats.readBacklog).toBe(0)
    expect(handled.size).toBe(devices)
    for (const seqs of handled.values()) expect(seqs).toEqual([0, 1, 2])
  })

  it('with readSliceMs 0 handles every device before the other socket (what the slices change)', async () => {
    const { handledBeforeOther, deferred } = await burst(0, true)
    expect(handledBeforeOther).toBe(devices * perDevice)
    expect(deferred).toBe(0)
  })

  it('reads as connections come while no answer is awaited: ingest alone pays nothing for the slices', async () => {
    const { handledBeforeOther, deferred } = await burst(5, false)
    expect(handledBeforeOther).toBe(devices * perDevice)
    expect(deferred).toBe(0)
  })
})
