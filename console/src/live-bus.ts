import { useEffect, useRef } from 'preact/hooks'
import type { LiveEvent } from './live.js'

const listeners = new Set<(e: LiveEvent) => void>()

/** Hands an event of the one live stream to every view listening. */
export function publish (e: LiveEvent): void {
  for (const l of listeners) l(e)
}

/** Listens to the live stream while the calling view is shown. */
export function useLive (listener: (e: LiveEvent) => void): void {
  const current = useRef(listener)
  current.current = listener
  useEffect(() => {
    const l = (e: LiveEvent) => current.current(e)
    listeners.add(l)
    return () => { listeners.delete(l) }
  }, [])
}
