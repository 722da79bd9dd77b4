import type { AedesPublishPacket } from 'aedes'
import { topics, type Command } from '@trellis/device-sdk'
import type { TestStack } from './stack.js'
import { encodeCommand, decodeAck, type DecodedAck } from '../../hub/src/normalize/commands.js'

/**
 * Sends a canonical command to a device in its model's dialect, through the
 * hub's broker, and resolves with the device's ack decoded by the same model.
 * Stands in for the commands API, which is built on the same two functions.
 */
export async function commandThroughDialect (stack: TestStack, deviceId: string, command: Command, timeoutMs = 10_000): Promise<{ sent: string, ack: DecodedAck }> {
  const { aedes } = stack.hub.broker
  const ctx = await stack.hub.directory.get(deviceId)
  if (!ctx) throw new Error(`no device ${deviceId}`)
  const payload = encodeCommand(ctx.model, command)
  const filter = topics.acks(deviceId)
  let deliver: (packet: AedesPublishPacket, done: () => void) => void = () => {}
  const acked = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack from ${deviceId} within ${timeoutMs} ms`)), timeoutMs)
    deliver = (packet, done) => {
      done()
      clearTimeout(timer)
      resolve(packet.payload as Buffer)
    }
  })
  await new Promise<void>((resolve) => aedes.subscribe(filter, deliver as never, resolve))
  try {
    await new Promise<void>((resolve, reject) => aedes.publish({ cmd: 'publish', topic: topics.commands(deviceId), payload, qos: 1, retain: false, dup: false } as never, (err?: Error) => err ? reject(err) : resolve()))
    const ack = await acked
    return { sent: payload.toString('utf8'), ack: decodeAck(ctx.model, ack) }
  } finally {
    await new Promise<void>((resolve) => aedes.unsubscribe(filter, deliver as never, resolve))
  }
}
