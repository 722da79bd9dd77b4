import { Ack, type Command } from '@trellis/device-sdk'
import type { CompiledModel } from './model.js'

export { CommandEncodeError } from './command-mapping.js'

/**
 * The way back: a canonical command as the payload this model's devices
 * understand. Canonical (SDK) models get the canonical JSON envelope; mapped
 * models get their dialect. Throws a CommandEncodeError (a 4xx for the
 * caller) when the model's mapping cannot express the command.
 */
export function encodeCommand (model: CompiledModel, command: Command): Buffer {
  if (model.mapping) return model.mapping.encodeCommand(command)
  return Buffer.from(JSON.stringify(command))
}

export type DecodedAck = { ok: true, ack: Ack } | { ok: false, reason: string }

/** A device's ack payload as a canonical Ack, by its model's dialect. */
export function decodeAck (model: CompiledModel, payload: Buffer): DecodedAck {
  if (model.mapping) return model.mapping.decodeAck(payload)
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
