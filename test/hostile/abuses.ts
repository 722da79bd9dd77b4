/**
 * Issue #17's abuses as data, one per finding, each bounded in count and time.
 *
 * `npm test` runs them at `testScale` in bystander.int.test.ts (a few seconds
 * each, the loaded-machine p99 budget, an RSS bound per abuse); `npm run
 * bench -- abuse` runs them at `benchScale` (bench/abuse.ts, the issue's
 * strict 50 ms p99). An abuse throws when the hub gives the abuser what it
 * must not (a former owner's command, a 500, a hub that stops answering);
 * otherwise it returns a short note of what the abuser got.
 *
 * The schedule floods (finding 5) live in bench/abuse.ts and in
 * schedules-flood.int.test.ts: they need minutes of firing, not seconds.
 */
import net from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { maxPathIndex, topics } from '@trellis/device-sdk'
import { defaultRateLimits } from '../../hub/src/api/throttle.js'
import { apiClient, seedFleet, type ApiClient, type ApiResponse } from '../support/api.js'

/** How hard each abuse pushes; every count is also cut short by the deadline. */
export interface Scale {
  /** Release/re-claim cycles, each with a full queue of the former owner's commands. */
  releases: number
  /** Refused cron expressions posted. */
  cronBombs: number
  /** Models whose devices send rejected payloads, and messages sent in all. */
  rejectionModels: number
  rejectedMessages: number
  /** Commands sent through a mapping whose command path holds the largest index allowed. */
  mappingCommands: number
  /** Mapping replacements sent back to back after the models, for at most half the time left. */
  mappingWrites: number
  /** Models declared back to back (the maker's quota is 200, its write rate 2/s after a burst of 20), each with a mapping near the 64 KiB quota. */
  models: number
  /** Devices one maker provisions (1000 per request), then pages through. */
  fleet: number
  /** Times the fleet is paged through. */
  fleetPasses: number
  /** Readings stamped far ahead and far back. */
  stampedReadings: number
  /** Times the flooding device reconnects to send refused SUBSCRIBEs. */
  subscribeRounds: number
  /** Wrong passwords tried against one account, and logins that mint tokens. */
  wrongPasswords: number
  logins: number
  /** Out-of-range history queries, and bodies nested 5,000 deep. */
  badQueries: number
  /** HTTP connections opened and held. */
  connections: number
  /** Accounts flooding requests back to back, and requests each sends. */
  floodAccounts: number
  floodRequests: number
  /** Requests each flooding account keeps in flight. */
  floodInFlight: number
}

export const testScale: Scale = {
  releases: 3,
  cronBombs: 20,
  rejectionModels: 3,
  rejectedMessages: 300,
  mappingCommands: 20,
  models: 40,
  mappingWrites: 40,
  fleet: 3000,
  fleetPasses: 1,
  stampedReadings: 200,
  subscribeRounds: 3,
  wrongPasswords: 60,
  logins: 60,
  badQueries: 40,
  connections: 300,
  floodAccounts: 2,
  floodRequests: 900,
  floodInFlight: 6,
}

export const benchScale: Scale = {
  releases: 200,
  cronBombs: 2000,
  rejectionModels: 150,
  rejectedMessages: 14_000,
  mappingCommands: 2000,
  models: 200,
  mappingWrites: 5000,
  fleet: 24_000,
  fleetPasses: 5,
  stampedReadings: 1405,
  subscribeRounds: 50,
  wrongPasswords: 2000,
  logins: 2000,
  badQueries: 1000,
  connections: 3000,
  floodAccounts: 19,
  floodRequests: 5000,
  floodInFlight: 1,
}

export interface HostileContext {
  httpUrl: string
  mqttUrl: string
  scale: Scale
  /** The abuse stops by itself by then (epoch ms). */
  deadline: number
  progress (line: string): void
}

export interface HostileAbuse<P = unknown> {
  name: string
  /** The finding of issue #17 it reproduces. */
  finding: number
  summary: string
  /** How much the hub's RSS may grow while it runs, in the test (MiB). */
  rssBoundMiB: number
  /** What the test variant's note must show (e.g. that the abuser was limited); default nothing. */
  testExpects?: RegExp
  /** Set-up, not measured. */
  prepare? (ctx: HostileContext): Promise<P>
  run (ctx: HostileContext, state: P): Promise<string>
}

