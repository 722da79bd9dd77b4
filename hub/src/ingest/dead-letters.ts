/** A payload the hub could not use, with the reason, kept so its sender can see why. */
export interface DeadLetter {
  at: string
  deviceId: string
  modelId: string | null
  makerId: string | null
  topic: string
  /** Why, cut to `reasonChars`. */
  reason: string
  /** The payload as text, cut to `payloadBytes` (base64 when it is not UTF-8 text). */
  payload: string
  bytes: number
}

/** What rejections may cost. A device chooses its payloads, so each bound holds whatever it sends. */
export interface DeadLetterLimits {
  /** A reason longer than this is cut, saying how much was left out. Default 1024 characters. */
  reasonChars: number
  /** How much of a payload is kept. Default 512 bytes. */
  payloadBytes: number
  /** Rejections kept per maker, all its models together, oldest dropped first. Default 1 MiB. */
  perMakerBytes: number
  /** Rejections kept in all, oldest dropped first. Default 32 MiB. */
  totalBytes: number
}

export const defaultDeadLetterLimits: Readonly<DeadLetterLimits> = { reasonChars: 1024, payloadBytes: 512, perMakerBytes: 1024 * 1024, totalBytes: 32 * 1024 * 1024 }

/** Rejections of devices the hub does not know are kept under this key, within the same per-maker budget. */
const noMaker = ''

interface Kept { letter: DeadLetter, size: number }

/**
 * The most recent rejections, within a byte budget per maker and in all: a
 * flood of bad payloads, over any number of models or accounts, costs a
 * bounded amount of memory. Insertion-ordered maps make dropping the oldest
 * O(1).
 */
export class DeadLetters {
  readonly limits: Readonly<DeadLetterLimits>
  private readonly everything = new Map<number, Kept>()
  private readonly byMaker = new Map<string, { bytes: number, letters: Map<number, Kept> }>()
  private seq = 0
  /** Bytes kept in all (an estimate: two per character, plus the object). */
  bytes = 0
  total = 0

  constructor (limits: Partial<DeadLetterLimits> = {}) {
    this.limits = { ...defaultDeadLetterLimits, ...limits }
  }

  record (entry: Omit<DeadLetter, 'at' | 'payload' | 'bytes'>, payload: Buffer): DeadLetter {
    const reason = cut(entry.reason, this.limits.reasonChars)
    const letter: DeadLetter = { ...entry, reason, at: new Date().toISOString(), payload: preview(payload, this.limits.payloadBytes), bytes: payload.length }
    const kept: Kept = { letter, size: sizeOf(letter) }
    this.total++
    const seq = this.seq++
    const makerKey = entry.makerId ?? noMaker
    let maker = this.byMaker.get(makerKey)
    if (!maker) this.byMaker.set(makerKey, maker = { bytes: 0, letters: new Map() })
    maker.letters.set(seq, kept)
    maker.bytes += kept.size
    this.everything.set(seq, kept)
    this.bytes += kept.size
    // Deleting from a Map while iterating it is safe: the oldest go first.
    for (const oldest of maker.letters.keys()) if (maker.bytes > this.limits.perMakerBytes) this.drop(oldest); else break
    for (const oldest of this.everything.keys()) if (this.bytes > this.limits.totalBytes) this.drop(oldest); else break
    return letter
  }

  /** Newest first. Given the model's maker, only that maker's rejections are looked through. */
  forModel (modelId: string, limit = 100, makerId?: string): DeadLetter[] {
    const out: DeadLetter[] = []
    const kept = makerId === undefined ? this.everything : this.byMaker.get(makerId)?.letters
    for (const { letter } of kept?.values() ?? []) if (letter.modelId === modelId) out.push(letter)
    return out.slice(-limit).reverse()
  }

  recent (limit = 100): DeadLetter[] {
    return [...this.everything.values()].slice(-limit).map((k) => k.letter).reverse()
  }

  /** Bytes kept for a maker's rejections. */
  bytesOf (makerId: string): number {
    return this.byMaker.get(makerId)?.bytes ?? 0
  }

  private drop (seq: number): void {
    const kept = this.everything.get(seq)
    if (!kept) return
    this.everything.delete(seq)
    this.bytes -= kept.size
    const makerKey = kept.letter.makerId ?? noMaker
    const maker = this.byMaker.get(makerKey)
    if (!maker) return
    maker.letters.delete(seq)
    maker.bytes -= kept.size
    if (maker.letters.size === 0) this.byMaker.delete(makerKey)
  }
}

function sizeOf (l: DeadLetter): number {
  return 2 * (l.reason.length + l.payload.length + l.topic.length + l.deviceId.length + l.at.length + (l.modelId?.length ?? 0) + (l.makerId?.length ?? 0)) + 160
}

function cut (text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)} … (${text.length - max} more characters)`
}

function preview (payload: Buffer, max: number): string {
  const head = payload.subarray(0, max)
  const text = head.toString('utf8')
  return text.includes('\uFFFD') ? `base64:${head.toString('base64')}` : text
}
