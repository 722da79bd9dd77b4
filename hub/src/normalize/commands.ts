import { Ack, type Command } from '@trellis/device-sdk'
import type { CompiledModel } from './model.js'

import { CommandEncodeError, type DeviceMessage } from './command-mapping.js'

export { CommandEncodeError, type DeviceMessage } from './command-mapping.js'

/**
 * The way back: a canonical command as the payload this model's devices
 * understand. Canonical (SDK) models get the canonical JSON envelope; mapped
 * models get their dialect. Throws a CommandEncodeError (a 4xx for the
 * caller) when the model's mapping cannot express the command.
 */
export function encodeMessages (model: CompiledModel, command: Command): DeviceMessage[] {
  if (model.mapping) return model.mapping.encodeCommand(command)
  return [{ id: command.id, payload: Buffer.from(JSON.stringify(command)), sets: command.set ?? {} }]
}

/** The one message a command becomes; a CommandEncodeError when the mapping sends it as several (see encodeMessages). */
export function encodeCommand (model: CompiledModel, command: Command): Buffer {
  const messages = encodeMessages(model, command)
  if (messages.length !== 1) throw new CommandEncodeError(`model ${model.name} sends this command as ${messages.length} messages`)
  return messages[0].payload
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