/** Counts answers by status: `3× 201, 17× 429`. */
export function tally (statuses: number[]): string {
  const counts = new Map<number, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${n}× ${s || 'no answer'}`).join(', ')
}

/** Throws on a status the hub must never answer an abuser with: 5xx, or none at all. */
function noServerErrors (what: string, statuses: number[]): string {
  const bad = statuses.filter((s) => s === 0 || s >= 500)
  if (bad.length > 0) throw new Error(`${what}: ${tally(statuses)}`)
  return `${what}: ${tally(statuses)}`
}

const live = (ctx: HostileContext) => Date.now() < ctx.deadline
const rand = () => Math.random().toString(36).slice(2)
const lock = { name: 'lock-h', capabilities: ['lock', 'temperature'] }

async function device (ctx: HostileContext, d: { id: string, secret: string }): Promise<MqttClient> {
  return await mqtt.connectAsync(ctx.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 })
}

async function newOwner (api: ApiClient): Promise<string> {
  const owner = await api.post('/v1/owners', { email: `h-${rand()}@example.com`, password: 'correct horse battery' })
  if (owner.status !== 201) throw new Error(`owner sign-up: ${owner.status} ${JSON.stringify(owner.body)}`)
  return owner.body.token
}

async function newMaker (api: ApiClient): Promise<string> {
  const maker = await api.post('/v1/makers', { name: `Hostile ${rand()}` })
  if (maker.status !== 201) throw new Error(`maker sign-up: ${maker.status} ${JSON.stringify(maker.body)}`)
  return maker.body.token
}

async function status (p: Promise<ApiResponse>): Promise<number> {
  return await p.then((r) => r.status, () => 0)
}

/** The call again after Retry-After while the hub answers RATE_LIMITED, until the deadline: an abuser that paces itself. */
async function politely (ctx: HostileContext, call: () => Promise<ApiResponse>): Promise<ApiResponse> {
  for (;;) {
    const res = await call()
    // A full command queue is 429 too (DEVICE_BUSY), and waiting does not empty it.
    if (res.body?.error?.code !== 'RATE_LIMITED' || !live(ctx)) return res
    const wait = Number(res.headers.get('retry-after') ?? 1) * 1000
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(wait, ctx.deadline - Date.now()))))
  }
}

export const hostileAbuses: Array<HostileAbuse<any>> = []

hostileAbuses.push({
  name: 'release and re-claim with queued commands',
  finding: 1,
  summary: 'an owner fills an offline lock\'s queue with unlocks, releases it, the other owner claims it; they take turns',
  rssBoundMiB: 64,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const fleet = await seedFleet(api, { model: lock })
    const id = fleet.devices[0].id
    // Two owners take turns: sign-ups are limited, and a re-claim by a former owner is the same clean break.
    const owners = [fleet.ownerToken, await newOwner(api)]
    let queued = 0
    let cycles = 0
    for (; cycles < ctx.scale.releases && live(ctx); cycles++) {
      const holder = owners[cycles % 2]
      const next = owners[(cycles + 1) % 2]
      // Up to the per-device cap of pending commands (100); the queue refuses the rest with 429.
      for (let i = 0; i < 100; i++) {
        const q = await politely(ctx, () => api.post(`/v1/devices/${id}/commands?queue=true&ttl=10m`, { set: { lock: false } }, holder))
        if (q.status !== 202) break
        queued++
      }
      const released = await politely(ctx, () => api.post(`/v1/devices/${id}/release`, {}, holder))
      if (released.status !== 200) throw new Error(`release: ${released.status}`)
      const claimed = await politely(ctx, () => api.post('/v1/devices/claim', { claimCode: released.body.claimCode }, next))
      if (claimed.status !== 200) throw new Error(`claim: ${claimed.status}`)
      const seen = await politely(ctx, () => api.get(`/v1/devices/${id}/commands`, next))
      if (seen.body.commands?.length !== 0) throw new Error(`the new owner sees ${seen.body.commands?.length} of the former owner's commands`)
      const first = await politely(ctx, () => api.post(`/v1/devices/${id}/commands?queue=true&ttl=10m`, { set: { lock: true } }, next))
      if (first.status !== 202) throw new Error(`the new owner's first command: ${first.status} ${JSON.stringify(first.body)}`)
    }
    return `${cycles} cycles, ${queued} unlocks queued; each new owner saw none and its own command was queued`
  },
})

