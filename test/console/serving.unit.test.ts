import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import Fastify, { type FastifyInstance } from 'fastify'
import { serveConsole } from '../../hub/src/api/console.js'

let dir: string
let built: FastifyInstance
let unbuilt: FastifyInstance

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'trellis-console-'))
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>console</title>')
  await writeFile(path.join(dir, 'app.js'), 'console.log(1)')
  built = Fastify()
  // As the API does: every answer forbids every source, unless the route says otherwise.
  built.addHook('onSend', async (_req, reply, payload) => { reply.header('content-security-policy', "default-src 'none'"); return payload })
  serveConsole(built, dir)
  unbuilt = Fastify()
  serveConsole(unbuilt, path.join(dir, 'not-built'))
})

afterAll(async () => {
  await built?.close()
  await unbuilt?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('serving the console', () => {
  it('serves its page and files with a policy that lets only its own origin in', async () => {
    const page = await built.inject({ method: 'GET', url: '/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'self'; style-src 'self';.*connect-src 'self';.*frame-ancestors 'none'$/)
    const script = await built.inject({ method: 'GET', url: '/console/app.js' })
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(script.body).toBe('console.log(1)')
  })

  it('serves nothing outside its folder', async () => {
    for (const url of ['/console/..%2f..%2fpackage.json', '/console/.env', '/console/missing.js']) {
      expect((await built.inject({ method: 'GET', url })).statusCode, url).toBe(404)
    }
  })

  it('says how to build it when it is not built', async () => {
    const res = await unbuilt.inject({ method: 'GET', url: '/' })
    expect(res.statusCode).toBe(503)
    expect(res.body).toContain('npm run build:console')
  })
})
