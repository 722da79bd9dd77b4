// autocannon ships no types; the bench uses this much of it.
declare module 'autocannon' {
  interface Histogram { average: number, p50: number, p99: number, total: number }
  interface Result { requests: Histogram, latency: Histogram, non2xx: number, errors: number, timeouts: number }
  function autocannon (opts: Record<string, unknown>): Promise<Result>
  export default autocannon
}