hostileAbuses.push({
  name: 'cron bombs',
  finding: 2,
  summary: 'one owner posts cron ranges of 2^32, 10^7 and huge steps',
  rssBoundMiB: 32,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const fleet = await seedFleet(api)
    const bombs = ['0-4294967295 * * * *', '0-10000000 * * * *', '* * 1-99999999 * *', '*/4294967295 * * * * *', '0 0 * * 0-9999999999']
    const statuses: number[] = []
    for (let i = 0; i < ctx.scale.cronBombs && live(ctx); i++) {
      statuses.push(await status(api.post('/v1/schedules', { deviceId: fleet.devices[0].id, cron: bombs[i % bombs.length], command: { set: { power: true } } }, fleet.ownerToken)))
    }
    if (statuses.some((s) => s === 201)) throw new Error(`a cron bomb was accepted: ${tally(statuses)}`)
    return noServerErrors('schedules', statuses)
  },
})

hostileAbuses.push({
  name: 'rejected payloads with many unknown keys',
  finding: 3,
  summary: 'devices of many models send 16 KB payloads of ~1,500 unknown keys each',
  rssBoundMiB: 96,
  async prepare (ctx) {
    const api = apiClient(ctx.httpUrl)
    const maker = await newMaker(api)
    const clients: MqttClient[] = []
    for (let m = 0; m < ctx.scale.rejectionModels && live(ctx); m++) {
      const model = await politely(ctx, () => api.post('/v1/models', { name: `reject-${m}`, capabilities: ['temperature'] }, maker))
      if (model.status !== 201) break
      const d = await politely(ctx, () => api.post('/v1/devices', { model: model.body.id, count: 1 }, maker))
      if (d.status !== 201) break
      clients.push(await device(ctx, d.body.devices[0]))
    }
    return clients
  },
  async run (ctx, clients: MqttClient[]) {
    const readings: Record<string, number> = {}
    for (let i = 0; i < 1500; i++) readings[`unknown_key_${i}`] = 1
    const payload = JSON.stringify({ readings })
    let sent = 0
    try {
      for (; sent < ctx.scale.rejectedMessages && live(ctx); sent++) {
        const c = clients[sent % clients.length]
        if (!c.connected) break
        // QoS 1, a window of one per device: the broker's own flow control, not the test's pace, bounds it.
        await c.publishAsync(topics.telemetry(c.options.clientId!), payload, { qos: 1 })
      }
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})))
    }
    return `${sent} payloads of ${payload.length} bytes over ${clients.length} models`
  },
})

hostileAbuses.push({
  name: 'huge array index in a mapping path, and commands through it',
  finding: 4,
  summary: 'a maker declares `commands.id: a[100000000]` (refused), then sends commands through a[1023], the largest allowed, to an offline device',
  rssBoundMiB: 48,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const mapping = (id: string) => ({ format: 'json', readings: [{ path: 'p', capability: 'power' }], commands: { id, set: [{ path: 'on', capability: 'power' }] } })
    const fleet = await seedFleet(api, { model: { name: 'lamp-h', capabilities: ['power'], mapping: mapping(`a[${maxPathIndex}]`) } })
    const huge = await api.post('/v1/models', { name: 'lamp-huge', capabilities: ['power'], mapping: mapping('a[100000000]') }, fleet.makerToken)
    if (huge.status !== 422) throw new Error(`a[100000000] was answered ${huge.status}`)
    const statuses: number[] = []
    for (let i = 0; i < ctx.scale.mappingCommands && live(ctx); i++) {
      statuses.push(await status(api.post(`/v1/devices/${fleet.devices[0].id}/commands`, { set: { power: true } }, fleet.ownerToken)))
    }
    return `a[100000000]: 422; ${noServerErrors('commands', statuses)}`
  },
})

