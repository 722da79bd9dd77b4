import { Ack, type Command } from '@trellis/device-sdk'
import type { CompiledModel } from '../registry/directory.js'

/**
 * The way back: a canonical command as the payload this model's devices
 * understand. Canonical (SDK) models get the canonical JSON envelope.
 */
export function encodeCommand (model: CompiledModel, command: Command): Buffer {
  void model
  return Buffer.from(JSON.stringify(command))
}

export type DecodedAck = { ok: true, ack: Ack } | { ok: false, reason: string }

/** A device's ack payload as a canonical Ack, by its model's dialect. */
export function decodeAck (model: CompiledModel, payload: Buffer): DecodedAck {
  void model
  let json: unknown
  try {
    json = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `ack is not JSON: ${(err as Error).message}` }
  }
  const parsed = Ack.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return { ok: false, reason: `ack is not {"id","status":"ok"|"error"}: ${issue.path.join('.') || '(root)'}: ${issue.message}` }
  }
  return { ok: true, ack: parsed.data }
}
