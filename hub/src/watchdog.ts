import { spawn } from 'node:child_process'

// A shell that reads the server's pid from a pipe this process holds. When the
// pipe closes, because this process stopped or died (even by SIGKILL, when no
// exit hook runs), it signals the server, waits up to 10 s, then kills it.
const script = `
alive () { s=$(sed -n 's/^[0-9]* ([^)]*) \\(.\\).*/\\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
pid=
while read -r line; do pid=$line; done
if [ -n "$pid" ] && kill -"$1" "$pid" 2>/dev/null; then
  i=0
  while alive "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null
fi
if [ -n "$2" ]; then rm -rf -- "$2"; fi
`

/** Stops a server that must not outlive this process, whichever way this process ends. */
export interface Watchdog {
  readonly pid: number | undefined
  /** The server to stop: the last pid given (a supervised server's pid changes on each restart). */
  watch (pid: number): void
  /** Stops the watched server now, as this process's death would, and resolves once the watchdog is done. */
  release (): Promise<void>
}

/**
 * Starts the watchdog of one server: `signal` is what asks that server to stop
 * cleanly (influxd: TERM, PostgreSQL: INT, its fast shutdown); `removeDir`, a
 * folder to remove after it stopped (a throwaway data folder), or none.
 */
export function startWatchdog (name: string, signal: 'TERM' | 'INT', removeDir = ''): Watchdog {
  const shell = spawn('sh', ['-c', script, name, signal, removeDir], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  const exited = new Promise<void>((resolve) => shell.once('exit', () => resolve()))
  shell.stdin!.on('error', () => {})
  return {
    get pid () { return shell.pid },
    watch (pid) { shell.stdin!.write(`${pid}\n`) },
    async release () {
      shell.stdin!.end()
      await exited
    },
  }
}