hostileAbuses.push({
  name: 'model, mapping and provisioning floods, and paging GET /v1/models',
  finding: 5,
  summary: 'one maker declares models with mappings near the 64 KiB quota back to back, then replaces a mapping back to back, provisions 1000 devices at a time, and pages its models',
  rssBoundMiB: 96,
  testExpects: /^models: \d+× 201, \d+× 429.*; mapping replaced: (\d+× 200, )?\d+× 429; a mapping over 64 KiB: 422 INVALID_MAPPING; provisioning ×1000: \d+× 201.*1001 at once: 422/,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const maker = await newMaker(api)
    // Near the 64 KiB quota within the others: a rule per boolean capability, each value map 250 entries (the most is 256) of 64-character keys.
    const booleans = ['power', 'contact', 'motion', 'waterLeak', 'lock']
    const rules = (count: number) => booleans.slice(0, count).map((capability) => ({ path: capability, capability, map: Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`device-value-${i}-`.padEnd(64, 'x'), i % 2 === 0])) }))
    const statuses: number[] = []
    let model = ''
    let refusal = ''
    for (let i = 0; i < ctx.scale.models + 1 && live(ctx); i++) {
      const res = await api.post('/v1/models', { name: `flood-${i}`, capabilities: booleans, mapping: { format: 'json', readings: rules(3) } }, maker)
      statuses.push(res.status)
      if (res.status === 201) model = res.body.id
      else refusal ||= res.body?.error?.message ?? ''
    }
    // Then the last model's mapping replaced back to back, for half the time left: a flood that lasts, not a burst.
    const puts: number[] = []
    const floodUntil = Date.now() + (ctx.deadline - Date.now()) / 2
    for (let i = 0; i < ctx.scale.mappingWrites && model && Date.now() < floodUntil; i++) {
      puts.push(await status(api.put(`/v1/models/${model}/mapping`, { format: 'json', readings: rules(3) }, maker)))
    }
    // Past the write rate by now: it waits its turn, to be refused for its size.
    const oversize = await politely(ctx, () => api.post('/v1/models', { name: 'oversize', capabilities: booleans, mapping: { format: 'json', readings: rules(5) } }, maker))
    const provisioned: number[] = []
    for (let i = 0; i < 5 && model && live(ctx); i++) provisioned.push(await status(api.post('/v1/devices', { model, count: 1000 }, maker)))
    const tooMany = await status(api.post('/v1/devices', { model, count: 1001 }, maker))
    let pages = 0
    let after: string | null = null
    do {
      const page: ApiResponse = await api.get(`/v1/models?limit=200${after ? `&after=${after}` : ''}`, maker)
      if (page.status !== 200) throw new Error(`GET /v1/models: ${page.status}`)
      after = page.body.next
      pages++
    } while (after && pages < 10 && live(ctx))
    return `${noServerErrors('models', statuses)}${refusal ? ` (first refusal: ${refusal})` : ''}; ${noServerErrors('mapping replaced', puts)}; a mapping over 64 KiB: ${oversize.status} ${oversize.body?.error?.code ?? ''}; ${noServerErrors('provisioning ×1000', provisioned)}; 1001 at once: ${tooMany}; ${pages} model pages`
  },
})

hostileAbuses.push({
  name: 'future- and past-stamped readings',
  finding: 6,
  summary: 'one device sends readings stamped 23 h ahead and a week apart back to the year 2000',
  rssBoundMiB: 64,
  async prepare (ctx) {
    const fleet = await seedFleet(apiClient(ctx.httpUrl), { model: { name: 'thermo-h', capabilities: ['temperature'] } })
    return await device(ctx, fleet.devices[0])
  },
  async run (ctx, client: MqttClient) {
    const WEEK = 7 * 24 * 3_600_000
    let sent = 0
    try {
      for (; sent < ctx.scale.stampedReadings && live(ctx) && client.connected; sent++) {
        const ts = sent % 2 === 0 ? Date.now() + 23 * 3_600_000 : Date.UTC(2000, 0, 3) + Math.floor(sent / 2) * WEEK
        await client.publishAsync(topics.telemetry(client.options.clientId!), JSON.stringify({ ts, readings: { temperature: 20 } }), { qos: 1 })
      }
    } finally {
      await client.endAsync(true).catch(() => {})
    }
    return `${sent} readings, half 23 h ahead, half a week apart from 2000`
  },
})

hostileAbuses.push({
  name: 'SUBSCRIBE floods',
  finding: 7,
  summary: 'a device subscribes to other devices\' commands, 20 filters a packet without waiting, reconnecting each time it is cut off',
  rssBoundMiB: 48,
  async prepare (ctx) {
    return (await seedFleet(apiClient(ctx.httpUrl))).devices[0]
  },
  async run (ctx, d: { id: string, secret: string }) {
    let packets = 0
    let cutOff = 0
    for (let round = 0; round < ctx.scale.subscribeRounds && live(ctx); round++) {
      const client = await device(ctx, d).catch(() => null)
      if (!client) continue
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
      for (let i = 0; i < 200 && client.connected; i++, packets++) {
        client.subscribe(Array.from({ length: 20 }, (_, j) => topics.commands(`dev-other-${round}-${i}-${j}`)), { qos: 0 }, () => {})
      }
      const wasCut = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, Math.min(5_000, ctx.deadline - Date.now()))))])
      if (wasCut) cutOff++
      await client.endAsync(true).catch(() => {})
    }
    return `${packets} SUBSCRIBE packets of 20 refused filters; cut off ${cutOff} times`
  },
})

