interface Operation {
  operationId: string
  summary: string
  'x-access': string
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  requestBody?: unknown
  responses: Record<string, { description: string }>
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * The API reference as one HTML page, rendered here from the OpenAPI
 * document: no script, no stylesheet, nothing fetched, so it works offline
 * and under the API's `default-src 'none'` policy. The JSON is at /docs/json.
 */
export function docsPage (doc: object): string {
  const { info, paths } = doc as { info: { title: string, version: string }, paths: Record<string, Record<string, Operation>> }
  const rows: string[] = []
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters ?? []).map((p) => `${p.name} (${p.in}${p.required ? ', required' : ''})`)
      if (op.requestBody) params.push('JSON body')
      const answers = Object.entries(op.responses).map(([status, r]) => `${status} ${r.description}`)
      rows.push(`<tr id="${escapeHtml(op.operationId)}"><td><code>${method.toUpperCase()} ${escapeHtml(path)}</code><br><small>${escapeHtml(op.operationId)}</small></td>` +
        `<td>${escapeHtml(op.summary)}</td><td>${escapeHtml(op['x-access'])}</td><td>${params.map(escapeHtml).join('<br>')}</td><td>${answers.map(escapeHtml).join('<br>')}</td></tr>`)
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)}</title></head>
<body>
<h1>${escapeHtml(info.title)} ${escapeHtml(info.version)}</h1>
<p>Send JSON with <code>Authorization: Bearer &lt;token&gt;</code>; errors come as <code>{"error":{"code","message"}}</code>.
The machine-readable OpenAPI 3.1 document, with every schema: <a href="/docs/json">/docs/json</a>.</p>
<table border="1" cellpadding="4">
<thead><tr><th>Route</th><th>What it does</th><th>Who may call it</th><th>Parameters</th><th>Answers</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
</body></html>
`
}
