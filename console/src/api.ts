/** Who is signed in to the console. */
export interface Session { scope: 'owner' | 'maker' | 'admin', subject: string, csrf: string | null }

/** An API refusal, with the hub's message in words. */
export class ApiProblem extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

let csrf: string | null = null

/** The CSRF token sent with every state-changing call (from sign-in or GET /v1/console/session). */
export function useCsrf (token: string | null): void { csrf = token }

const plainWords: Record<string, string> = {
  UNAUTHORIZED: 'You are signed out. Sign in again.',
  CSRF_TOKEN_MISMATCH: 'Your session is out of date. Reload the page.',
  INTERNAL: 'Something went wrong in the hub; it has been logged. Try again.',
}

/**
 * Calls the hub's API with the session cookie. Answers with `accept` statuses
 * (default 2xx) resolve with the body; anything else throws an ApiProblem
 * whose message is fit to show.
 */
export async function call<T = any> (method: string, path: string, body?: unknown, accept?: (status: number) => boolean): Promise<T> {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf
  let res: Response
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new ApiProblem(0, 'NETWORK', 'The hub did not answer. Check that it is running, then try again.')
  }
  const text = await res.text()
  let parsed: any = null
  try { parsed = text ? JSON.parse(text) : null } catch { parsed = null }
  if (accept ? accept(res.status) : res.ok) return parsed as T
  const code: string = parsed?.error?.code ?? `HTTP_${res.status}`
  const message: string = plainWords[code] ?? parsed?.error?.message ?? `The hub answered ${res.status} ${res.statusText}.`
  throw new ApiProblem(res.status, code, sentence(message))
}

/** Starts with a capital (unless it starts with a name such as targetTemperature) and ends with a full stop. */
function sentence (s: string): string {
  const t = s.trim()
  const start = /^[a-z]+(?=[\s,:;]|$)/.test(t) ? t.charAt(0).toUpperCase() + t.slice(1) : t
  return start + (/[.!?]$/.test(t) ? '' : '.')
}

export function describe (err: unknown): string {
  return err instanceof ApiProblem ? err.message : err instanceof Error ? err.message : String(err)
}

export type Value = number | boolean | string

export interface StateEntry { value: Value | null, ts: string | null, desired?: { value: Value, command: string, since: string } }

export interface DeviceView {
  id: string
  model: string
  modelName: string
  maker: string
  brand: string
  claimed?: boolean
  online: boolean
  lastSeen: string | null
  state: Record<string, StateEntry>
  /** Where the device is installed: its local times without an offset are read in this zone. Null when not set. */
  timeZone?: string | null
}

export interface Capability {
  name: string
  kind: 'number' | 'boolean' | 'enum' | 'text'
  unit?: string
  min?: number
  max?: number
  integer?: boolean
  enum?: string[]
  settable: boolean
}

export interface CommandView {
  id: string
  device: string
  status: 'pending' | 'ok' | 'error' | 'timeout'
  set?: Record<string, Value>
  action?: string
  error?: string
  state?: Record<string, Value>
  createdAt: string
}

export interface ModelView {
  id: string
  name: string
  capabilities: Capability[]
  mapping: unknown
  heartbeatSeconds: number | null
}

/** A value as a person reads it. */
export function show (value: Value | null | undefined, unit?: string): string {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'boolean') return value ? 'on' : 'off'
  return unit ? `${value} ${unit}` : String(value)
}

/** "12 s ago", "5 min ago" … */
export function ago (iso: string | null, now = Date.now()): string {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}
