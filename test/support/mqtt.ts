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
