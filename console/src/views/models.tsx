import { useEffect, useRef, useState } from 'preact/hooks'
import { call, type ModelView, type Value } from '../api.js'
import { href } from '../route.js'
import { Empty, Problem, useAction } from '../ui.js'

const exampleModel = JSON.stringify({ name: 'my-thermostat', capabilities: ['temperature', { name: 'targetTemperature', min: 5, max: 30 }, 'power'] }, null, 2)

/** The maker's models, and declaring a new one. */
export function Models () {
  const [models, setModels] = useState<ModelView[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [declaration, setDeclaration] = useState(exampleModel)
  const load = () => call<{ models: ModelView[] }>('GET', '/v1/models').then((r) => setModels(r.models), setError)
  useEffect(() => { void load() }, [])
  const create = useAction(async () => {
    let body: unknown
    try { body = JSON.parse(declaration) } catch (err) { throw new Error(`The declaration is not valid JSON: ${(err as Error).message}`) }
    const model = await call<ModelView>('POST', '/v1/models', body)
    location.hash = href('models', model.id)
  })
  return (
    <>
      <h1>Your models</h1>
      <Problem error={error} />
      {models === null
        ? <p>Loading models…</p>
        : models.length === 0
          ? <Empty>No models yet. Declare your first one below: its name and the capabilities its devices report (see the capability catalogue in the API document at <a href="/docs">/docs</a>).</Empty>
          : (
            <table aria-label="Models">
              <thead><tr><th>Model</th><th>Capabilities</th><th>Payloads</th></tr></thead>
              <tbody>
                {models.map((m) => (
                  <tr data-model={m.id}>
                    <td><a href={href('models', m.id)}>{m.name}</a></td>
                    <td>{m.capabilities.map((c) => c.name).join(', ')}</td>
                    <td>{m.mapping ? 'own dialect (mapping)' : 'canonical JSON'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            )}
      <form class="card" onSubmit={(e) => { e.preventDefault(); void create.run() }}>
        <h2>Declare a model</h2>
        <label>Declaration (JSON) <textarea rows={6} spellcheck={false} value={declaration} onInput={(e) => setDeclaration(e.currentTarget.value)} /></label>
        <Problem error={create.error} />
        <button type="submit" class="primary" disabled={create.busy}>Declare model</button>
      </form>
    </>
  )
}

/** One model: its capabilities, mapping editor with dry-run, rejection feed, provisioning. */
export function ModelPage ({ id }: { id: string }) {
  const [model, setModel] = useState<ModelView | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => { call<ModelView>('GET', `/v1/models/${encodeURIComponent(id)}`).then(setModel, setError) }, [id])
  if (error) return <><Problem error={error} /><p><a href={href()}>Back to your models</a></p></>
  if (!model) return <p>Loading the model…</p>
  return (
    <>
      <p><a href={href()}>← Models</a></p>
      <h1>{model.name}</h1>
      <p class="meta"><code>{model.id}</code></p>
      <section class="card">
        <h2>Capabilities</h2>
        <table aria-label="Capabilities">
          <thead><tr><th>Capability</th><th>Kind</th><th>Unit</th><th>Range or values</th><th>Owners can set</th></tr></thead>
          <tbody>
            {model.capabilities.map((c) => (
              <tr><td>{c.name}</td><td>{c.kind}</td><td>{c.unit ?? '—'}</td>
                <td>{c.enum ? c.enum.join(', ') : c.min !== undefined || c.max !== undefined ? `${c.min ?? ''} to ${c.max ?? ''}` : '—'}</td>
                <td>{c.settable ? 'yes' : 'no'}</td></tr>
            ))}
          </tbody>
        </table>
      </section>
      <MappingEditor model={model} onSaved={setModel} />
      <Rejections modelId={model.id} />
      <Provision modelId={model.id} />
    </>
  )
}

type TestResult = { ok: true, ts: string, readings: Record<string, Value>, problems: string[] } | { ok: false, reason: string }

function MappingEditor ({ model, onSaved }: { model: ModelView, onSaved: (m: ModelView) => void }) {
  const [mapping, setMapping] = useState(model.mapping ? JSON.stringify(model.mapping, null, 2) : '')
  const [payloads, setPayloads] = useState('')
  const [results, setResults] = useState<{ mapping: string, results: TestResult[] } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [saved, setSaved] = useState(false)
  const round = useRef(0)
  const parsedMapping = (): unknown => {
    if (mapping.trim() === '') return undefined
    try { return JSON.parse(mapping) } catch (err) { throw new Error(`The mapping is not valid JSON: ${(err as Error).message}`) }
  }
  useEffect(() => {
    const lines = payloads.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 100)
    if (lines.length === 0) { setResults(null); setError(null); return }
    const mine = ++round.current
    const timer = setTimeout(async () => {
      try {
        const candidate = parsedMapping()
        const r = await call<{ mapping: string, results: TestResult[] }>('POST', `/v1/models/${encodeURIComponent(model.id)}/mapping:test`, { payloads: lines, ...(candidate !== undefined && { mapping: candidate }) })
        if (mine === round.current) { setResults(r); setError(null) }
      } catch (err) {
        if (mine === round.current) { setResults(null); setError(err) }
      }
    }, 300)
    return () => clearTimeout(timer)
  }, [mapping, payloads])
  const save = useAction(async () => {
    setSaved(false)
    const candidate = parsedMapping()
    const updated = candidate === undefined
      ? await call<ModelView>('DELETE', `/v1/models/${encodeURIComponent(model.id)}/mapping`)
      : await call<ModelView>('PUT', `/v1/models/${encodeURIComponent(model.id)}/mapping`, candidate)
    onSaved(updated)
    setSaved(true)
  })
  return (
    <section class="card mapping">
      <h2>Payload mapping</h2>
      <p class="hint">How this model's payloads become canonical readings. Leave it empty for devices that speak canonical JSON. The dry run below uses what is in the editor, before you save.</p>
      <div class="two">
        <label>Mapping (JSON) <textarea rows={12} spellcheck={false} value={mapping} onInput={(e) => { setMapping(e.currentTarget.value); setSaved(false) }} /></label>
        <label>Sample payloads, one per line <textarea rows={12} wrap="off" spellcheck={false} value={payloads} placeholder='{"t": 1700000000, "data": {"temp_x10": 215}}' onInput={(e) => setPayloads(e.currentTarget.value)} /></label>
      </div>
      <Problem error={error} />
      {results && (
        <ol class="results" aria-label="Dry-run results" aria-live="polite">
          {results.results.map((r) => r.ok
            ? (
              <li class="ok" data-result="ok">
                <span class="badge online">readings</span>{' '}
                {Object.entries(r.readings).map(([k, v]) => <span class="reading" data-reading={k}>{k} = {String(v)}</span>)}
                {r.problems.map((p) => <span class="problem-inline">{p}</span>)}
              </li>
              )
            : <li class="rejected" data-result="rejected"><span class="badge offline">rejected</span> {r.reason}</li>)}
        </ol>
      )}
      <Problem error={save.error} />
      <button type="button" class="primary" disabled={save.busy} onClick={() => save.run()}>Save mapping</button>
      {saved && <span role="status" class="saved"> Saved: devices of this model use it within a second.</span>}
    </section>
  )
}

interface Rejection { at: string, deviceId: string, reason: string, payload: string }

function Rejections ({ modelId }: { modelId: string }) {
  const [rejections, setRejections] = useState<Rejection[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout>
    const poll = async () => {
      try {
        const r = await call<{ rejections: Rejection[] }>('GET', `/v1/models/${encodeURIComponent(modelId)}/rejections?limit=50`)
        if (!stopped) { setRejections(r.rejections); setError(null) }
      } catch (err) { if (!stopped) setError(err) }
      if (!stopped) timer = setTimeout(poll, 2000)
    }
    void poll()
    return () => { stopped = true; clearTimeout(timer) }
  }, [modelId])
  return (
    <section class="card">
      <h2>Rejected payloads <span class="hint">(refreshes every 2 s)</span></h2>
      <Problem error={error} />
      {rejections === null
        ? <p>Loading…</p>
        : rejections.length === 0
          ? <Empty>No rejected payloads. When a device of this model sends something the mapping cannot read, it shows here with the reason.</Empty>
          : (
            <table aria-label="Rejected payloads">
              <thead><tr><th>When</th><th>Device</th><th>Reason</th><th>Payload</th></tr></thead>
              <tbody>
                {rejections.map((r) => <tr data-rejection={r.deviceId}><td>{new Date(r.at).toLocaleTimeString()}</td><td><code>{r.deviceId}</code></td><td>{r.reason}</td><td><code class="payload">{r.payload}</code></td></tr>)}
              </tbody>
            </table>
            )}
    </section>
  )
}

interface Provisioned { id: string, secret: string, claimCode: string }

function Provision ({ modelId }: { modelId: string }) {
  const [count, setCount] = useState(1)
  const [devices, setDevices] = useState<Provisioned[] | null>(null)
  const [link, setLink] = useState<string | null>(null)
  const action = useAction(async () => {
    const r = await call<{ devices: Provisioned[] }>('POST', '/v1/devices', { model: modelId, count })
    setDevices(r.devices)
    const csv = ['id,secret,claimCode', ...r.devices.map((d) => `${d.id},${d.secret},${d.claimCode}`)].join('\n') + '\n'
    if (link) URL.revokeObjectURL(link)
    setLink(URL.createObjectURL(new Blob([csv], { type: 'text/csv' })))
  })
  return (
    <section class="card">
      <h2>Provision devices</h2>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); void action.run() }}>
        <label>How many <input type="number" min={1} max={1000} required value={count} onInput={(e) => setCount(Number(e.currentTarget.value))} /></label>
        <button type="submit" class="primary" disabled={action.busy}>Provision</button>
      </form>
      <Problem error={action.error} />
      {devices && (
        <div class="once">
          <p role="status">{devices.length} device{devices.length === 1 ? '' : 's'} provisioned. The secrets and claim codes are shown this once: download the CSV now and flash each secret into its device; the claim code goes on the label.</p>
          {link && <a class="button primary" href={link} download={`trellis-${modelId}-devices.csv`}>Download CSV</a>}
          <textarea aria-label="Provisioned devices as CSV" readOnly rows={Math.min(10, devices.length + 1)} value={['id,secret,claimCode', ...devices.map((d) => `${d.id},${d.secret},${d.claimCode}`)].join('\n')} />
        </div>
      )}
    </section>
  )
}
