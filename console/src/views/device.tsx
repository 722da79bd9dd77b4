import { useEffect, useState } from 'preact/hooks'
import { ago, call, show, type Capability, type CommandView, type DeviceView, type Value } from '../api.js'
import { useLive } from '../live-bus.js'
import { href } from '../route.js'
import { Empty, Online, Problem, useAction } from '../ui.js'
import { Chart } from './chart.js'
import { applyLive } from './devices.js'

interface Offer { capabilities: Capability[], actions: string[] }

/** One device: live state, controls from its model, history, recent commands. */
export function DevicePage ({ id }: { id: string }) {
  const [device, setDevice] = useState<DeviceView | null>(null)
  const [offer, setOffer] = useState<Offer | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    setDevice(null)
    setError(null)
    Promise.all([call<DeviceView>('GET', `/v1/devices/${encodeURIComponent(id)}`), call<Offer>('GET', `/v1/devices/${encodeURIComponent(id)}/capabilities`)])
      .then(([d, o]) => { setDevice(d); setOffer(o) }, setError)
  }, [id])
  useLive((e) => setDevice((d) => d && applyLive(d, e)))
  if (error) return <><Problem error={error} /><p><a href={href()}>Back to your devices</a></p></>
  if (!device || !offer) return <p>Loading the device…</p>
  const capability = (name: string) => offer.capabilities.find((c) => c.name === name)
  return (
    <>
      <p><a href={href()}>← Devices</a></p>
      <h1>{device.brand} {device.modelName} <Online online={device.online} /></h1>
      <p class="meta"><code>{device.id}</code> · last seen {ago(device.lastSeen)}</p>
      <section class="card">
        <h2>State</h2>
        {Object.keys(device.state).length === 0
          ? <Empty>No reading yet. Readings show here as soon as the device reports; check that it is powered and connected.</Empty>
          : (
            <table class="state" aria-label="State">
              <thead><tr><th>Capability</th><th>Value</th><th>When</th></tr></thead>
              <tbody>
                {Object.entries(device.state).map(([cap, s]) => (
                  <tr data-capability={cap}>
                    <th scope="row">{cap}</th>
                    <td class="value">{show(s.value, capability(cap)?.unit)}{s.desired && <span class="desired"> (asked {show(s.desired.value)})</span>}</td>
                    <td>{ago(s.ts)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            )}
      </section>
      <Controls device={device} offer={offer} />
      <History device={device} capabilities={offer.capabilities} />
      <TimeZone device={device} onChange={(d) => setDevice((current) => current && { ...current, timeZone: d.timeZone })} />
    </>
  )
}

/** Every zone this browser knows, for the field's suggestions. */
const zones: string[] = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.('timeZone') ?? []

/**
 * Where the device is installed. Firmware that reports local times without an
 * offset (a plug's "2026-03-29 02:30") is read in this zone; the owner sets it,
 * and changes it after a move.
 */
function TimeZone ({ device, onChange }: { device: DeviceView, onChange: (d: DeviceView) => void }) {
  const [draft, setDraft] = useState<string | null>(null)
  const [saved, setSaved] = useState(false)
  const save = useAction(async (zone: string | null) => {
    setSaved(false)
    onChange(await call<DeviceView>('PATCH', `/v1/devices/${encodeURIComponent(device.id)}`, { timeZone: zone }))
    setDraft(null)
    setSaved(true)
  })
  const current = device.timeZone ?? null
  const value = draft ?? current ?? ''
  return (
    <section class="card" data-time-zone={current ?? ''}>
      <h2>Time zone</h2>
      <p class="meta">{current
        ? <>Local times this device reports without an offset are read in <strong>{current}</strong>.</>
        : 'Not set: local times this device reports without an offset are read in its model\'s zone, or in UTC.'}</p>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); void save.run(value.trim() === '' ? null : value.trim()) }}>
        <label>Time zone <input value={value} list="time-zones" placeholder="Europe/Lisbon" onInput={(e) => { setSaved(false); setDraft(e.currentTarget.value) }} /></label>
        <datalist id="time-zones">{zones.map((z) => <option value={z} />)}</datalist>
        <button type="submit" disabled={save.busy}>Save time zone</button>
        {current && <button type="button" disabled={save.busy} onClick={() => { setDraft(''); void save.run(null) }}>Clear</button>}
        {saved && <output aria-live="polite">saved</output>}
      </form>
      <Problem error={save.error} />
    </section>
  )
}

