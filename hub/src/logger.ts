import { pino, type Logger } from 'pino'

/** Credentials never reach the log, whichever component logs an object holding them. */
export const redactedPaths = [
  'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', '*.*.headers.authorization',
  'password', '*.password', 'secret', '*.secret', 'token', '*.token',
]
const redact = { paths: redactedPaths, censor: '[redacted]' }

export interface LoggerOptions {
  /** pino level. Default info. */
  level?: string
  /** `pretty`, `json`, or `auto`: pretty when the destination is a terminal. Default auto. */
  format?: 'auto' | 'pretty' | 'json'
  /** File descriptor the lines go to. Default 1 (stdout); `npm start` uses 2 so its banner on stdout stays whole. */
  fd?: 1 | 2
}

/**
 * The logger of every entry point: JSON lines for collectors, or pino-pretty's
 * coloured lines when a person watches a terminal. Tests and libraries pass
 * their own logger instead.
 */
export async function createLogger (opts: LoggerOptions = {}): Promise<Logger> {
  const fd = opts.fd ?? 1
  const level = opts.level ?? 'info'
  const format = opts.format ?? 'auto'
  const pretty = format === 'pretty' || (format === 'auto' && Boolean((fd === 1 ? process.stdout : process.stderr).isTTY))
  if (!pretty) return pino({ level, redact }, pino.destination({ fd, sync: true }))
  // Loaded only for a terminal: the JSON path never pays for it.
  const { default: prettyStream } = await import('pino-pretty')
  return pino({ level, redact }, prettyStream({ destination: fd, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }))
}
