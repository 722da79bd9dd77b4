// Just over 300 lines: segments, appends, the replay cursor and the crash-torn
// tail share one file handle and one depth count. The record codec is apart
// (spool-record.ts).
import fs from 'node:fs'
import path from 'node:path'
import { EventEmitter } from 'node:events'
import { pino, type Logger } from 'pino'
import { countMask, decodeRecord, encodeRecord, headerBytes } from './spool-record.js'

export interface SpoolOptions {
  /** Folder of the segments; created when missing. */
  dir: string
  /** Most bytes the spool may hold on disk; appends beyond are refused. Default 1 GiB. */
  maxBytes?: number
  /** Start a new segment once the current one is this large. Default 16 MiB. */
  segmentBytes?: number
  /**
   * fdatasync each append before reporting it durable. Default true: without
   * it a power cut (not a process crash) could lose acknowledged readings.
   */
  fsync?: boolean
  logger?: Logger
}

/** One appended batch of line-protocol lines, as replay hands it back. */
export interface SpoolRecord {
  lines: string[]
  bytes: number
}

export interface SpoolDepth {
  points: number
  bytes: number
  segments: number
}

const segmentName = /^(\d{16})\.seg$/
const fillWarnings = [0.5, 0.8, 0.95]

interface Segment {
  seq: number
  file: string
  /** Bytes of whole records in the file. */
  size: number
  points: number
}

/**
 * An append-only, checksummed, size-bounded queue of line-protocol batches on
 * disk, for points InfluxDB could not take. Appends go to the newest segment;
 * replay reads the oldest record first and removes a segment once replayed.
 * The replay position survives a restart in a small `cursor` file; a record
 * replayed twice is harmless, since every line carries its own timestamp.
 *
 * Events: `fill` (ratio: number) when the spool crosses 50, 80 or 95 % full;
 * `corrupt` (file: string, offset: number) when a record fails its checksum.
 */
export class Spool extends EventEmitter {
  readonly dir: string
  readonly maxBytes: number
  private readonly segmentBytes: number
  private readonly fsync: boolean
  private readonly log: Logger
  private readonly segments: Segment[] = []
  private fd: number | null = null
  /** Offset of the next record to replay in the oldest segment. */
  private cursor = 0
  private points = 0
  private bytes = 0
  private warnedAt = 0
  /** Records skipped because their checksum or length was wrong. */
  corruptRecords = 0

