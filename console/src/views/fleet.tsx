import { useEffect, useState } from 'preact/hooks'
import { ago, call, type DeviceView } from '../api.js'
import { href } from '../route.js'
import { Empty, Online, Problem } from '../ui.js'

/** The maker's fleet: how many devices, claimed, online, per model. */
export function Fleet () {
  const [devices, setDevices] = useState<DeviceView[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => { call<{ devices: DeviceView[] }>('GET', '/v1/devices?limit=1000').then((r) => setDevices(r.devices), setError) }, [])
  if (error) return <Problem error={error} />
  if (!devices) return <p>Loading your fleet…</p>
  const models = new Map<string, { name: string, total: number, claimed: number, online: number }>()
  for (const d of devices) {
    const m = models.get(d.model) ?? { name: d.modelName, total: 0, claimed: 0, online: 0 }
    m.total++
    if (d.claimed) m.claimed++
    if (d.online) m.online++
    models.set(d.model, m)
  }
  return (
    <>
      <h1>Fleet</h1>
      {devices.length === 0
        ? <Empty>No devices yet. Open one of your <a href={href()}>models</a> and provision devices for it.</Empty>
        : (
          <>
            <div class="tiles">
              <div class="tile"><strong>{devices.length}</strong> devices</div>
              <div class="tile"><strong>{devices.filter((d) => d.claimed).length}</strong> claimed</div>
              <div class="tile"><strong>{devices.filter((d) => d.online).length}</strong> online</div>
            </div>
            <table aria-label="Models in the fleet">
              <thead><tr><th>Model</th><th>Devices</th><th>Claimed</th><th>Online</th></tr></thead>
              <tbody>{[...models].map(([id, m]) => <tr><td><a href={href('models', id)}>{m.name}</a></td><td>{m.total}</td><td>{m.claimed}</td><td>{m.online}</td></tr>)}</tbody>
            </table>
            <table aria-label="Devices">
              <thead><tr><th>Device</th><th>Model</th><th>Claimed</th><th>Status</th><th>Last seen</th></tr></thead>
              <tbody>{devices.map((d) => <tr><td><code>{d.id}</code></td><td>{d.modelName}</td><td>{d.claimed ? 'yes' : 'no'}</td><td><Online online={d.online} /></td><td>{ago(d.lastSeen)}</td></tr>)}</tbody>
            </table>
          </>
          )}
    </>
  )
}
