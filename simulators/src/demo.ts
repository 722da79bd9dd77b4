import { randomBytes } from 'node:crypto'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { FleetDevice } from './fleet.js'
import type { Simulator } from './simulator.js'

/** What the demo remembers between starts (plain text, mode 0600, under DATA_DIR: a local demo only). */
export interface DemoState {
  apiUrl?: string
  makers: Record<string, { id: string, token: string }>
  models: Record<string, string>
  owner: { id: string, email: string, password: string, token: string }
  devices: FleetDevice[]
}

export interface DemoOptions {
  apiUrl: string
  /** Total devices, spread across the simulators in turn. */
  size: number
  simulators: readonly Simulator[]
  /** Where the demo state is kept, e.g. `.data/demo.json`. */
  file: string
  log?: (message: string) => void
}

class ApiFailure extends Error {}

async function call<T> (apiUrl: string, method: string, route: string, body?: unknown, token?: string): Promise<{ status: number, body: T }> {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(apiUrl + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T }
}

async function must<T> (apiUrl: string, method: string, route: string, body?: unknown, token?: string): Promise<T> {
  const res = await call<T>(apiUrl, method, route, body, token)
  if (res.status >= 300) throw new ApiFailure(`${method} ${route} answered ${res.status}: ${JSON.stringify(res.body)}`)
  return res.body
}

/**
 * Makes sure the demo ecosystem exists, through the public API as makers and
 * an owner would: one maker per brand, its models, `size` devices spread
 * across the simulators, all claimed by a demo owner. A second start reuses
 * what the first made, and adds devices when `size` grew.
 */
export async function ensureDemoFleet (opts: DemoOptions): Promise<DemoState> {
  const log = opts.log ?? (() => {})
  let state: DemoState | null = null
  try {
    state = JSON.parse(await readFile(opts.file, 'utf8')) as DemoState
    const probe = await call(opts.apiUrl, 'GET', '/v1/devices?limit=1', undefined, state.owner.token)
    if (probe.status !== 200) {
      log('the saved demo state does not match this registry; creating a new demo fleet')
      state = null
    }
  } catch {
    state = null
  }
  if (!state) {
    const email = 'demo@trellis.local'
    const password = randomBytes(12).toString('base64url')
    let owner = await call<{ id: string, token: string }>(opts.apiUrl, 'POST', '/v1/owners', { email, password })
    if (owner.status === 409) {
      // The registry has a demo owner whose password we lost: use a fresh address.
      const fresh = `demo+${Date.now()}@trellis.local`
      owner = { status: 201, body: await must(opts.apiUrl, 'POST', '/v1/owners', { email: fresh, password }) }
      state = { makers: {}, models: {}, owner: { id: owner.body.id, email: fresh, password, token: owner.body.token }, devices: [] }
    } else {
      if (owner.status !== 201) throw new ApiFailure(`owner sign-up answered ${owner.status}: ${JSON.stringify(owner.body)}`)
      state = { makers: {}, models: {}, owner: { id: owner.body.id, email, password, token: owner.body.token }, devices: [] }
    }
  }

  for (const sim of opts.simulators) {
    if (!state.makers[sim.brand]) {
      const maker = await must<{ id: string, token: string }>(opts.apiUrl, 'POST', '/v1/makers', { name: sim.brand })
      state.makers[sim.brand] = { id: maker.id, token: maker.token }
    }
    if (!state.models[sim.kind]) {
      const model = await must<{ id: string }>(opts.apiUrl, 'POST', '/v1/models', {
        name: sim.model.name,
        capabilities: sim.model.capabilities,
        ...(sim.model.mapping !== undefined && { mapping: sim.model.mapping }),
      }, state.makers[sim.brand].token)
      state.models[sim.kind] = model.id
    }
  }

  const wanted = new Map<string, number>()
  for (let i = 0; i < opts.size; i++) {
    const kind = opts.simulators[i % opts.simulators.length].kind
    wanted.set(kind, (wanted.get(kind) ?? 0) + 1)
  }
  for (const sim of opts.simulators) {
    const have = state.devices.filter((d) => d.kind === sim.kind).length
    const missing = (wanted.get(sim.kind) ?? 0) - have
    if (missing <= 0) continue
    const provisioned = await must<{ devices: Array<{ id: string, secret: string, claimCode: string }> }>(
      opts.apiUrl, 'POST', '/v1/devices', { model: state.models[sim.kind], count: missing }, state.makers[sim.brand].token)
    for (const d of provisioned.devices) {
      await must(opts.apiUrl, 'POST', '/v1/devices/claim', { claimCode: d.claimCode }, state.owner.token)
      state.devices.push({ id: d.id, secret: d.secret, kind: sim.kind })
    }
    log(`provisioned and claimed ${missing} ${sim.model.name}`)
  }
  state.apiUrl = opts.apiUrl
  await mkdir(path.dirname(opts.file), { recursive: true })
  await writeFile(opts.file, JSON.stringify(state, null, 2), { mode: 0o600 })
  return state
}

/** The devices of the demo fleet that take part in a run of `size` devices. */
export function fleetOf (state: DemoState, size: number, simulators: readonly Simulator[]): FleetDevice[] {
  const kinds = new Set(simulators.map((s) => s.kind))
  const perKind = new Map<string, number>()
  for (let i = 0; i < size; i++) {
    const kind = simulators[i % simulators.length].kind
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1)
  }
  const chosen: FleetDevice[] = []
  for (const d of state.devices) {
    if (!kinds.has(d.kind)) continue
    const left = perKind.get(d.kind) ?? 0
    if (left > 0) {
      chosen.push(d)
      perKind.set(d.kind, left - 1)
    }
  }
  return chosen
}
