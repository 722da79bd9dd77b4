import type { AedesPublishPacket } from 'aedes'
import { topics } from '@trellis/device-sdk'
import type { TestStack } from './stack.js'
import type { ApiClient } from './api.js'

/**
 * Sends a command through the owner API (`POST /v1/devices/{id}/commands`)
 * and captures the payload the hub put on the device's commands topic, in
 * the model's dialect, with an in-process subscription on the broker.
 */
export async function commandThroughApi (stack: TestStack, api: ApiClient, token: string, deviceId: string, body: Record<string, unknown>): Promise<{ sent: string, status: number, answer: any }> {
  const { aedes } = stack.hub.broker
  const filter = topics.commands(deviceId)
  const seen: string[] = []
  const spy = (packet: AedesPublishPacket, done: () => void) => {
    seen.push((packet.payload as Buffer).toString('utf8'))
    done()
  }
  await new Promise<void>((resolve) => aedes.subscribe(filter, spy as never, resolve))
  try {
    const res = await api.post(`/v1/devices/${deviceId}/commands?wait=10s`, body, token)
    return { sent: seen[0] ?? '', status: res.status, answer: res.body }
  } finally {
    await new Promise<void>((resolve) => aedes.unsubscribe(filter, spy as never, resolve))
  }
}
