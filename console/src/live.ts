import { useEffect, useRef, useState } from 'preact/hooks'
import type { CommandView, Value } from './api.js'

export type LiveEvent =
  | { type: 'state', device: string, readings: Record<string, { value: Value, ts: string }> }
  | { type: 'presence', device: string, online: boolean, at: string }
  | { type: 'command', command: CommandView }

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'closed'

/**
 * The owner's live stream (`/v1/stream`). EventSource sends the session
 * cookie with the request, which is how the stream is authorised in the
 * browser; it reconnects by itself after a drop.
 */
export function useLiveStream (enabled: boolean, onEvent: (e: LiveEvent) => void): LiveStatus {
  const [status, setStatus] = useState<LiveStatus>('connecting')
  const handler = useRef(onEvent)
  handler.current = onEvent
  useEffect(() => {
    if (!enabled) return
    const source = new EventSource('/v1/stream', { withCredentials: true })
    const on = (name: string, f: (data: any) => void) => source.addEventListener(name, (e) => f(JSON.parse((e as MessageEvent).data)))
    on('ready', () => setStatus('live'))
    on('state', (d) => handler.current({ type: 'state', device: d.device, readings: d.readings }))
    on('presence', (d) => handler.current({ type: 'presence', device: d.device, online: d.online, at: d.at }))
    on('command', (d) => handler.current({ type: 'command', command: d }))
    on('close', () => { setStatus('closed'); source.close() })
    source.onerror = () => setStatus(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting')
    return () => source.close()
  }, [enabled])
  return status
}
