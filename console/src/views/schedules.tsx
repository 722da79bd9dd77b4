import { useEffect, useState } from 'preact/hooks'
import { call, type DeviceView, type Value } from '../api.js'
import { href } from '../route.js'
import { Empty, Problem, useAction } from '../ui.js'

interface Schedule { id: string, deviceId: string, cron: string, timezone: string, command: { set?: Record<string, Value>, action?: string }, paused: boolean, nextRun: string | null }

function describeCommand (c: Schedule['command']): string {
  if (c.action) return `run ${c.action}`
  return Object.entries(c.set ?? {}).map(([k, v]) => `set ${k} to ${String(v)}`).join(', ')
}

/** Parses what an owner types as a value: true/false, a number, or text. */
function parseValue (s: string): Value {
  if (s === 'true' || s === 'false') return s === 'true'
  return s.trim() !== '' && !Number.isNaN(Number(s)) ? Number(s) : s
}

/** The owner's schedules: create, pause, resume, delete. */
export function Schedules () {
  const [schedules, setSchedules] = useState<Schedule[] | null>(null)
  const [devices, setDevices] = useState<DeviceView[]>([])
  const [error, setError] = useState<unknown>(null)
  const load = async () => {
    try {
      const [s, d] = await Promise.all([call<{ schedules: Schedule[] }>('GET', '/v1/schedules'), call<{ devices: DeviceView[] }>('GET', '/v1/devices?limit=1000')])
      setSchedules(s.schedules)
      setDevices(d.devices)
    } catch (err) { setError(err) }
  }
  useEffect(() => { void load() }, [])
  const [deviceId, setDeviceId] = useState('')
  const [cron, setCron] = useState('0 7 * * *')
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC')
  const [what, setWhat] = useState('')
  const [value, setValue] = useState('')
  const create = useAction(async () => {
    const command = what.startsWith('action:') ? { action: what.slice(7) } : { set: { [what]: parseValue(value) } }
    await call('POST', '/v1/schedules', { deviceId: deviceId || devices[0]?.id, cron, timezone, command })
    await load()
  })
  const change = useAction(async (s: Schedule, op: 'pause' | 'resume' | 'delete') => {
    if (op === 'delete') await call('DELETE', `/v1/schedules/${s.id}`)
    else await call('PATCH', `/v1/schedules/${s.id}`, { paused: op === 'pause' })
    await load()
  })
  const name = (id: string) => { const d = devices.find((x) => x.id === id); return d ? `${d.brand} ${d.modelName} (${id})` : id }
  return (
    <>
      <h1>Schedules</h1>
      <Problem error={error} />
      {devices.length > 0 && (
        <form class="card grid" onSubmit={(e) => { e.preventDefault(); void create.run() }}>
          <h2>New schedule</h2>
          <label>Device <select value={deviceId} onChange={(e) => setDeviceId(e.currentTarget.value)}>{devices.map((d) => <option value={d.id}>{name(d.id)}</option>)}</select></label>
          <label>When (cron: minute hour day month weekday) <input value={cron} required onInput={(e) => setCron(e.currentTarget.value)} /></label>
          <label>Time zone <input value={timezone} required onInput={(e) => setTimezone(e.currentTarget.value)} /></label>
          <label>Capability to set, or action:NAME <input value={what} required placeholder="power or action:identify" onInput={(e) => setWhat(e.currentTarget.value)} /></label>
          {!what.startsWith('action:') && <label>Value <input value={value} placeholder="true, 21 or eco" onInput={(e) => setValue(e.currentTarget.value)} /></label>}
          <Problem error={create.error} />
          <button type="submit" class="primary" disabled={create.busy}>Add schedule</button>
        </form>
      )}
      <Problem error={change.error} />
      {schedules === null
        ? <p>Loading schedules…</p>
        : schedules.length === 0
          ? <Empty>{devices.length === 0 ? <>No schedules, and no devices to schedule yet. <a href={href()}>Claim a device</a> first.</> : 'No schedules yet. Add one above: for instance, turn the heating on at 07:00 on weekdays with "0 7 * * 1-5".'}</Empty>
          : (
            <table aria-label="Schedules">
              <thead><tr><th>Device</th><th>When</th><th>What</th><th>Next run</th><th><span class="sr">Actions</span></th></tr></thead>
              <tbody>
                {schedules.map((s) => (
                  <tr data-schedule={s.id}>
                    <td>{name(s.deviceId)}</td>
                    <td><code>{s.cron}</code> {s.timezone}</td>
                    <td>{describeCommand(s.command)}</td>
                    <td>{s.paused ? 'paused' : s.nextRun ? new Date(s.nextRun).toLocaleString() : '—'}</td>
                    <td>
                      <button type="button" onClick={() => change.run(s, s.paused ? 'resume' : 'pause')}>{s.paused ? 'Resume' : 'Pause'}</button>{' '}
                      <button type="button" onClick={() => change.run(s, 'delete')}>Delete</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            )}
    </>
  )
}
