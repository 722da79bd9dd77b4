import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { CommandRecord } from '../commands/command-log.js'
import type { CommandService } from '../commands/service.js'
import type { DeviceDirectory } from '../registry/directory.js'
import type { StateChange, StateStore } from '../state/state.js'

export interface LiveStreamsOptions {
  state: StateStore
  commands: CommandService
  directory: DeviceDirectory
  log: Logger
  /** Renders a command for the stream (the API's view of it). */
  commandView: (record: CommandRecord) => unknown
  /** A comment line every this many ms keeps proxies from closing an idle stream. Default 15000. */
  heartbeatMs?: number
  /** Open streams per owner at most. Default 8. */
  maxPerOwner?: number
  /** Drop a stream whose client lets this many bytes pile up unread. Default 1 MiB. */
  maxBufferedBytes?: number
}

interface Subscriber {
  ownerId: string
  /** The API token the stream was opened with: revoking it ends the stream. */
  tokenId: string | null
  res: ServerResponse
  heartbeat: NodeJS.Timeout
  seq: number
}

export class StreamLimitError extends Error {
  constructor (readonly limit: number) { super(`at most ${limit} streams per owner`) }
}

/**
 * Server-Sent Events to owners: their devices' state, presence and command
 * changes, and nothing of anyone else's. One listener per source fans out by
 * owner, so a change costs one lookup, not one per open stream.
 */
export class LiveStreams {
  private readonly byOwner = new Map<string, Set<Subscriber>>()
  private readonly heartbeatMs: number
  private readonly maxPerOwner: number
  private readonly maxBuffered: number
  private closed = false

  constructor (private readonly opts: LiveStreamsOptions) {
    this.heartbeatMs = opts.heartbeatMs ?? 15_000
    this.maxPerOwner = opts.maxPerOwner ?? 8
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024
    opts.state.on('presence', this.onState)
    opts.commands.on('change', this.onCommand)
  }

  /** Streams open now. */
  get size (): number {
    let n = 0
    for (const subs of this.byOwner.values()) n += subs.size
    return n
  }

  /**
   * Takes over `res` as an event stream for `ownerId`. Throws StreamLimitError
   * before writing anything when the owner has too many open.
   */
  open (ownerId: string, res: ServerResponse, headers: Record<string, string> = {}, tokenId: string | null = null): void {
    if (this.closed) throw new Error('live streams are closed')
    const subs = this.byOwner.get(ownerId) ?? new Set<Subscriber>()
    if (subs.size >= this.maxPerOwner) throw new StreamLimitError(this.maxPerOwner)
    this.byOwner.set(ownerId, subs)
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    const sub: Subscriber = {
      ownerId,
      tokenId,
      res,
      seq: 0,
      heartbeat: setInterval(() => this.write(sub, `: heartbeat ${new Date().toISOString()}\n\n`), this.heartbeatMs),
    }
    sub.heartbeat.unref()
    // Readings are rendered for the stream only while some stream is open (see StateStore).
    if (this.size === 0) this.opts.state.on('readings', this.onState)
    subs.add(sub)
    res.on('close', () => this.drop(sub))
    // `retry` tells EventSource how soon to reconnect; `ready` tells the client it is subscribed.
    this.write(sub, `retry: 2000\n\n`)
    this.send(sub, 'ready', { owner: ownerId, heartbeatMs: this.heartbeatMs })
  }

  /**
   * Ends the streams opened with a token that was just revoked: a revoked
   * token must stop reading at once, not only on its next request.
   */
  closeForToken (tokenId: string): void {
    for (const subs of this.byOwner.values()) {
      for (const sub of subs) if (sub.tokenId === tokenId) this.end(sub, 'the token of this stream was revoked')
    }
  }

  /** Ends every stream with a `close` event, so clients know it was deliberate. */
  close (reason = 'the hub is shutting down'): void {
    if (this.closed) return
    this.closed = true
    this.opts.state.off('presence', this.onState)
    this.opts.state.off('readings', this.onState)
    this.opts.commands.off('change', this.onCommand)
    for (const subs of this.byOwner.values()) {
      for (const sub of subs) this.end(sub, reason)
    }
  }

  /** Tells the client why with a `close` event, then ends its stream. */
  private end (sub: Subscriber, reason: string): void {
    this.send(sub, 'close', { reason })
    sub.res.end()
    this.drop(sub)
  }

  private readonly onState = (change: StateChange) => {
    const data = change.kind === 'state'
      ? { device: change.deviceId, readings: change.readings }
      : { device: change.deviceId, online: change.online, at: change.at }
    this.toOwnerOf(change.deviceId, change.kind, data)
  }

  private readonly onCommand = (record: CommandRecord) => {
    this.toOwner(record.ownerId, 'command', this.opts.commandView(record))
  }

  private toOwnerOf (deviceId: string, event: string, data: unknown): void {
    if (this.byOwner.size === 0) return
    const ctx = this.opts.directory.peek(deviceId)
    if (ctx) {
      if (ctx.ownerId) this.toOwner(ctx.ownerId, event, data)
      return
    }
    this.opts.directory.get(deviceId).then((loaded) => {
      if (loaded?.ownerId) this.toOwner(loaded.ownerId, event, data)
    }, (err: Error) => this.opts.log.error({ err, deviceId }, 'device lookup for the live stream failed'))
  }

  private toOwner (ownerId: string, event: string, data: unknown): void {
    const subs = this.byOwner.get(ownerId)
    if (!subs) return
    for (const sub of subs) this.send(sub, event, data)
  }

  private send (sub: Subscriber, event: string, data: unknown): void {
    this.write(sub, `id: ${++sub.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }

  private write (sub: Subscriber, text: string): void {
    if (sub.res.writableEnded || sub.res.destroyed) return
    if (sub.res.writableLength > this.maxBuffered) {
      this.opts.log.warn({ ownerId: sub.ownerId, buffered: sub.res.writableLength }, 'live stream client is not reading; closing its stream')
      sub.res.destroy()
      return
    }
    sub.res.write(text)
  }

  private drop (sub: Subscriber): void {
    clearInterval(sub.heartbeat)
    const subs = this.byOwner.get(sub.ownerId)
    if (!subs) return
    if (!subs.delete(sub)) return
    if (subs.size === 0) this.byOwner.delete(sub.ownerId)
    if (this.size === 0) this.opts.state.off('readings', this.onState)
  }
}
