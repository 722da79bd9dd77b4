/**
 * Awaits a condition with a deadline: for state that can only be observed by
 * asking (a query to InfluxDB, an HTTP read). Throws with the last value seen.
 */
export async function eventually<T> (probe: () => Promise<T> | T, accept: (value: T) => boolean, opts: { timeoutMs?: number, what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000)
  let delay = 10
  let last: T | undefined
  let lastError: unknown
  for (;;) {
    try {
      last = await probe()
      if (accept(last)) return last
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}; last value: ${JSON.stringify(last)}${lastError ? `; last error: ${String(lastError)}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(200, delay * 2)
  }
}

/** Resolves with the first event `name` whose arguments pass `accept`, or rejects after the deadline. */
export async function nextEvent<T extends unknown[]> (emitter: { on (n: string, f: (...a: any[]) => void): unknown, off (n: string, f: (...a: any[]) => void): unknown }, name: string, accept: (...args: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { emitter.off(name, listener); reject(new Error(`no ${name} event within ${timeoutMs} ms`)) }, timeoutMs)
    const listener = (...args: any[]) => {
      if (!accept(...(args as T))) return
      clearTimeout(timer)
      emitter.off(name, listener)
      resolve(args as T)
    }
    emitter.on(name, listener)
  })
}
