import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { HubConfig, shutdownDeadlineMs } from '@trellis/hub'
import { root } from './process-tree.js'

// Docker does not run on these machines: the image and compose files are checked as text.
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8')
const compose = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')
const stages = dockerfile.split(/^FROM /m).slice(1).map((s) => `FROM ${s}`)
const runtime = stages.at(-1)!
const instructions = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim())

/** The lines of one top-level service of docker-compose.yml. */
function service (name: string): string {
  const lines = compose.split('\n')
  const start = lines.indexOf(`  ${name}:`)
  expect(start, `service ${name}`).toBeGreaterThan(-1)
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l))
  return lines.slice(start, end === -1 ? undefined : end).join('\n')
}

const seconds = (duration: string) => {
  const m = /^(\d+)(ms|s|m)$/.exec(duration)
  if (!m) throw new Error(`unreadable duration ${duration}`)
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 } as const)[m[2] as 'ms' | 's' | 'm']
}

describe('the image', () => {
  it('builds in one stage and runs in another, on a supported Node LTS', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    for (const stage of stages) expect(stage.split('\n')[0]).toMatch(/^FROM node:(22|24)(\.\d+)*-bookworm-slim( AS \w+)?$/)
    expect(stages[0]).toContain('tsc -b tsconfig.build.json')
  })

  it('installs production dependencies only, runs as a non-root user and runs the built JavaScript with plain node', () => {
    expect(runtime).toMatch(/^RUN npm ci --omit=dev/m)
    const user = instructions(runtime, 'USER')
    expect(user.length).toBe(1)
    expect(user[0]).not.toMatch(/^(root|0)$/)
    const cmd = JSON.parse(instructions(runtime, 'CMD')[0]) as string[]
    expect(cmd[0]).toBe('node')
    expect(cmd.join(' ')).not.toMatch(/tsx|npx|npm/)
    // The file CMD runs is what tsc emits for hub/src/main.ts.
    expect(cmd.at(-1)).toBe('hub/dist/src/main.js')
    expect(existsSync(path.join(root, 'hub/src/main.ts'))).toBe(true)
  })

  it('exposes every port the hub listens on by default and checks its health on /healthz', () => {
    const defaults = HubConfig.parse({})
    const exposed = instructions(runtime, 'EXPOSE').flatMap((l) => l.split(/\s+/)).map(Number)
    expect(exposed.sort()).toEqual([defaults.MQTT_PORT, defaults.PORT, defaults.MQTTS_PORT].sort())
    const check = instructions(runtime, 'HEALTHCHECK')[0]
    expect(check).toContain('dist/healthcheck.js')
    expect(readFileSync(path.join(root, 'scripts/healthcheck.ts'), 'utf8')).toContain("path: '/healthz'")
  })
})

describe('docker compose', () => {
  it('gives the hub longer to stop than its shutdown deadline, and restarts it', () => {
    const hub = service('hub')
    const grace = /stop_grace_period: (\S+)/.exec(hub)
    expect(grace, 'hub has a stop_grace_period').not.toBeNull()
    expect(seconds(grace![1])).toBeGreaterThan(shutdownDeadlineMs / 1000)
    expect(hub).toMatch(/restart: (unless-stopped|always|on-failure)/)
  })

  it('runs Prometheus and Grafana with the ops/ files in a monitoring profile', () => {
    for (const name of ['prometheus', 'grafana']) expect(service(name)).toContain('profiles: [monitoring]')
    for (const file of ['ops/prometheus/prometheus.yml', 'ops/grafana/dashboards', 'ops/grafana/provisioning']) {
      expect(compose).toContain(`./${file}`)
      expect(existsSync(path.join(root, file))).toBe(true)
    }
    expect(readFileSync(path.join(root, 'ops/prometheus/prometheus.yml'), 'utf8')).toContain("targets: ['hub:8080']")
  })
})
