import type { Aedes } from 'aedes'
import type { BrokerStats } from './options.js'

interface OutgoingPersistence {
  outgoingEnqueue (sub: { clientId: string }, packet: unknown): Promise<void>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
  outgoingClearMessageId (client: { id: string }, packet: unknown): Promise<unknown>
}

/**
 * aedes' persistence queues QoS 1/2 messages per client without limit. Every
 * message enters through `outgoingEnqueue*` and leaves through
 * `outgoingClearMessageId`, so counting at those two doors bounds the queue.
 */
export function boundOutgoingQueues (aedes: Aedes, maxFor: (clientId: string) => number, stats: BrokerStats): void {
  const persistence = (aedes as unknown as { persistence: OutgoingPersistence }).persistence
  const queued = new Map<string, number>()
  const admit = (clientId: string): boolean => {
    const n = queued.get(clientId) ?? 0
    if (n >= maxFor(clientId)) {
      stats.queueDropped++
      return false
    }
    queued.set(clientId, n + 1)
    return true
  }
  const enqueue = persistence.outgoingEnqueue.bind(persistence)
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence)
  const clear = persistence.outgoingClearMessageId.bind(persistence)
  persistence.outgoingEnqueue = async (sub, packet) => {
    if (admit(sub.clientId)) await enqueue(sub, packet)
  }
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = subs.filter((sub) => admit(sub.clientId))
    if (admitted.length > 0) await enqueueCombi(admitted, packet)
  }
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet)
    if (removed) {
      const n = (queued.get(client.id) ?? 1) - 1
      if (n > 0) queued.set(client.id, n)
      else queued.delete(client.id)
    }
    return removed
  }
}
