import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from './errors.js'

// Swagger UI at /docs: swagger-ui-dist's prebuilt bundle and styles, served from
// this origin (no CDN, works offline), started by a script of our own that points
// it at /docs/json. The OpenAPI document is ours (route.ts), so no fastify plugin.

const require = createRequire(import.meta.url)
const swaggerUiDir = path.dirname(require.resolve('swagger-ui-dist/package.json'))
const { version: swaggerUiVersion } = require('swagger-ui-dist/package.json') as { version: string }

/** Where the page's files are served: `/docs/assets/<file>`. */
const assetPath = '/docs/assets/'
// The version in the URL lets a browser keep the files a day yet load new ones after an upgrade.
const asset = (file: string) => `${assetPath}${file}?v=${swaggerUiVersion}`

/** The files of swagger-ui-dist the page loads, by name, with their media type. No other name is served. */
const vendorFiles = new Map([
  ['swagger-ui-bundle.js', 'text/javascript; charset=utf-8'],
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['favicon-32x32.png', 'image/png'],
])

const initializerFile = 'trellis-docs.js'

// A file, not an inline script, so the page's policy needs no 'unsafe-inline' for scripts.
// BaseLayout: the page shows this hub's document only, without the box to load another URL.
const initializer = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/docs/json',
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    displayOperationId: true,
    // Nothing leaves this origin: no call to swagger.io's validator.
    validatorUrl: null
  })
})
`

/**
 * What Swagger UI needs and nothing more: its script and styles from this
 * origin (no 'unsafe-inline' for either, no eval), its CSS's SVG icons as
 * data: images, and calls to this API for "Try it out". Checked in chromium,
 * which reports every violation: test/hub/api/docs-ui.int.test.ts.
 */
const docsPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The /docs page for a browser: Swagger UI, which fetches /docs/json and renders every operation. */
export function docsPage (info: { title: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${asset('swagger-ui.css')}">
<link rel="icon" type="image/png" href="${asset('favicon-32x32.png')}">
</head>
<body>
<noscript><p>This page needs JavaScript. The OpenAPI 3.1 document it shows is at <a href="/docs/json">/docs/json</a>.</p></noscript>
<div id="swagger-ui"></div>
<script src="${asset('swagger-ui-bundle.js')}"></script>
<script src="${assetPath}${initializerFile}"></script>
</body></html>
`
}

/**
 * Serves the files of the /docs page, and gives the page (the HTML answer of
 * the `docs` route) the policy Swagger UI needs; every other answer, the
 * files included, keeps the API's. Call after the API's own onSend hook is
 * added, so that this one runs after it.
 */
export function serveDocsUi (app: FastifyInstance): void {
  const read = new Map<string, Promise<Buffer>>()

  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (request.routeOptions.url === '/docs' && String(reply.getHeader('content-type')).startsWith('text/html')) reply.header('content-security-policy', docsPolicy)
    return payload
  })

  app.get<{ Params: { file: string } }>(`${assetPath}:file`, {
    // Route-level onSend runs after the app's hooks: swagger-ui-dist's files may be kept (their URL
    // names the version), the page and our initializer not (they change with the hub).
    onSend: async (request, reply, payload) => {
      if (reply.statusCode === 200 && vendorFiles.has(request.params.file)) reply.header('cache-control', 'public, max-age=86400')
      return payload
    },
  }, async (request, reply) => {
    const file = request.params.file
    if (file === initializerFile) return await reply.type('text/javascript; charset=utf-8').send(initializer)
    const type = vendorFiles.get(file)
    if (!type) throw errors.notFound('docs file', file.slice(0, 64))
    let body = read.get(file)
    // Kept once read: the bundle is 1.7 MB, and a stranger may ask for it again and again.
    if (!body) {
      body = readFile(path.join(swaggerUiDir, file))
      read.set(file, body)
      body.catch(() => read.delete(file))
    }
    return await reply.type(type).send(await body)
  })
}
