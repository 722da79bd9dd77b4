import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import type { BrokerStats } from './options.js'

/**
 * Reads MQTT connections in slices of the event loop.
 *
 * aedes parses and handles what a connection brings as soon as it is
 * readable, and the hub's in-process ingest runs inside that handling. Under
 * load, one poll phase finds hundreds of device connections readable and
 * handles them all before anything else gets a turn: 10-40 ms at 15,000 msg/s
 * in a profile of the `commands` bench, while every hop of a command (the API
 * request, its publish, the device's ack) waited those turns out.
 *
 * So, while an answer is awaited on this loop (an API request: `awaitAnswer`),
 * connections are read for at most `budgetMs` of one slice. A slice opens
 * with the first read of a turn and ends in that turn's check phase (a
 * setImmediate). A connection readable once the budget is spent waits, in
 * order; the check phase opens the next slice and reads waiting connections
 * within it, and that slice lasts into the next poll phase. So while a backlog
 * lasts the devices get one budget a turn, and the rest of the turn — the
 * API's sockets, the answers of PostgreSQL and InfluxDB, a command's publish
 * — runs between budgets. What waits stays in the connection's buffer and
 * then in the kernel's: TCP backpressure, nothing dropped, each connection's
 * order kept. A turn that reads for less than the budget defers nothing.
 *
 * Slices are not free: a deferred connection's readings wait turns (at half
 * the ingest capacity, publish-to-state p99 rose from 10-20 to 30-45 ms in
 * the `ingest` bench with slices always on). So with no answer awaited,
 * connections are read as they come, as aedes reads them, and the queue
 * drains whole.
 *
 * Hooked through the connection's `read`: aedes reads a readable connection
 * with `conn.read(null)` in its `nextBatch`, and reads again by calling
 * `client._nextBatch()`. One shared function; a connection gets four
 * properties (its `read` and three symbols) and no closure, since idle
 * connections are counted in bytes (`test/broker/idle-device-memory`: no
 * change measured in live heap per device).
 */
export class ReadSlices {
  /** performance.now() when the open slice began; 0: none open. */
  private sliceStart = 0
  private closeScheduled = false
  private readonly waiting: Array<SlicedConn | undefined> = []
  private head = 0

  /** `budgetMs` 0 or less reads every readable connection at once. */
  constructor (private readonly budgetMs: number, private readonly stats: Pick<BrokerStats, 'readsDeferred' | 'readBacklog' | 'answersAwaited'>) {}

  /** Reads `client`'s connection in slices from now on. */
  watch (client: Client): void {
    const conn = client.conn as SlicedConn
    // A stream with a read of its own (none that aedes is given here) is read as it comes.
    if (this.budgetMs <= 0 || Object.hasOwn(conn, 'read')) return
    conn[slicer] = this
    conn[owner] = client
    conn[waitingFlag] = false
    conn.read = slicedRead
  }

  /** An answer is awaited until the returned function is called (once; more calls do nothing). */
  awaitAnswer (): () => void {
    this.stats.answersAwaited++
    let done = false
    return () => {
      if (done) return
      done = true
      this.stats.answersAwaited--
    }
  }

  /** Connections waiting for a slice. */
  get backlog (): number {
    return this.waiting.length - this.head
  }

  /** Whether `conn`'s read must wait for a later slice; it is then queued. */
  defer (conn: SlicedConn): boolean {
    // A queued connection keeps its place, so its bytes are handled in order.
    if (conn[waitingFlag]) return true
    if (this.stats.answersAwaited === 0) return false
    const now = performance.now()
    if (this.sliceStart === 0) {
      this.sliceStart = now
      this.scheduleClose()
      return false
    }
    if (now - this.sliceStart < this.budgetMs) return false
    conn[waitingFlag] = true
    this.waiting.push(conn)
    this.stats.readsDeferred++
    this.stats.readBacklog = this.backlog
    return true
  }

  private scheduleClose (): void {
    if (this.closeScheduled) return
    this.closeScheduled = true
    setImmediate(this.close)
  }

  /** The check phase: the open slice ends, and the waiting connections are read in a new one. */
  private readonly close = (): void => {
    this.closeScheduled = false
    this.sliceStart = 0
    if (this.backlog === 0) return
    this.sliceStart = performance.now()
    // The next close ends this slice, whether or not the backlog empties now.
    this.scheduleClose()
    while (this.head < this.waiting.length && (this.stats.answersAwaited === 0 || performance.now() - this.sliceStart < this.budgetMs)) {
      const conn = this.waiting[this.head]!
      this.waiting[this.head++] = undefined
      conn[waitingFlag] = false
      const client = conn[owner]
      if (!client.closed) (client as unknown as { _nextBatch: () => void })._nextBatch()
    }
    if (this.head === this.waiting.length) {
      this.waiting.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head)
      this.head = 0
    }
    this.stats.readBacklog = this.backlog
  }
}

const slicer = Symbol('trellis.readSlices')
const owner = Symbol('trellis.readSlicesClient')
const waitingFlag = Symbol('trellis.readSlicesWaiting')

interface SlicedConn extends Duplex {
  [slicer]: ReadSlices
  [owner]: Client
  [waitingFlag]: boolean
}

/** The connection's `read`: aedes' read of the whole buffer (`read(null)`) waits for its slice; the stream's own reads pass. */
function slicedRead (this: SlicedConn, n?: number | null): unknown {
  if (n === null && this[slicer].defer(this)) return null
  return (Object.getPrototypeOf(this) as Duplex).read.call(this, n as number)
}
