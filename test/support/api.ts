/** A small JSON client for the hub's HTTP API. */
export interface ApiResponse<T = any> { status: number, body: T, headers: Headers }

export function apiClient (baseUrl: string) {
  const call = async <T = any>(method: string, path: string, opts: { token?: string, body?: unknown, raw?: string, headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...opts.headers }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    let payload: string | undefined
    if (opts.raw !== undefined) payload = opts.raw
    else if (opts.body !== undefined) payload = JSON.stringify(opts.body)
    if (payload !== undefined) headers['content-type'] ??= 'application/json'
    const res = await fetch(baseUrl + path, { method, headers, body: payload })
    const text = await res.text()
    let body: any = text
    if ((res.headers.get('content-type') ?? '').includes('json') && text) body = JSON.parse(text)
    return { status: res.status, body: body as T, headers: res.headers }
  }
  return {
    call,
    get: <T = any>(path: string, token?: string) => call<T>('GET', path, { token }),
    post: <T = any>(path: string, body: unknown, token?: string) => call<T>('POST', path, { token, body }),
    put: <T = any>(path: string, body: unknown, token?: string) => call<T>('PUT', path, { token, body }),
    delete: <T = any>(path: string, token?: string) => call<T>('DELETE', path, { token }),
  }
}

export type ApiClient = ReturnType<typeof apiClient>

/** A maker with one model and `count` provisioned devices, and an owner who claimed them all. */
export async function seedFleet (api: ApiClient, opts: { model?: Record<string, unknown>, count?: number, makerName?: string, email?: string } = {}) {
  const maker = await api.post('/v1/makers', { name: opts.makerName ?? 'Acme Appliances' })
  if (maker.status !== 201) throw new Error(`maker sign-up failed: ${JSON.stringify(maker.body)}`)
  const model = await api.post('/v1/models', opts.model ?? { name: 'thermo-1', capabilities: ['temperature', 'targetTemperature', 'power', 'humidity'] }, maker.body.token)
  if (model.status !== 201) throw new Error(`model declaration failed: ${JSON.stringify(model.body)}`)
  const provisioned = await api.post('/v1/devices', { model: model.body.id, count: opts.count ?? 1 }, maker.body.token)
  if (provisioned.status !== 201) throw new Error(`provisioning failed: ${JSON.stringify(provisioned.body)}`)
  const email = opts.email ?? `owner-${Math.random().toString(36).slice(2)}@example.com`
  const owner = await api.post('/v1/owners', { email, password: 'correct horse battery' })
  if (owner.status !== 201) throw new Error(`owner sign-up failed: ${JSON.stringify(owner.body)}`)
  for (const d of provisioned.body.devices) {
    const claimed = await api.post('/v1/devices/claim', { claimCode: d.claimCode }, owner.body.token)
    if (claimed.status !== 200) throw new Error(`claim failed: ${JSON.stringify(claimed.body)}`)
  }
  return {
    makerId: maker.body.id as string,
    makerToken: maker.body.token as string,
    modelId: model.body.id as string,
    ownerId: owner.body.id as string,
    ownerToken: owner.body.token as string,
    devices: provisioned.body.devices as Array<{ id: string, secret: string, claimCode: string }>,
  }
}
