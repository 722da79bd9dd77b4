/** A payload the hub could not use, with the reason, kept so its sender can see why. */
export interface DeadLetter {
  at: string
  deviceId: string
  modelId: string | null
  makerId: string | null
  topic: string
  reason: string
  /** The payload as text, cut to 512 characters (base64 when it is not UTF-8 text). */
  payload: string
  bytes: number
}

/**
 * The most recent rejections, per model and overall, in fixed-size rings:
 * a flood of bad payloads costs a bounded amount of memory.
 */
export class DeadLetters {
  private readonly all: DeadLetter[] = []
  private readonly byModel = new Map<string, DeadLetter[]>()
  total = 0

  constructor (private readonly perModel = 100, private readonly overall = 1000) {}

  record (entry: Omit<DeadLetter, 'at' | 'payload' | 'bytes'>, payload: Buffer): DeadLetter {
    const letter: DeadLetter = { ...entry, at: new Date().toISOString(), payload: preview(payload), bytes: payload.length }
    this.total++
    push(this.all, letter, this.overall)
    if (entry.modelId) {
      let ring = this.byModel.get(entry.modelId)
      if (!ring) this.byModel.set(entry.modelId, ring = [])
      push(ring, letter, this.perModel)
    }
    return letter
  }

  /** Newest first. */
  forModel (modelId: string, limit = this.perModel): DeadLetter[] {
    return (this.byModel.get(modelId) ?? []).slice(-limit).reverse()
  }

  recent (limit = 100): DeadLetter[] {
    return this.all.slice(-limit).reverse()
  }
}

function push (ring: DeadLetter[], letter: DeadLetter, max: number): void {
  ring.push(letter)
  if (ring.length > max) ring.splice(0, ring.length - max)
}

function preview (payload: Buffer): string {
  const head = payload.subarray(0, 512)
  const text = head.toString('utf8')
  return text.includes('\uFFFD') ? `base64:${head.toString('base64')}` : text
}