type Outcome = { status: CommandView['status'] | 'sending', error?: string }

function outcomeText (o: Outcome): string {
  if (o.status === 'sending' || o.status === 'pending') return 'pending'
  if (o.status === 'ok') return 'ok'
  if (o.status === 'timeout') return 'timeout: the device did not answer in time'
  return `error: ${o.error ?? 'the device refused'}`
}

function Controls ({ device, offer }: { device: DeviceView, offer: Offer }) {
  const settable = offer.capabilities.filter((c) => c.settable)
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({})
  const [pendingIds, setPendingIds] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(null)
  useLive((e) => {
    if (e.type !== 'command' || e.command.device !== device.id) return
    const key = Object.entries(pendingIds).find(([, cid]) => cid === e.command.id)?.[0]
    if (key) setOutcomes((o) => ({ ...o, [key]: { status: e.command.status, error: e.command.error } }))
  })
  const send = async (key: string, body: { set: Record<string, Value> } | { action: string }) => {
    setError(null)
    setOutcomes((o) => ({ ...o, [key]: { status: 'sending' } }))
    try {
      const c = await call<CommandView>('POST', `/v1/devices/${encodeURIComponent(device.id)}/commands?wait=5s`, body, (s) => s === 200 || s === 202 || s === 504)
      setPendingIds((p) => ({ ...p, [key]: c.id }))
      setOutcomes((o) => ({ ...o, [key]: { status: c.status, error: c.error } }))
    } catch (err) {
      setOutcomes((o) => { const { [key]: _, ...rest } = o; return rest })
      setError(err)
    }
  }
  if (settable.length === 0 && offer.actions.length === 0) return null
  return (
    <section class="card">
      <h2>Controls</h2>
      <Problem error={error} />
      <div class="controls">
        {settable.map((c) => (
          <div class="control" data-control={c.name}>
            <Control capability={c} current={device.state[c.name]?.value ?? null} outcome={outcomes[c.name]} onSet={(v) => send(c.name, { set: { [c.name]: v } })} />
            {outcomes[c.name] && <output class={`outcome ${outcomes[c.name].status}`} aria-live="polite" data-outcome={outcomes[c.name].status}>{outcomeText(outcomes[c.name])}</output>}
          </div>
        ))}
        {offer.actions.map((a) => (
          <div class="control" data-control={`action:${a}`}>
            <button type="button" onClick={() => send(`action:${a}`, { action: a })}>{a}</button>
            {outcomes[`action:${a}`] && <output class={`outcome ${outcomes[`action:${a}`].status}`} aria-live="polite" data-outcome={outcomes[`action:${a}`].status}>{outcomeText(outcomes[`action:${a}`])}</output>}
          </div>
        ))}
      </div>
    </section>
  )
}

