import { EventEmitter } from 'node:events'

export interface SseEvent { event: string, data: any, id?: string }

/**
 * A Server-Sent Events client over fetch: collects events as they come and
 * lets a test await the next one that matches.
 */
export interface SseStream {
  readonly status: number
  readonly headers: Headers
  /** Every event received so far, in order. */
  readonly events: SseEvent[]
  /** Comment lines (heartbeats) received so far. */
  readonly comments: string[]
  /** Resolves with the first event, already received or still to come, that passes `accept`. */
  next (accept: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>
  close (): void
}

export async function openSse (url: string, token: string): Promise<SseStream> {
  const abort = new AbortController()
  const res: Response = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: abort.signal })
  const events: SseEvent[] = []
  const comments: string[] = []
  const emitter = new EventEmitter()
  let resolveEnded!: () => void
  const ended = new Promise<void>((resolve) => { resolveEnded = resolve })
  if (res.body && (res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    void (async () => {
      const decoder = new TextDecoder()
      let buffer = ''
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true })
          let end: number
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const fields: Record<string, string> = {}
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) { comments.push(line.slice(1).trim()); emitter.emit('comment'); continue }
              const colon = line.indexOf(':')
              if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
            }
            if (fields.event || fields.data) {
              const e: SseEvent = { event: fields.event ?? 'message', data: fields.data ? JSON.parse(fields.data) : null, id: fields.id }
              events.push(e)
              emitter.emit('event', e)
            }
          }
        }
      } catch {
        // aborted by close()
      }
      resolveEnded()
    })()
  } else {
    await res.text().catch(() => '')
    resolveEnded()
  }
  return {
    status: res.status,
    headers: res.headers,
    events,
    comments,
    ended,
    async next (accept, timeoutMs = 10_000) {
      const seen = events.find(accept)
      if (seen) return seen
      return await new Promise<SseEvent>((resolve, reject) => {
        const timer = setTimeout(() => { emitter.off('event', listener); reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.event))}`)) }, timeoutMs)
        const listener = (e: SseEvent) => {
          if (!accept(e)) return
          clearTimeout(timer)
          emitter.off('event', listener)
          resolve(e)
        }
        emitter.on('event', listener)
      })
    },
    close () { abort.abort() },
  }
}