  private constructor (opts: SpoolOptions) {
    super()
    this.dir = path.resolve(opts.dir)
    this.maxBytes = opts.maxBytes ?? 1024 ** 3
    this.segmentBytes = opts.segmentBytes ?? 16 * 1024 ** 2
    this.fsync = opts.fsync ?? true
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'spool' })
  }

  /** Opens the spool in `dir`, recovering what a previous process left there. */
  static open (opts: SpoolOptions): Spool {
    const spool = new Spool(opts)
    spool.recover()
    return spool
  }

  get depth (): SpoolDepth {
    return { points: this.points, bytes: this.bytes, segments: this.segments.length }
  }

  get empty (): boolean {
    return this.points === 0
  }

  /**
   * Appends a batch; once it returns true the lines survive a crash of this
   * process. Returns false, appending nothing, when the spool is full.
   */
  append (lines: readonly string[]): boolean {
    if (lines.length === 0) return true
    const record = encodeRecord(lines)
    if (this.bytes + record.length > this.maxBytes) {
      this.warnFill(1)
      return false
    }
    let active = this.segments.at(-1)
    if (!active || this.fd === null || active.size >= this.segmentBytes) active = this.startSegment()
    fs.writeSync(this.fd!, record)
    if (this.fsync) fs.fdatasyncSync(this.fd!)
    active.size += record.length
    active.points += lines.length
    this.points += lines.length
    this.bytes += record.length
    this.warnFill(this.bytes / this.maxBytes)
    return true
  }

  /** The oldest record not yet replayed, or null when the spool is empty. */
  peek (): SpoolRecord | null {
    for (;;) {
      const oldest = this.segments[0]
      if (!oldest) return null
      if (this.cursor >= oldest.size) {
        if (!this.retireOldest()) return null
        continue
      }
      const record = this.readAt(oldest, this.cursor)
      if (record) return record
      // A bad checksum means the length cannot be trusted either: skip the rest of this segment.
      this.corruptRecords++
      this.emit('corrupt', oldest.file, this.cursor)
      this.log.error({ file: oldest.file, offset: this.cursor }, 'spool record failed its checksum; skipping the rest of the segment')
      this.dropRest(oldest)
    }
  }

  /** Marks the record last returned by `peek` as replayed. */
  ack (record: SpoolRecord): void {
    const oldest = this.segments[0]
    if (!oldest) return
    this.cursor += record.bytes
    oldest.points -= record.lines.length
    this.points -= record.lines.length
    this.bytes -= record.bytes
    if (this.cursor >= oldest.size) this.retireOldest()
    else this.saveCursor()
    if (this.bytes / this.maxBytes < 0.5) this.warnedAt = 0
  }

  close (): void {
    if (this.fd !== null) fs.closeSync(this.fd)
    this.fd = null
  }

  private startSegment (): Segment {
    if (this.fd !== null) fs.closeSync(this.fd)
    const seq = (this.segments.at(-1)?.seq ?? 0) + 1
    const file = path.join(this.dir, `${String(seq).padStart(16, '0')}.seg`)
    this.fd = fs.openSync(file, 'a')
    const segment: Segment = { seq, file, size: 0, points: 0 }
    this.segments.push(segment)
    return segment
  }

  /** Removes the fully replayed oldest segment; false when it is the one being appended to and was only emptied. */
  private retireOldest (): boolean {
    const oldest = this.segments[0]
    if (this.segments.length === 1 && this.fd !== null) {
      // Appends continue here: empty it in place rather than delete it under the open descriptor.
      fs.ftruncateSync(this.fd, 0)
      oldest.size = 0
      oldest.points = 0
      this.cursor = 0
      this.saveCursor()
      return false
    }
    this.segments.shift()
    fs.rmSync(oldest.file, { force: true })
    this.cursor = 0
    this.saveCursor()
    return true
  }

  private dropRest (segment: Segment): void {
    this.points -= segment.points
    this.bytes -= segment.size - this.cursor
    segment.points = 0
    this.cursor = segment.size
  }

  private readAt (segment: Segment, offset: number): SpoolRecord | null {
    const fd = fs.openSync(segment.file, 'r')
    try {
      const header = Buffer.alloc(headerBytes)
      if (fs.readSync(fd, header, 0, headerBytes, offset) < headerBytes) return null
      const length = header.readUInt32LE(0)
      if (offset + headerBytes + length > segment.size) return null
      const payload = Buffer.alloc(length)
      if (fs.readSync(fd, payload, 0, length, offset + headerBytes) < length) return null
      const lines = decodeRecord(header, payload)
      return lines && { lines, bytes: headerBytes + length }
    } finally {
      fs.closeSync(fd)
    }
  }

  /**
   * Rebuilds the segment list from disk. A record cut short by a crash
   * mid-append is truncated away; it was never reported durable.
   */
  private recover (): void {
    fs.mkdirSync(this.dir, { recursive: true })
    const names = fs.readdirSync(this.dir).filter((n) => segmentName.test(n)).sort()
    for (const name of names) {
      const file = path.join(this.dir, name)
      const seq = Number(segmentName.exec(name)![1])
      const segment: Segment = { seq, file, size: 0, points: 0 }
      const fd = fs.openSync(file, 'r+')
      try {
        const fileSize = fs.fstatSync(fd).size
        const header = Buffer.alloc(headerBytes)
        let offset = 0
        let last = -1
        let lastCount = 0
        while (offset + headerBytes <= fileSize) {
          fs.readSync(fd, header, 0, headerBytes, offset)
          const length = header.readUInt32LE(0)
          const count = header.readUInt32LE(4) & countMask
          if (count === 0 || offset + headerBytes + length > fileSize) break
          segment.points += count
          last = offset
          lastCount = count
          offset += headerBytes + length
        }
        // Only the newest segment's last record can be torn (appends are sequential, fdatasynced
        // before they count): if it fails its checksum it was never reported durable.
        if (name === names.at(-1) && last >= 0 && offset === fileSize && !this.wholeAt(fd, last, offset - last)) {
          segment.points -= lastCount
          offset = last
        }
        if (offset < fileSize) {
          this.log.warn({ file, kept: offset, cut: fileSize - offset }, 'spool segment ends in a partial record (a crash mid-append); cutting it off')
          fs.ftruncateSync(fd, offset)
        }
        segment.size = offset
      } finally {
        fs.closeSync(fd)
      }
      if (segment.size === 0) {
        fs.rmSync(file, { force: true })
        continue
      }
      this.segments.push(segment)
      this.points += segment.points
      this.bytes += segment.size
    }
    this.restoreCursor()
    if (this.points > 0) this.log.warn({ ...this.depth }, 'spool holds points from before the restart; replaying them')
  }

  private wholeAt (fd: number, offset: number, bytes: number): boolean {
    const record = Buffer.alloc(bytes)
    if (fs.readSync(fd, record, 0, bytes, offset) < bytes) return false
    return decodeRecord(record.subarray(0, headerBytes), record.subarray(headerBytes)) !== null
  }

  private get cursorFile (): string {
    return path.join(this.dir, 'cursor')
  }

  private saveCursor (): void {
    const oldest = this.segments[0]
    // Not fsynced: losing it only replays a few records again, which is harmless.
    fs.writeFileSync(this.cursorFile, oldest ? `${oldest.seq} ${this.cursor}` : '')
  }

  private restoreCursor (): void {
    let text = ''
    try { text = fs.readFileSync(this.cursorFile, 'utf8') } catch {}
    const [seq, offset] = text.split(' ').map(Number)
    const oldest = this.segments[0]
    if (!oldest || seq !== oldest.seq || !(offset > 0) || offset > oldest.size) return
    // Count what the cursor skips, walking record headers, so depth stays exact.
    let at = 0
    const fd = fs.openSync(oldest.file, 'r')
    try {
      const header = Buffer.alloc(headerBytes)
      while (at < offset) {
        fs.readSync(fd, header, 0, headerBytes, at)
        const recordBytes = headerBytes + header.readUInt32LE(0)
        const count = header.readUInt32LE(4) & countMask
        oldest.points -= count
        this.points -= count
        this.bytes -= recordBytes
        at += recordBytes
      }
    } finally {
      fs.closeSync(fd)
    }
    this.cursor = at
  }

  private warnFill (ratio: number): void {
    const crossed = ratio >= 1 ? 1 : fillWarnings.filter((w) => ratio >= w).at(-1) ?? 0
    if (crossed <= this.warnedAt) return
    this.warnedAt = crossed
    this.emit('fill', ratio)
    if (crossed >= 1) this.log.error({ ...this.depth, maxBytes: this.maxBytes }, 'spool is full: new points wait in memory and devices are slowed down until InfluxDB takes writes again')
    else this.log.warn({ ...this.depth, maxBytes: this.maxBytes, percent: Math.round(ratio * 100) }, 'spool is filling up')
  }
}