hostileAbuses.push({
  name: 'paging a big fleet',
  finding: 8,
  summary: 'a maker provisions a fleet, then pages through it 1000 devices at a time',
  rssBoundMiB: 128,
  async prepare (ctx) {
    const api = apiClient(ctx.httpUrl)
    const maker = await newMaker(api)
    const model = await api.post('/v1/models', { name: 'fleet-h', capabilities: ['power'] }, maker)
    for (let made = 0; made < ctx.scale.fleet && live(ctx); made += 1000) {
      const res = await politely(ctx, () => api.post('/v1/devices', { model: model.body.id, count: Math.min(1000, ctx.scale.fleet - made) }, maker))
      if (res.status !== 201) throw new Error(`provisioning: ${res.status} ${JSON.stringify(res.body)}`)
    }
    return maker
  },
  async run (ctx, maker: string) {
    const api = apiClient(ctx.httpUrl)
    let pages = 0
    let devices = 0
    for (let pass = 0; pass < ctx.scale.fleetPasses && live(ctx); pass++) {
      let after: string | null = null
      do {
        const page: ApiResponse = await api.get(`/v1/devices?limit=1000${after ? `&after=${after}` : ''}`, maker)
        if (page.status !== 200) throw new Error(`GET /v1/devices: ${page.status} ${JSON.stringify(page.body)}`)
        devices += page.body.devices.length
        after = page.body.next
        pages++
      } while (after && live(ctx))
    }
    return `${pages} pages, ${devices} devices listed`
  },
})

hostileAbuses.push({
  name: 'login lockout attempts',
  finding: 9,
  summary: 'a stranger tries wrong passwords for an owner\'s email as fast as answers come',
  // Each password check is an scrypt of 16 MiB, four at once on libuv's pool, and the allocator keeps what they used.
  rssBoundMiB: 128,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const email = `victim-${rand()}@example.com`
    await api.post('/v1/owners', { email, password: 'correct horse battery' })
    const statuses: number[] = []
    for (let i = 0; i < ctx.scale.wrongPasswords && live(ctx); i++) statuses.push(await status(api.post('/v1/sessions', { email, password: `wrong password ${i}` })))
    if (!statuses.includes(429)) throw new Error(`never throttled: ${tally(statuses)}`)
    return noServerErrors('wrong passwords', statuses)
  },
})

hostileAbuses.push({
  name: 'login token minting',
  finding: 10,
  summary: 'an owner logs in again and again, each login minting a token',
  // Each password check is an scrypt of 16 MiB, four at once on libuv's pool, and the allocator keeps what they used.
  rssBoundMiB: 128,
  testExpects: /live tokens after: ([1-9]|[1-4]\d|50)$/,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const email = `minter-${rand()}@example.com`
    await api.post('/v1/owners', { email, password: 'correct horse battery' })
    const statuses: number[] = []
    let token = ''
    for (let i = 0; i < ctx.scale.logins && live(ctx); i++) {
      const res = await api.post('/v1/sessions', { email, password: 'correct horse battery' }).catch(() => null)
      statuses.push(res?.status ?? 0)
      if (res?.status === 201 || res?.status === 200) token = res.body.token
    }
    const tokens = token ? await api.get('/v1/tokens', token) : null
    // The list shows revoked tokens too, newest first.
    const liveTokens = tokens?.body.tokens?.filter((t: { revokedAt: string | null }) => !t.revokedAt).length ?? '?'
    return `${noServerErrors('logins', statuses)}; live tokens after: ${liveTokens}`
  },
})

