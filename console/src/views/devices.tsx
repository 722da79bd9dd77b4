import { useEffect, useState } from 'preact/hooks'
import { ago, call, show, type DeviceView } from '../api.js'
import { useLive } from '../live-bus.js'
import type { LiveEvent } from '../live.js'
import { href } from '../route.js'
import { Empty, Online, Problem, useAction } from '../ui.js'

/** Applies a live event to a device view; returns the same object when it is not about it. */
export function applyLive (d: DeviceView, e: LiveEvent): DeviceView {
  if (e.type === 'state' && e.device === d.id) {
    const state = { ...d.state }
    for (const [cap, r] of Object.entries(e.readings)) state[cap] = { ...state[cap], value: r.value, ts: r.ts }
    return { ...d, state, online: true, lastSeen: new Date().toISOString() }
  }
  if (e.type === 'presence' && e.device === d.id) return { ...d, online: e.online }
  return d
}

/** The owner's devices across brands, live. */
export function Devices () {
  const [devices, setDevices] = useState<DeviceView[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const load = async () => {
    try { setDevices((await call<{ devices: DeviceView[] }>('GET', '/v1/devices?limit=1000')).devices) } catch (err) { setError(err) }
  }
  useEffect(() => { void load() }, [])
  useLive((e) => setDevices((list) => list && list.map((d) => applyLive(d, e))))
  return (
    <>
      <h1>Your devices</h1>
      <Claim onClaimed={load} />
      <Problem error={error} />
      {devices === null
        ? <p>Loading your devices…</p>
        : devices.length === 0
          ? <Empty>You have no devices yet. Enter the claim code printed on your appliance (or on its box) above to add it.</Empty>
          : (
            <ul class="devices" aria-label="Devices">
              {devices.map((d) => (
                <li class="device card" data-device={d.id} key={d.id}>
                  <div class="head">
                    <a href={href('devices', d.id)}><strong>{d.brand}</strong> {d.modelName}</a>
                    <Online online={d.online} />
                  </div>
                  <dl class="readings">
                    {Object.entries(d.state).slice(0, 6).map(([cap, s]) => (
                      <div data-capability={cap}><dt>{cap}</dt><dd>{show(s.value)}</dd></div>
                    ))}
                  </dl>
                  <p class="meta"><code>{d.id}</code> · last seen {ago(d.lastSeen)}</p>
                </li>
              ))}
            </ul>
            )}
    </>
  )
}

function Claim ({ onClaimed }: { onClaimed: () => Promise<void> }) {
  const [code, setCode] = useState('')
  const [claimed, setClaimed] = useState<DeviceView | null>(null)
  const action = useAction(async () => {
    const device = await call<DeviceView>('POST', '/v1/devices/claim', { claimCode: code.trim() })
    setClaimed(device)
    setCode('')
    await onClaimed()
  })
  return (
    <form class="claim card" onSubmit={(e) => { e.preventDefault(); void action.run() }}>
      <label>Claim code <input value={code} required minLength={4} maxLength={64} autocomplete="off" onInput={(e) => setCode(e.currentTarget.value)} /></label>
      <button type="submit" class="primary" disabled={action.busy}>Claim device</button>
      <Problem error={action.error} />
      {claimed && <p role="status">Claimed {claimed.brand} {claimed.modelName} (<a href={href('devices', claimed.id)}>{claimed.id}</a>).</p>}
    </form>
  )
}
