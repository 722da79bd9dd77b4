const startedAt = Date.now()

/**
 * One progress line on stderr, with the time since the bench started: a bench
 * runs for minutes, and its table (stdout) comes only at the end. Redirecting
 * stdout keeps the table alone; `2>/dev/null` silences progress.
 */
export function progress (bench: string, message: string): void {
  process.stderr.write(`[${bench} +${((Date.now() - startedAt) / 1000).toFixed(0)}s] ${message}\n`)
}
