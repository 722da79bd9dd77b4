import net from 'node:net'
import type { MqttClient } from 'mqtt'

/** The SUBACK return codes for `filters` (128 = refused), whether mqtt.js treats a refusal as an error or not. */
export async function subackCodes (client: MqttClient, filters: string[]): Promise<number[]> {
  return await new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const packet = (err as { packet?: { granted?: number[] } } | null)?.packet
      if (packet?.granted) return resolve(packet.granted)
      if (err) return reject(err)
      resolve((granted ?? []).map((g) => g.qos))
    })
  })
}

/**
 * Hand-built MQTT 3.1.1 packets, for what a well-behaved client library will
 * not send: an empty client id, a lying length, a socket that stops reading.
 */
export const rawPackets = {
  connect (opts: { clientId: string, username?: string, password?: string, clean?: boolean, keepalive?: number }): Buffer {
    const flags = (opts.username !== undefined ? 0x80 : 0) | (opts.password !== undefined ? 0x40 : 0) | (opts.clean === false ? 0 : 0x02)
    const keepalive = opts.keepalive ?? 60
    const body = Buffer.concat([
      str('MQTT'), Buffer.from([4, flags, keepalive >> 8, keepalive & 0xff]), str(opts.clientId),
      ...(opts.username !== undefined ? [str(opts.username)] : []),
      ...(opts.password !== undefined ? [str(opts.password)] : []),
    ])
    return packet(0x10, body)
  },
  subscribe (messageId: number, filter: string, qos = 0): Buffer {
    return packet(0x82, Buffer.concat([Buffer.from([messageId >> 8, messageId & 0xff]), str(filter), Buffer.from([qos])]))
  },
  publish (topic: string, payload: Buffer | string, opts: { qos?: 0 | 1 | 2, messageId?: number } = {}): Buffer {
    const qos = opts.qos ?? 0
    const id = opts.messageId ?? 1
    const head = Buffer.concat([str(topic), ...(qos > 0 ? [Buffer.from([id >> 8, id & 0xff])] : [])])
    return packet(0x30 | (qos << 1), Buffer.concat([head, Buffer.from(payload)]))
  },
  /** Only the fixed header of a PUBLISH whose remaining length is `declared`: the body is for the caller to (not) send. */
  publishHeader (declared: number): Buffer {
    return Buffer.concat([Buffer.from([0x30]), remainingLength(declared)])
  },
}

function str (s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b])
}

function remainingLength (n: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return Buffer.from(bytes)
}

function packet (first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body])
}

export interface RawConnection {
  socket: net.Socket
  /** Resolves with the CONNACK return code, or null if the socket closed first. */
  connack: Promise<number | null>
  /** Resolves with the SUBACK return codes of the next SUBACK. */
  nextSuback (): Promise<number[]>
  /** Resolves when the broker (or anyone) closes the socket. */
  closed: Promise<void>
}

/** A bare TCP connection to the broker that speaks only what it is told to. */
export async function rawConnection (port: number, first?: Buffer): Promise<RawConnection> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let buffered = Buffer.alloc(0)
  const waiting: Array<{ type: number, resolve: (body: Buffer | null) => void }> = []
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk])
    for (;;) {
      if (buffered.length < 2) return
      let len = 0; let mult = 1; let i = 1
      for (; i < buffered.length; i++) {
        len += (buffered[i] & 0x7f) * mult
        mult *= 128
        if ((buffered[i] & 0x80) === 0) break
      }
      if (i >= buffered.length || buffered.length < i + 1 + len) return
      const type = buffered[0] >> 4
      const body = buffered.subarray(i + 1, i + 1 + len)
      buffered = buffered.subarray(i + 1 + len)
      const w = waiting.findIndex((x) => x.type === type)
      if (w >= 0) waiting.splice(w, 1)[0].resolve(body)
    }
  })
  void closed.then(() => { for (const w of waiting.splice(0)) w.resolve(null) })
  const next = (type: number) => new Promise<Buffer | null>((resolve) => { waiting.push({ type, resolve }) })
  const connack = next(2).then((b) => b ? b[1] : null)
  if (first) socket.write(first)
  return {
    socket,
    connack,
    nextSuback: () => next(9).then((b) => b ? [...b.subarray(2)] : []),
    closed,
  }
}