hostileAbuses.push({
  name: 'out-of-range history queries and deep bodies',
  finding: 10,
  summary: 'an owner asks for history from year 1000 to 9999, and a maker tests a sample nested 5,000 deep',
  rssBoundMiB: 48,
  async run (ctx) {
    const api = apiClient(ctx.httpUrl)
    const fleet = await seedFleet(api)
    const deep = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)
    const history: number[] = []
    const bodies: number[] = []
    for (let i = 0; i < ctx.scale.badQueries && live(ctx); i++) {
      history.push(await status(api.get(`/v1/devices/${fleet.devices[0].id}/telemetry?capability=temperature&from=1000-01-01T00:00:00Z&to=9999-01-01T00:00:00Z`, fleet.ownerToken)))
      bodies.push(await status(api.call('POST', `/v1/models/${fleet.modelId}/mapping:test`, { token: fleet.makerToken, raw: `{"payloads":[${deep}]}` })))
    }
    if (history.some((s) => s === 503) || bodies.some((s) => s !== 400 && s !== 429)) throw new Error(`history: ${tally(history)}; deep bodies: ${tally(bodies)}`)
    return `${noServerErrors('history', history)}; ${noServerErrors('deep bodies', bodies)}`
  },
})

hostileAbuses.push({
  name: 'HTTP connection flood',
  finding: 10,
  summary: 'a client opens idle HTTP connections and holds them',
  rssBoundMiB: 64,
  async run (ctx) {
    const { hostname, port } = new URL(ctx.httpUrl)
    const sockets: net.Socket[] = []
    let closedByHub = 0
    try {
      for (let i = 0; i < ctx.scale.connections && live(ctx); i++) {
        const s = net.connect(Number(port), hostname)
        s.on('error', () => {})
        s.on('close', () => { closedByHub++ })
        sockets.push(s)
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20))
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(2_000, ctx.deadline - Date.now()))))
      return `${sockets.length} connections held, ${closedByHub} closed by the hub`
    } finally {
      for (const s of sockets) s.destroy()
    }
  },
})

hostileAbuses.push({
  name: 'request floods from many accounts',
  finding: 5,
  summary: 'several owners each post schedules back to back (all refused at the 60 s minimum), then list their devices back to back; the per-account request limit answers 429',
  rssBoundMiB: 64,
  // Either some account outran its budget and was answered 429 with Retry-After, or none sent fast enough to (a loaded machine).
  testExpects: /\d+× 429.*Retry-After \d+ s|no account outran the limit/,
  async prepare (ctx) {
    const api = apiClient(ctx.httpUrl)
    return await Promise.all(Array.from({ length: ctx.scale.floodAccounts }, async () => await seedFleet(api)))
  },
  async run (ctx, fleets: Array<Awaited<ReturnType<typeof seedFleet>>>) {
    const api = apiClient(ctx.httpUrl)
    const statuses: number[] = []
    const byAccount = fleets.map(() => ({ sent: 0, limited: 0 }))
    let retryAfter = ''
    const started = Date.now()
    const senders = fleets.flatMap((f, a) => Array.from({ length: ctx.scale.floodInFlight }, () => ({ f, a })))
    await Promise.all(senders.map(async ({ f, a }) => {
      for (let i = 0; i < ctx.scale.floodRequests / ctx.scale.floodInFlight && live(ctx); i++) {
        const res = await (i % 2 === 0
          ? api.post('/v1/schedules', { deviceId: f.devices[0].id, cron: '* * * * * *', command: { set: { power: true } } }, f.ownerToken)
          : api.get('/v1/devices', f.ownerToken)).catch(() => null)
        statuses.push(res?.status ?? 0)
        byAccount[a].sent++
        if (res?.status === 429) {
          byAccount[a].limited++
          retryAfter = res.headers.get('retry-after') ?? 'none'
        }
      }
    }))
    if (statuses.includes(429) && !/^\d+$/.test(retryAfter)) throw new Error(`429 without Retry-After (${retryAfter})`)
    // An account that sent more than its burst and what refilled meanwhile must have been refused some.
    const { perSecond, burst } = defaultRateLimits.request
    const reach = Math.ceil(burst + perSecond * (Date.now() - started) / 1000)
    const outran = byAccount.filter((b) => b.sent > reach)
    if (outran.some((b) => b.limited === 0)) throw new Error(`an account sent ${Math.max(...outran.map((b) => b.sent))} requests, past the ${reach} its budget allows, and none was refused`)
    const most = Math.max(...byAccount.map((b) => b.sent))
    return `${noServerErrors(`${fleets.length} accounts`, statuses)}${retryAfter ? `; Retry-After ${retryAfter} s` : ''}${outran.length === 0 ? `; no account outran the limit (at most ${most} requests each, ${reach} allowed)` : ''}`
  },
})