function Control ({ capability: c, current, outcome, onSet }: { capability: Capability, current: Value | null, outcome?: Outcome, onSet: (v: Value) => void }) {
  const [draft, setDraft] = useState<string | null>(null)
  // What the owner asked for shows until the device reports, or the command fails.
  const [asked, setAsked] = useState<Value | null>(null)
  useEffect(() => setAsked(null), [current])
  useEffect(() => { if (outcome?.status === 'error' || outcome?.status === 'timeout') setAsked(null) }, [outcome?.status])
  const ask = (v: Value) => { setAsked(v); onSet(v) }
  const shown = asked ?? current
  if (c.kind === 'boolean') {
    return <label class="toggle"><input type="checkbox" role="switch" checked={shown === true} onChange={(e) => ask(e.currentTarget.checked)} /> {c.name}</label>
  }
  if (c.kind === 'enum') {
    return (
      <label>{c.name}{' '}
        <select value={typeof shown === 'string' ? shown : ''} onChange={(e) => ask(e.currentTarget.value)}>
          {shown === null && <option value="">choose…</option>}
          {(c.enum ?? []).map((v) => <option value={v}>{v}</option>)}
        </select>
      </label>
    )
  }
  if (c.kind === 'number' && c.min !== undefined && c.max !== undefined) {
    const step = c.integer ? 1 : (c.max - c.min) <= 20 ? 0.5 : 1
    const value = draft ?? String(typeof current === 'number' ? current : c.min)
    return (
      <label>{c.name} <span class="range-value">{value}{c.unit ? ` ${c.unit}` : ''}</span>
        <input type="range" min={c.min} max={c.max} step={step} value={value}
          onInput={(e) => setDraft(e.currentTarget.value)}
          onChange={(e) => { setDraft(null); onSet(Number(e.currentTarget.value)) }} />
        <span class="hint">{c.min} to {c.max}</span>
      </label>
    )
  }
  return (
    <form class="inline" onSubmit={(e) => { e.preventDefault(); if (draft !== null) onSet(c.kind === 'number' ? Number(draft) : draft) }}>
      <label>{c.name} <input type={c.kind === 'number' ? 'number' : 'text'} value={draft ?? (current === null ? '' : String(current))} onInput={(e) => setDraft(e.currentTarget.value)} /></label>
      <button type="submit">Set</button>
    </form>
  )
}

const ranges: Array<[string, number, string]> = [['1h', 3_600_000, '1m'], ['6h', 21_600_000, '5m'], ['24h', 86_400_000, '15m'], ['7d', 604_800_000, '1h']]

interface History { points: Array<{ ts: string, value: Value }>, unit: string | null }

function History ({ device, capabilities }: { device: DeviceView, capabilities: Capability[] }) {
  const charted = capabilities.filter((c) => c.kind === 'number' || c.kind === 'boolean')
  const [cap, setCap] = useState(charted[0]?.name ?? '')
  const [range, setRange] = useState('1h')
  const [agg, setAgg] = useState('raw')
  const [data, setData] = useState<{ xs: number[], ys: Array<number | null>, unit: string | null, span: [number, number] } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [refresh, setRefresh] = useState(0)
  useEffect(() => {
    if (!cap) return
    const [, span, every] = ranges.find(([r]) => r === range)!
    const to = new Date(Date.now() + 60_000)
    const from = new Date(to.getTime() - span - 60_000)
    const kind = capabilities.find((c) => c.name === cap)?.kind
    const aggregate = agg === 'raw' ? '' : `&every=${every}&agg=${kind === 'number' ? agg : 'last'}`
    setError(null)
    call<History>('GET', `/v1/devices/${encodeURIComponent(device.id)}/telemetry?capability=${cap}&from=${from.toISOString()}&to=${to.toISOString()}${aggregate}`)
      .then((h) => setData({
        xs: h.points.map((p) => Date.parse(p.ts) / 1000),
        ys: h.points.map((p) => p.value === null ? null : typeof p.value === 'boolean' ? (p.value ? 1 : 0) : Number(p.value)),
        unit: h.unit,
        span: [from.getTime() / 1000, to.getTime() / 1000],
      }), setError)
  }, [device.id, cap, range, agg, refresh])
  if (charted.length === 0) return null
  return (
    <section class="card">
      <h2>History</h2>
      <div class="chart-options">
        <label>Capability <select value={cap} onChange={(e) => setCap(e.currentTarget.value)}>{charted.map((c) => <option value={c.name}>{c.name}</option>)}</select></label>
        <label>Range <select value={range} onChange={(e) => setRange(e.currentTarget.value)}>{ranges.map(([r]) => <option value={r}>last {r}</option>)}</select></label>
        <label>Aggregation <select value={agg} onChange={(e) => setAgg(e.currentTarget.value)}>
          <option value="raw">every point</option><option value="mean">mean</option><option value="min">min</option><option value="max">max</option>
        </select></label>
        <button type="button" onClick={() => setRefresh((n) => n + 1)}>Refresh</button>
      </div>
      <Problem error={error} />
      {data && (data.xs.length === 0
        ? <Empty>No {cap} readings in the last {range}. Pick a longer range, or wait for the device to report.</Empty>
        : <Chart xs={data.xs} ys={data.ys} label={cap} unit={data.unit} span={data.span} />)}
    </section>
  )
}
