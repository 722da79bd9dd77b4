import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'
import { describe } from './api.js'

/** An API error in words, announced to screen readers. */
export function Problem ({ error }: { error: unknown }) {
  if (!error) return null
  return <p class="problem" role="alert">{describe(error)}</p>
}

/** What to do when there is nothing to show yet. */
export function Empty ({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>
}

export function Online ({ online }: { online: boolean }) {
  return <span class={online ? 'badge online' : 'badge offline'}>{online ? 'online' : 'offline'}</span>
}

/** Runs an async action, keeping its error and whether it is running. */
export function useAction<A extends unknown[]> (f: (...args: A) => Promise<void>) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const run = async (...args: A) => {
    setBusy(true)
    setError(null)
    try { await f(...args) } catch (err) { setError(err) } finally { setBusy(false) }
  }
  return { run, busy, error, setError }
}
